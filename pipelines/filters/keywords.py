"""Telecom keyword filter: scan a document once for evidence, decide cheaply from evidence.

`scan` is the expensive part (one multi-pattern pass over the text) and its result is stored in
the ledger; `decide` is a pure function of that evidence and the thresholds, so a new threshold is
a re-decide over the ledger, not a re-scan of the corpus.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.filters.lexicon import Lexicon

_WIKIPEDIA = r"^https?://(?:[a-z0-9-]+\.)*wikipedia\.org(?:/|$)"
WIKIPEDIA_URL = re.compile(_WIKIPEDIA, re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """When a document counts as telecom. Defaults follow the paper's Wikipedia/web pre-filter
    (§III-C/D: an article "containing any of these keywords" is flagged for the LLM judge)."""

    min_distinct_terms: int = 1
    """Distinct lexicon entries required (ambiguous acronyms count only with evidence, below)."""
    min_hits: int = 1
    """Total counted occurrences required."""
    min_density_per_kchar: float = 0.0
    """Counted occurrences per 1,000 characters required (0 = no density rule)."""
    ambiguous_min_distinct: int = 2
    """Ambiguous acronyms (RAN, MAC, …) alone count only if this many distinct ones co-occur."""
    drop_wikipedia_urls_in: list[str] = field(default_factory=lambda: ["web"])
    """Categories whose Wikipedia-URL rows are dropped (the paper removes Wikipedia from web data)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Evidence:
    term_counts: dict[str, int]
    ambiguous_counts: dict[str, int]
    text_chars: int
    wikipedia_url: bool


def scan(text: str, url: str | None, lexicon: Lexicon, matcher) -> Evidence:
    counts = matcher.count(text)
    terms: dict[str, int] = {}
    ambiguous: dict[str, int] = {}
    for idx, n in counts.items():
        entry = lexicon.entries[idx]
        (ambiguous if entry.kind == "ambiguous" else terms)[entry.term] = n
    return Evidence(terms, ambiguous, len(text), bool(url and WIKIPEDIA_URL.match(url)))


def wikipedia_urls(urls: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Vectorized `WIKIPEDIA_URL` test over a column of URLs (null → False)."""
    hit = pc.match_substring_regex(urls, _WIKIPEDIA, ignore_case=True)
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), bool)


def decide(ev: Evidence, category: str, t: Thresholds) -> tuple[str, str]:
    """(verdict, reason): ("keep", "keyword_match") or ("drop", <reason>)."""
    if ev.wikipedia_url and category in t.drop_wikipedia_urls_in:
        return "drop", "wikipedia_url"
    strong_distinct = len(ev.term_counts)
    amb_distinct = len(ev.ambiguous_counts)
    if strong_distinct == 0 and amb_distinct == 0:
        return "drop", "no_keyword"
    ambiguous_counts = strong_distinct > 0 or amb_distinct >= t.ambiguous_min_distinct
    if not ambiguous_counts and strong_distinct == 0:
        return "drop", "ambiguous_only"
    distinct = strong_distinct + (amb_distinct if ambiguous_counts else 0)
    hits = sum(ev.term_counts.values()) + (sum(ev.ambiguous_counts.values()) if ambiguous_counts else 0)
    if distinct < t.min_distinct_terms:
        return "drop", "below_min_distinct_terms"
    if hits < t.min_hits:
        return "drop", "below_min_hits"
    density = 1000.0 * hits / max(ev.text_chars, 1)
    if density < t.min_density_per_kchar:
        return "drop", "below_min_density"
    return "keep", "keyword_match"

