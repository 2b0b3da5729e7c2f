"""Import telecom MCQ benchmarks into gold.benchmarks: one schema, seeded 60/20/20 splits, bad items quarantined.

    spark-submit --py-files dist/telelake.zip jobs/benchmarks_import.py --conf conf/benchmarks.yaml
    telelake benchmarks import --conf conf/benchmarks.yaml

Prints read = kept + rejected per category (rejected by reason), the split sizes and the
majority-class baseline (share of the most common answer position) per split.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from rich.console import Console

from jobs._common import Runtime, load_config, parse_args
from pipelines import config
from pipelines.benchmarks.stage import ImportResult, ImportSpec, run_import
from pipelines.spark import build_session


@dataclass(frozen=True, kw_only=True)
class BenchmarksJobConfig(Runtime):
    benchmarks: ImportSpec


def run(cfg: BenchmarksJobConfig, spark=None, console: Console | None = None) -> ImportResult:
    spark = spark or build_session(cfg.spark, "telelake-benchmarks")
    result = run_import(spark, cfg.lake, cfg.benchmarks, config_json=json.dumps(config.to_dict(cfg)))
    console = console or Console()
    for s in result.summaries:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(s.rejected.items()))
        console.print(s.line() + (f" ({reasons})" if reasons else ""))
    console.print(result.split_table())
    return result


def main(argv: list[str] | None = None) -> ImportResult:
    args = parse_args(__doc__.splitlines()[0], argv)
    return run(load_config(BenchmarksJobConfig, args))


if __name__ == "__main__":
    main()
