"""Tele-Eval generation: chunk gold.tele_data, five QnA pairs per chunk from the LLM, parsed into silver.qna_pairs.

    spark-submit --py-files dist/telelake.zip jobs/qna_generate.py --conf conf/qna/generate.yaml
    telelake qna generate --conf conf/qna/generate.yaml --set llm.model.path=/models/Mixtral-8x7B-Instruct-v0.1

Prints read = kept + dropped + rejected over the chunks (kept: gave pairs; dropped: too short or not
sampled; rejected: the output held no pair), the pairs parsed and the pieces quarantined.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from jobs._common import Runtime, load_config, parse_args
from pipelines import config
from pipelines.llm.backend import BackendConfig
from pipelines.qna.generate import GenerateResult, GenerateSpec, run_generate
from pipelines.spark import build_session


@dataclass(frozen=True, kw_only=True)
class GenerateJobConfig(Runtime):
    qna: GenerateSpec = field(default_factory=GenerateSpec)
    llm: BackendConfig = field(default_factory=BackendConfig)


def run(cfg: GenerateJobConfig, spark=None) -> GenerateResult:
    spark = spark or build_session(cfg.spark, "telelake-qna-generate")
    r = run_generate(spark, cfg.lake, cfg.qna, cfg.llm, config_json=json.dumps(config.to_dict(cfg)))
    problems = ", ".join(f"{k} {v:,}" for k, v in sorted(r.pair_problems.items())) or "none"
    print(f"{r.summary.line()}; {r.pairs:,} pairs parsed; quarantined pieces: {problems}; "
          f"model calls {r.model_calls:,}, cached {r.cached:,}", flush=True)
    return r


def main(argv: list[str] | None = None) -> GenerateResult:
    args = parse_args(__doc__.splitlines()[0], argv)
    return run(load_config(GenerateJobConfig, args))


if __name__ == "__main__":
    main()
