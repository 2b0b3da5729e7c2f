"""Telecom keyword filter: bronze sources → silver.keyword_hits (verdict ledger).

    spark-submit --py-files dist/telelake.zip jobs/keyword_filter.py --conf conf/keyword_filter.yaml
    telelake keywords --conf conf/keyword_filter.yaml

Scans only bronze files added since the last run; a rerun at the same bronze version is a no-op.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from jobs._common import Runtime, load_config, parse_args
from pipelines import config
from pipelines.filters.keyword_stage import KeywordSpec, run_keywords
from pipelines.spark import build_session
from pipelines.summary import JobSummary


@dataclass(frozen=True, kw_only=True)
class KeywordJobConfig(Runtime):
    keywords: KeywordSpec


def run(cfg: KeywordJobConfig, spark=None) -> list[JobSummary]:
    spark = spark or build_session(cfg.spark, "telelake-keywords")
    summaries = run_keywords(spark, cfg.lake, cfg.keywords, config_json=json.dumps(config.to_dict(cfg)))
    for s in summaries:
        print(s.line(), flush=True)
    return summaries


def main(argv: list[str] | None = None) -> list[JobSummary]:
    args = parse_args(__doc__.splitlines()[0], argv)
    return run(load_config(KeywordJobConfig, args))


if __name__ == "__main__":
    main()
