"""Distilled cascade: judge a sample, train a fastText-format classifier on the judge's labels,
classify the whole keyword pool in Spark, send only the uncertain band to the LLM.

    spark-submit --py-files dist/telelake.zip jobs/cascade.py --conf conf/cascade.yaml
    telelake cascade --conf conf/cascade.yaml

Writes silver.cascade and reports/cascade/<source>/report.md with funnel.png.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from jobs._common import load_config, parse_args
from jobs.judge import JudgeJobConfig
from pipelines import config
from pipelines.llm.cascade import CascadeResult, CascadeSpec, run_cascade
from pipelines.spark import build_session


@dataclass(frozen=True, kw_only=True)
class CascadeJobConfig(JudgeJobConfig):
    cascade: CascadeSpec = field(default_factory=CascadeSpec)
    report_dir: str = "reports/cascade"


def run(cfg: CascadeJobConfig, spark=None) -> list[CascadeResult]:
    spark = spark or build_session(cfg.spark, "telelake-cascade")
    results = run_cascade(spark, cfg.lake, cfg.judge, cfg.cascade, cfg.llm, cfg.report_dir,
                          config_json=json.dumps(config.to_dict(cfg)))
    for r in results:
        print(f"{r.summary.line()}; LLM judgements {r.sample_judged:,} sample + {r.band_judged:,} band of "
              f"{r.pool:,} ({r.savings:.1f}x fewer); held-out agreement {r.agreement:.3f}, recall loss "
              f"{r.band.recall_loss:.3f}; report {r.report}", flush=True)
    return results


def main(argv: list[str] | None = None) -> list[CascadeResult]:
    args = parse_args(__doc__.splitlines()[0], argv)
    return run(load_config(CascadeJobConfig, args))


if __name__ == "__main__":
    main()
