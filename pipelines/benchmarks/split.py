"""Seeded train/val/test split per category that is stable when items are added. Pure.

Paper 001 §2 splits each category 60/20/20 with a fixed seed. A shuffle-and-cut split moves items
between splits whenever one is added; here each item's split is decided by a hash of (seed,
category, question key) alone, so an existing item never changes split and a new one lands by
the same rule. Items sharing a normalized question share a split, so no question is seen in train
and tested again. The fractions hold in expectation (±1-2 points on a few thousand items).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class SplitSpec:
    seed: int = 42
    """Paper 001 trains every adapter with seed 42."""
    train: float = 0.6
    val: float = 0.2
    """test = 1 - train - val."""

    def __post_init__(self) -> None:
        if not (0 < self.train < 1 and 0 <= self.val < 1 and self.train + self.val <= 1):
            raise ValueError(f"split fractions train={self.train}, val={self.val} must be in (0, 1) with "
                             f"train + val <= 1 (test takes the rest)")


def unit(seed: int, category: str, key: str) -> float:
    """A uniform number in [0, 1) from the hash of (seed, category, key)."""
    h = hashlib.sha256(f"{seed}\x00{category}\x00{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0 ** 64


def assign(spec: SplitSpec, category: str, key: str) -> str:
    u = unit(spec.seed, category, key)
    return "train" if u < spec.train else "val" if u < spec.train + spec.val else "test"
