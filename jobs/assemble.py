"""Assemble gold.tele_data from the silver verdicts: inclusion rules, dedup, stable ids, general replay.

    spark-submit --py-files dist/telelake.zip jobs/assemble.py --conf conf/gold/tele_data.yaml
    telelake assemble --conf conf/gold/tele_data.yaml

Prints read = kept + dropped per source (dropped by stage:reason) and the funnel; a rerun with the
same inputs and conf is a no-op.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from jobs._common import Runtime, load_config, parse_args
from pipelines import config
from pipelines.gold.assemble import AssembleResult, AssembleSpec, run_assemble
from pipelines.spark import build_session


@dataclass(frozen=True, kw_only=True)
class AssembleJobConfig(Runtime):
    assemble: AssembleSpec


def run(cfg: AssembleJobConfig, spark=None) -> AssembleResult:
    spark = spark or build_session(cfg.spark, "telelake-assemble")
    result = run_assemble(spark, cfg.lake, cfg.assemble, config_json=json.dumps(config.to_dict(cfg)))
    for s in result.summaries:
        print(s.line(), flush=True)
    print(f"assembly {result.assembly}: " + ", ".join(f"{t} v{v}" for t, v in sorted(result.tables.items())), flush=True)
    return result


def main(argv: list[str] | None = None) -> AssembleResult:
    args = parse_args(__doc__.splitlines()[0], argv)
    return run(load_config(AssembleJobConfig, args))


if __name__ == "__main__":
    main()
