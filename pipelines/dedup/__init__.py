"""Duplicate removal: exact (normalised-text hash) and near-duplicate (MinHash + LSH)."""
