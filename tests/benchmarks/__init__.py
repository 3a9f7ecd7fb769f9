"""Benchmarks: scripts that print figures against the issue's targets (not timed tests)."""
