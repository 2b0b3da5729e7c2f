"""The arguments of `telelake release` (apart from the job, so the CLI parses them without importing the
release stack: great-expectations and Spark load only when a release is created)."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["create", "list", "show", "diff", "verify", "export"])
    p.add_argument("names", nargs="*", help="release name (create, show, verify, export) or two (diff)")
    p.add_argument("--conf", default=None, help="release conf (default conf/release.yaml when present)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default=None, help="export: output folder (default exports/NAME)")
    p.add_argument("--format", default="jsonl", choices=["jsonl", "parquet"], help="export format")
    p.add_argument("--json", action="store_true", help="show/diff: print JSON")
