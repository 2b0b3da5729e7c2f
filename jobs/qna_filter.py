"""Tele-Eval filtering: regex, length, form, language, LLM answerability, dedup, decontamination → gold.tele_eval.

    spark-submit --py-files dist/telelake.zip jobs/qna_filter.py --conf conf/qna/filter.yaml
    telelake qna filter --conf conf/qna/filter.yaml --set qna_filter.answerability.threshold=0.6

Prints read = kept + dropped + rejected over the generated pairs, the funnel, and where the report is.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from jobs._common import Runtime, load_config, parse_args
from pipelines import config
from pipelines.llm.backend import BackendConfig
from pipelines.qna.filter_stage import FilterResult, FilterSpec, run_filter
from pipelines.spark import build_session


@dataclass(frozen=True, kw_only=True)
class FilterJobConfig(Runtime):
    qna_filter: FilterSpec = field(default_factory=FilterSpec)
    llm: BackendConfig = field(default_factory=BackendConfig)


def run(cfg: FilterJobConfig, spark=None) -> FilterResult:
    spark = spark or build_session(cfg.spark, "telelake-qna-filter")
    r = run_filter(spark, cfg.lake, cfg.qna_filter, cfg.llm, config_json=json.dumps(config.to_dict(cfg)))
    print(r.summary.line(), flush=True)
    print("funnel: " + " → ".join(f"{s} {n:,}" for s, n in r.funnel.items()), flush=True)
    print(f"report: {r.report}", flush=True)
    return r


def main(argv: list[str] | None = None) -> FilterResult:
    args = parse_args(__doc__.splitlines()[0], argv)
    return run(load_config(FilterJobConfig, args))


if __name__ == "__main__":
    main()
