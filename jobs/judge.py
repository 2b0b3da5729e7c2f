"""LLM relevance judge: keyword-passing documents → silver.relevance (P(Yes) of an instruct model).

    spark-submit --py-files dist/telelake.zip jobs/judge.py --conf conf/judge.yaml
    telelake judge --conf conf/judge.yaml --set llm.model.path=/models/Mixtral-8x7B-Instruct

Every request goes through silver.llm_results: a rerun or a resumed run sends only what is missing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from jobs._common import Runtime, load_config, parse_args
from pipelines import config
from pipelines.llm.backend import BackendConfig
from pipelines.llm.judge import JudgeResult, JudgeSpec, run_judge
from pipelines.spark import build_session


@dataclass(frozen=True, kw_only=True)
class JudgeJobConfig(Runtime):
    judge: JudgeSpec
    llm: BackendConfig = field(default_factory=BackendConfig)


def run(cfg: JudgeJobConfig, spark=None) -> list[JudgeResult]:
    spark = spark or build_session(cfg.spark, "telelake-judge")
    results = run_judge(spark, cfg.lake, cfg.judge, cfg.llm, config_json=json.dumps(config.to_dict(cfg)))
    for r in results:
        print(f"{r.summary.line()}; model calls {r.model_calls:,}, cached {r.cached:,}", flush=True)
    return results


def main(argv: list[str] | None = None) -> list[JudgeResult]:
    args = parse_args(__doc__.splitlines()[0], argv)
    return run(load_config(JudgeJobConfig, args))


if __name__ == "__main__":
    main()
