"""Data-quality gate: great-expectations suites over compact profiles of the gold tables."""
