"""Multi-pattern matchers: count every lexicon entry's occurrences in texts in one pass.

`HyperscanMatcher` compiles all entries into one SIMD automaton (the fast path). `AhoCorasickMatcher`
is the portable fallback: one Aho-Corasick automaton for the literal terms plus Python `re` for the
few regex patterns. Both count a single text (`count`) or a whole Arrow batch (`count_batch`, which
Hyperscan scans as one buffer) and are checked against each other in tests.

Regex patterns (spec numbers and the like) are rare; both matchers count them with Python `re`
(leftmost, non-overlapping), Hyperscan only telling which documents hold a candidate. This keeps one
count per occurrence ("TS 23.501 v17.1.0" is one) without Hyperscan's start-of-match tracking,
which would slow the whole automaton about fourfold.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.filters.lexicon import Lexicon

_SPACES = re.compile(r"\s+")
SEPARATOR = "\x00"
"""Between documents in a batch buffer: no term or pattern can match it (see lexicon.py)."""


@dataclass(frozen=True)
class Hits:
    """Sparse counts for a batch: row k says entry `entry[k]` occurs `count[k]` times in document
    `doc[k]`. Sorted by document, then entry; documents without hits have no rows."""

    doc: np.ndarray
    entry: np.ndarray
    count: np.ndarray

    @classmethod
    def from_counters(cls, counters: Sequence[Counter]) -> Hits:
        doc, entry, count = [], [], []
        for i, c in enumerate(counters):
            for idx in sorted(c):
                doc.append(i)
                entry.append(idx)
                count.append(c[idx])
        return cls(np.array(doc, np.int64), np.array(entry, np.int32), np.array(count, np.int32))

    def counters(self, n_docs: int) -> list[Counter]:
        out = [Counter() for _ in range(n_docs)]
        for d, e, c in zip(self.doc.tolist(), self.entry.tolist(), self.count.tolist()):
            out[d][e] = c
        return out


def as_text_array(texts) -> pa.Array:
    """Arrow string array of the texts (a list, an Array or a ChunkedArray), nulls as empty."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    elif not isinstance(texts, pa.Array):
        texts = pa.array(texts, pa.large_string())
    return pc.fill_null(texts, "") if texts.null_count else texts


