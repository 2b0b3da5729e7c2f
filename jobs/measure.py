"""Cleanliness measure of silver.cleaned: per-token cross-entropy of raw vs cleaned text (paper eq. 3-4).

    telelake clean measure --conf conf/clean/measure.yaml
    python jobs/measure.py --conf conf/clean/measure.yaml

Runs on the driver over a seeded sample; writes report.md, metrics.json and histogram PNGs.
"""
from __future__ import annotations

from dataclasses import dataclass

from jobs._common import Runtime, load_config, parse_args
from pipelines.sources.measure import fmt
from pipelines.sources.measure_stage import MeasureResult, MeasureSpec, run_measure


@dataclass(frozen=True, kw_only=True)
class MeasureJobConfig(Runtime):
    measure: MeasureSpec


def run(cfg: MeasureJobConfig) -> MeasureResult:
    result = run_measure(cfg.lake, cfg.measure)
    print(f"cleanliness over {result.documents} documents: hardest {100 - int(cfg.measure.quantile * 100)}% of tokens "
          f"raw mean {fmt(result.raw.tail_mean)} std {fmt(result.raw.tail_std)} → cleaned mean "
          f"{fmt(result.cleaned.tail_mean)} std {fmt(result.cleaned.tail_std)}; report {result.report}", flush=True)
    return result


def main(argv: list[str] | None = None) -> MeasureResult:
    args = parse_args(__doc__.splitlines()[0], argv)
    return run(load_config(MeasureJobConfig, args))


if __name__ == "__main__":
    main()
