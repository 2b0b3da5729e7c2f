"""Clean bronze.<source>_sources into silver.cleaned: arXiv LaTeX or 3GPP Word → clean LaTeX.

    spark-submit --py-files dist/telelake.zip jobs/clean.py --conf conf/clean/arxiv.yaml
    telelake clean latex --conf conf/clean/arxiv.yaml
    telelake clean standards --conf conf/clean/standards.yaml

Documents that cannot be cleaned go to quarantine.rejected; a rerun cleans only new documents.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from jobs._common import Runtime, load_config, parse_args
from pipelines import config
from pipelines.sources.clean_stage import CleanSpec, run_clean
from pipelines.spark import build_session
from pipelines.summary import JobSummary


@dataclass(frozen=True, kw_only=True)
class CleanJobConfig(Runtime):
    clean: CleanSpec


def run(cfg: CleanJobConfig, spark=None) -> JobSummary:
    spark = spark or build_session(cfg.spark, f"telelake-clean-{cfg.clean.source}")
    summary = run_clean(spark, cfg.lake, cfg.clean, config_json=json.dumps(config.to_dict(cfg)))
    print(summary.line(), flush=True)
    return summary


def main(argv: list[str] | None = None) -> JobSummary:
    args = parse_args(__doc__.splitlines()[0], argv)
    return run(load_config(CleanJobConfig, args))


if __name__ == "__main__":
    main()
