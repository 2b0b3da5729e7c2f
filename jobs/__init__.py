"""spark-submit entry points, one per job, and the `telelake` CLI (jobs/cli.py)."""
