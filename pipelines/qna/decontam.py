"""Decontamination: does a generated question overlap a benchmark question? Pure.

A question overlaps when it shares a word n-gram (`ngram` words, normalized: case, accents and
punctuation ignored) with a benchmark question, or, for questions shorter than `ngram` words, when
the whole normalized question is equal. Word n-gram overlap is the test of GPT-3's and the
open-LLM leaderboards' decontamination; 8 words catch paraphrases that keep the technical core.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pipelines.dedup.minhash import normalize


def shingles(text: str, ngram: int) -> set[int]:
    words = normalize(text)
    if len(words) < ngram:
        grams = [" ".join(words)] if words else []
    else:
        grams = [" ".join(words[i:i + ngram]) for i in range(len(words) - ngram + 1)]
    return {int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "big") for g in grams}


class BenchmarkIndex:
    """Shingle → benchmark item_id of every benchmark question (a few hundred thousand ints)."""

    def __init__(self, items: Iterable[tuple[str, str]], ngram: int) -> None:
        self.ngram = ngram
        self.owner: dict[int, str] = {}
        for item_id, question in items:
            for s in shingles(question, ngram):
                self.owner.setdefault(s, item_id)

    def match(self, question: str) -> str | None:
        """The item_id of a benchmark question this one overlaps, or None."""
        return next((self.owner[s] for s in sorted(shingles(question, self.ngram)) if s in self.owner), None)

    def __len__(self) -> int:
        return len(self.owner)
