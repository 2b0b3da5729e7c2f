"""MinHash signatures, LSH band keys and duplicate clusters. Pure (numpy), deterministic across processes.

Text → normalised words → word n-grams (`ngram`, FineWeb: 5) → 32-bit shingle hashes (a polynomial
over stable per-word hashes, so no per-process salt) → `num_hashes` MinHash values from seeded
universal hash functions → `bands` band keys of `rows` values each (FineWeb: 14 × 8 = 112). Two
documents sharing any band key are candidates; candidates are joined into clusters with union-find;
which document a cluster keeps is decided in Spark (`stage.py`, conf `keep_order`).
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

MERSENNE = np.uint64((1 << 61) - 1)
MAX_HASH = np.uint64(0xFFFFFFFF)
_WORD = re.compile(r"\w+", re.UNICODE)
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
"""Combining marks left by NFKD (accents): removed so that "café" and "cafe" are one word."""
_BASE = np.uint64(1_000_003)


@dataclass(frozen=True, kw_only=True)
class MinHashParams:
    ngram: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1
    """Changing any parameter changes every signature: record it with the dedup ledger."""

    @property
    def num_hashes(self) -> int:
        return self.bands * self.rows

    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        a = rng.integers(1, int(MERSENNE), size=self.num_hashes, dtype=np.uint64)
        b = rng.integers(0, int(MERSENNE), size=self.num_hashes, dtype=np.uint64)
        return a, b


def normalize(text: str) -> list[str]:
    """Lower-cased words, accents folded, punctuation and spacing ignored."""
    text = text.lower()
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return _WORD.findall(text)


def _word_hash(w: str) -> int:
    return int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")


class WordHashes(dict):
    """word → stable 64-bit hash, computed on first use. One per batch of documents: word frequencies
    are Zipfian, so most lookups hit."""

    def __missing__(self, word: str) -> int:
        h = self[word] = _word_hash(word)
        return h


def _word_hashes(words: list[str], cache: WordHashes | None = None) -> np.ndarray:
    return np.fromiter(map((cache if cache is not None else WordHashes()).__getitem__, words),
                       dtype=np.uint64, count=len(words))


def shingles(text: str, ngram: int, *, words: list[str] | None = None,
             cache: WordHashes | None = None) -> np.ndarray:
    """Unique 32-bit hashes of the word n-grams (a shorter text is one shingle of all its words).
    `words`: the text already normalized."""
    words = normalize(text) if words is None else words
    if not words:
        return np.zeros(0, dtype=np.uint64)
    h = _word_hashes(words, cache)
    n = min(ngram, len(h))
    with np.errstate(over="ignore"):
        acc = np.zeros(len(h) - n + 1, dtype=np.uint64)
        for k in range(n):  # polynomial rolling combination, wrapping mod 2^64
            acc = acc * _BASE + h[k:len(h) - n + 1 + k]
    return np.unique((acc ^ (acc >> np.uint64(32))) & MAX_HASH)


def signature(text: str, params: MinHashParams, coeffs: tuple[np.ndarray, np.ndarray] | None = None, *,
              words: list[str] | None = None, cache: WordHashes | None = None) -> np.ndarray:
    """`num_hashes` MinHash values (uint32 range); all MAX for a text without words."""
    a, b = coeffs or params.coefficients()
    sh = shingles(text, params.ngram, words=words, cache=cache)
    if sh.size == 0:
        return np.full(params.num_hashes, MAX_HASH, dtype=np.uint64)
    with np.errstate(over="ignore"):
        values = ((sh[:, None] * a[None, :] + b[None, :]) % MERSENNE) & MAX_HASH
    return values.min(axis=0)


def band_keys(sig: np.ndarray, params: MinHashParams) -> list[bytes]:
    """One 16-byte key per band: band index + a hash of its rows."""
    rows = sig.reshape(params.bands, params.rows).astype("<u4")
    return [i.to_bytes(2, "little") + hashlib.blake2b(r.tobytes(), digest_size=14).digest() for i, r in enumerate(rows)]


def jaccard_estimate(s1: np.ndarray, s2: np.ndarray) -> float:
    return float(np.mean(s1 == s2))


def candidate_probability(similarity: float, params: MinHashParams) -> float:
    """P(two documents of Jaccard `similarity` share at least one band): the S-curve of LSH."""
    return 1.0 - (1.0 - similarity ** params.rows) ** params.bands


def clusters(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """doc id → cluster root (smallest id of its connected component), from candidate pairs."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}
