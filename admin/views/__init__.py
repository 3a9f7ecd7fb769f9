"""Admin views, one module per domain."""
