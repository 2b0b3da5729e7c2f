"""Ingest arXiv LaTeX sources or 3GPP Word files into bronze.<source>_sources.

    spark-submit --py-files dist/telelake.zip jobs/ingest_sources.py --conf conf/ingest/arxiv.yaml
    telelake ingest arxiv --conf conf/ingest/arxiv.yaml
    telelake ingest standards --conf conf/ingest/standards.yaml

Refused archives and files go to quarantine.rejected; a rerun of the same inputs is a no-op.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from jobs._common import Runtime, load_config, parse_args
from pipelines import config
from pipelines.sources.ingest import SourcesSpec, run_sources_ingest
from pipelines.spark import build_session
from pipelines.summary import JobSummary


@dataclass(frozen=True, kw_only=True)
class SourcesJobConfig(Runtime):
    sources: SourcesSpec


def run(cfg: SourcesJobConfig, spark=None) -> JobSummary:
    spark = spark or build_session(cfg.spark, f"telelake-ingest-{cfg.sources.source}")
    summary = run_sources_ingest(spark, cfg.lake, cfg.sources, config_json=json.dumps(config.to_dict(cfg)))
    print(summary.line(), flush=True)
    return summary


def main(argv: list[str] | None = None) -> JobSummary:
    args = parse_args(__doc__.splitlines()[0], argv)
    return run(load_config(SourcesJobConfig, args))


if __name__ == "__main__":
    main()
