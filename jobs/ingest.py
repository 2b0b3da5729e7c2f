"""Ingest raw files (Wikipedia/RefinedWeb Parquet, JSONL, Tele-Data JSONL, WARC/WET) into bronze.

    spark-submit --py-files dist/telelake.zip jobs/ingest.py --conf conf/ingest/wikipedia.yaml
    telelake ingest --conf conf/ingest/wikipedia.yaml

Bad records go to quarantine.rejected; a rerun of the same input files is a no-op.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from jobs._common import Runtime, load_config, parse_args
from pipelines import config
from pipelines.ingest.stage import IngestSpec, run_ingest
from pipelines.spark import build_session
from pipelines.summary import JobSummary


@dataclass(frozen=True, kw_only=True)
class IngestJobConfig(Runtime):
    ingest: IngestSpec


def run(cfg: IngestJobConfig, spark=None) -> JobSummary:
    spark = spark or build_session(cfg.spark, f"telelake-ingest-{cfg.ingest.source}")
    summary = run_ingest(spark, cfg.lake, cfg.ingest, config_json=json.dumps(config.to_dict(cfg)))
    print(summary.line(), flush=True)
    return summary


def main(argv: list[str] | None = None) -> JobSummary:
    args = parse_args(__doc__.splitlines()[0], argv)
    return run(load_config(IngestJobConfig, args))


if __name__ == "__main__":
    main()
