"""Filters: pure decisions (None = keep, or a snake_case drop reason) and their Spark wrappers."""