class _PatternCounter:
    """Python `re` counts for the lexicon's regex patterns (leftmost, non-overlapping). ASCII rules
    for \\b, \\d and \\s, like Hyperscan without its UTF-8 mode."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.regexes = {i: re.compile(e.regex, re.ASCII | (re.IGNORECASE if e.caseless else 0))
                        for i, e in enumerate(lexicon.entries) if e.kind == "pattern"}

    def count(self, text: str, counts: Counter) -> None:
        for idx, rx in self.regexes.items():
            n = sum(1 for _ in rx.finditer(text))
            if n:
                counts[idx] = n


class HyperscanMatcher:
    name = "hyperscan"

    def __init__(self, lexicon: Lexicon) -> None:
        try:
            import hyperscan
        except ImportError as exc:  # pragma: no cover - depends on the platform's wheels
            raise ImportError("hyperscan is not installed: pip install hyperscan, or set "
                              "matcher: aho_corasick in the keyword conf") from exc
        entries = lexicon.entries
        self.n_entries = len(entries)
        self.is_pattern = np.array([e.kind == "pattern" for e in entries], bool)
        self.db = _compile(hyperscan, [(i, e.regex, e.caseless, False) for i, e in enumerate(entries)])
        # Patterns can end at several offsets for one occurrence ("TS 23.501" and "TS 23.501 v17.1.0"):
        # documents with a pattern candidate are rescanned by this start-tracking automaton, counting
        # one occurrence per start. Only the rare candidates pay for it.
        patterns = [(i, e.regex, e.caseless, True) for i, e in enumerate(entries) if e.kind == "pattern"]
        self.som_db = _compile(hyperscan, patterns) if patterns else None

    def count(self, text: str) -> Counter:
        counts: Counter = Counter()
        is_pattern = self.is_pattern
        found = []

        def on_match(idx, start, end, flags, context):
            if is_pattern[idx]:
                found.append(idx)
            else:
                counts[idx] += 1

        data = text.encode("utf-8", "surrogatepass")
        self.db.scan(data, match_event_handler=on_match)
        if found:
            counts.update(self._count_patterns(data))
        return counts

    def count_batch(self, texts) -> Hits:
        """One Hyperscan pass over the whole batch, documents joined by `SEPARATOR`."""
        texts = as_text_array(texts)
        if len(texts) == 0:
            return Hits.from_counters([])
        if pa.types.is_string(texts.type) and texts.nbytes + len(texts) >= 2**31:
            texts = texts.cast(pa.large_string())  # the joined buffer needs 64-bit offsets
        joined = pc.binary_join_element_wise(texts, pa.scalar("", texts.type), pa.scalar(SEPARATOR, texts.type))
        width = np.int64 if pa.types.is_large_string(joined.type) else np.int32
        raw = np.frombuffer(joined.buffers()[1], width)[joined.offset:joined.offset + len(joined) + 1]
        offsets = raw.astype(np.int64) - int(raw[0])
        data = memoryview(joined.buffers()[2].slice(int(raw[0]), int(offsets[-1])))
        ids: list[int] = []
        ends: list[int] = []
        add_id, add_end = ids.append, ends.append

        def on_match(idx, start, end, flags, context):
            add_id(idx)
            add_end(end)

        self.db.scan(data, match_event_handler=on_match)
        if not ids:
            return Hits.from_counters([])
        entry = np.asarray(ids, np.int32)
        # A match ending at byte e (exclusive) lies in document i when offsets[i] < e < offsets[i+1].
        doc = np.searchsorted(offsets[1:], np.asarray(ends, np.int64), side="right")
        terms = ~self.is_pattern[entry]
        keys, counts = np.unique(doc[terms] * self.n_entries + entry[terms], return_counts=True)
        out_doc, out_entry, out_count = [keys // self.n_entries], [keys % self.n_entries], [counts]
        for d in np.unique(doc[~terms]).tolist():
            found = self._count_patterns(data[offsets[d]:offsets[d + 1] - 1])
            out_doc.append(np.full(len(found), d))
            out_entry.append(np.fromiter(found.keys(), np.int64, len(found)))
            out_count.append(np.fromiter(found.values(), np.int64, len(found)))
        doc_all, entry_all = np.concatenate(out_doc), np.concatenate(out_entry)
        order = np.lexsort((entry_all, doc_all))
        return Hits(doc_all[order].astype(np.int64), entry_all[order].astype(np.int32),
                    np.concatenate(out_count)[order].astype(np.int32))

    def _count_patterns(self, data) -> Counter:
        starts: set[tuple[int, int]] = set()
        self.som_db.scan(data, match_event_handler=lambda idx, start, end, flags, ctx: starts.add((idx, start)))
        return Counter(idx for idx, _ in starts)


def _compile(hyperscan, entries: list[tuple[int, str, bool, bool]]):
    """One database of (id, regex, caseless, start-of-match) entries."""
    db = hyperscan.Database()
    db.compile(expressions=[regex.encode() for _, regex, _, _ in entries], ids=[i for i, *_ in entries],
               elements=len(entries),
               flags=[(hyperscan.HS_FLAG_CASELESS if caseless else 0) | (hyperscan.HS_FLAG_SOM_LEFTMOST if som else 0)
                      for _, _, caseless, som in entries])
    return db


class AhoCorasickMatcher:
    name = "aho_corasick"

    def __init__(self, lexicon: Lexicon) -> None:
        import ahocorasick

        self.caseless = ahocorasick.Automaton()
        self.exact = ahocorasick.Automaton()
        self.patterns = _PatternCounter(lexicon)
        for idx, e in enumerate(lexicon.entries):
            if e.kind == "pattern":
                continue
            automaton = self.caseless if e.caseless else self.exact
            for variant in _variants(e.term) if e.caseless else [e.term]:
                # Two entries can share a surface form; the automaton keeps one value per word.
                owners = automaton.get(variant, ())
                automaton.add_word(variant, (*owners, (idx, len(variant))))
        for a in (self.caseless, self.exact):
            if len(a):
                a.make_automaton()

    def count(self, text: str) -> Counter:
        counts: Counter = Counter()
        # Lower-casing keeps offsets for almost all text; hyphens become spaces like the regexes'.
        folded = _SPACES.sub(" ", text.lower().replace("-", " "))
        for automaton, hay in ((self.caseless, folded), (self.exact, text)):
            if not len(automaton):
                continue
            last_end: dict[int, int] = {}
            for end, owners in automaton.iter(hay):
                for idx, n in owners:
                    start = end - n + 1
                    if _bounded(hay, start, end) and last_end.get(idx, -1) < start:
                        counts[idx] += 1
                        last_end[idx] = end
        self.patterns.count(text, counts)
        return counts

    def count_batch(self, texts) -> Hits:
        return Hits.from_counters([self.count(t) for t in as_text_array(texts).to_pylist()])


def _variants(term: str) -> list[str]:
    base = term.lower().replace("-", " ")
    forms = {base}
    if "-" in term:
        forms.add(term.lower().replace("-", ""))
    out = set()
    for f in forms:
        out.add(f)
        if term[-1].isalnum():
            out.add(f + "s")
            out.add(f + "es")
    return sorted(out)


def _is_word(ch: str) -> bool:
    """ASCII word characters, like Hyperscan's \\b without UTF-8 mode: "使用LTE" has a bounded LTE."""
    return ch.isascii() and (ch.isalnum() or ch == "_")


def _bounded(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end + 1] if end + 1 < len(text) else " "
    return not (_is_word(before) and _is_word(text[start])) and not (_is_word(after) and _is_word(text[end]))


def build_matcher(lexicon: Lexicon, kind: str = "auto"):
    """`auto` takes Hyperscan where its wheel is installed, else Aho-Corasick."""
    if kind in ("auto", "hyperscan"):
        try:
            return HyperscanMatcher(lexicon)
        except ImportError:
            if kind == "hyperscan":
                raise
    return AhoCorasickMatcher(lexicon)
