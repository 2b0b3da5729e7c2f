"""Paired bootstrap: confidence intervals of a per-item metric's mean, and whether two runs differ.

Both runs are scored on the same items; each resample draws item indices with replacement (seeded)
and applies them to both, so the item-to-item correlation of the two runs is kept (Koehn 2004's paired
bootstrap resampling). The p-value is two-sided: twice the smaller share of resamples on either side
of zero difference (at most 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    a: Interval
    b: Interval
    diff: Interval
    """b − a."""
    p_value: float
    n: int
    resamples: int

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


def _interval(values: np.ndarray, means: np.ndarray, level: float) -> Interval:
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return Interval(float(values.mean()), float(lo), float(hi))


def confidence_interval(values, *, resamples: int = 1000, level: float = 0.95, seed: int = 0) -> Interval:
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(0, v.size, (resamples, v.size))
    return _interval(v, v[idx].mean(axis=1), level)


def paired(a, b, *, resamples: int = 1000, level: float = 0.95, seed: int = 0) -> Comparison:
    """Compare per-item scores `a` and `b` of the same items (same order)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired bootstrap needs the same items: {a.size} scores against {b.size}")
    if a.size == 0:
        nan = Interval(float("nan"), float("nan"), float("nan"))
        return Comparison(nan, nan, nan, float("nan"), 0, resamples)
    idx = np.random.default_rng(seed).integers(0, a.size, (resamples, a.size))
    ma, mb = a[idx].mean(axis=1), b[idx].mean(axis=1)
    d = mb - ma
    p = min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean()))
    return Comparison(_interval(a, ma, level), _interval(b, mb, level), _interval(b - a, d, level), float(p),
                      int(a.size), resamples)
