"""Build gold.instructions: Alpaca / Open-Instruct imports, MCQ answering, literature tasks.

    spark-submit --py-files dist/telelake.zip jobs/instruct_build.py --conf conf/instruct.yaml
    telelake instruct build --conf conf/instruct.yaml

Prints read = kept + dropped + rejected per task (what a task reads: records, benchmark items,
papers or citation edges) and the examples per split.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from rich.console import Console

from jobs._common import Runtime, load_config, parse_args
from pipelines import config
from pipelines.instruct.stage import InstructResult, InstructSpec, run_instruct
from pipelines.spark import build_session


@dataclass(frozen=True, kw_only=True)
class InstructJobConfig(Runtime):
    instruct: InstructSpec = field(default_factory=InstructSpec)


def run(cfg: InstructJobConfig, spark=None, console: Console | None = None) -> InstructResult:
    spark = spark or build_session(cfg.spark, "telelake-instruct")
    result = run_instruct(spark, cfg.lake, cfg.instruct, config_json=json.dumps(config.to_dict(cfg)))
    console = console or Console()
    for line in result.lines():
        console.print(line)
    console.print(result.table())
    return result


def main(argv: list[str] | None = None) -> InstructResult:
    args = parse_args(__doc__.splitlines()[0], argv)
    return run(load_config(InstructJobConfig, args))


if __name__ == "__main__":
    main()
