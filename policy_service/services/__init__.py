"""Domain services: they take explicit arguments, flush, and raise domain errors."""
