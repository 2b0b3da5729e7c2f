"""Re-decide keyword verdicts with new thresholds from the stored evidence (no text re-scan).

    spark-submit --py-files dist/telelake.zip jobs/keyword_redecide.py --conf conf/keyword_filter.yaml \
        --set keywords.thresholds.min_hits=3
    telelake keywords redecide --conf conf/keyword_filter.yaml --set keywords.thresholds.min_hits=3
"""
from __future__ import annotations

import json

from jobs._common import load_config, parse_args
from jobs.keyword_filter import KeywordJobConfig
from pipelines import config
from pipelines.filters.keyword_stage import run_redecide
from pipelines.spark import build_session
from pipelines.summary import JobSummary


def run(cfg: KeywordJobConfig, spark=None) -> JobSummary:
    spark = spark or build_session(cfg.spark, "telelake-keywords-redecide")
    summary = run_redecide(spark, cfg.lake, cfg.keywords, config_json=json.dumps(config.to_dict(cfg)))
    print(summary.line(), flush=True)
    return summary


def main(argv: list[str] | None = None) -> JobSummary:
    args = parse_args(__doc__.splitlines()[0], argv)
    return run(load_config(KeywordJobConfig, args))


if __name__ == "__main__":
    main()
