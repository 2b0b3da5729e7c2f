"""Multi-pattern matchers: count every lexicon entry's occurrences in a text in one pass.

`HyperscanMatcher` compiles all entries into one SIMD automaton (the fast path). `AhoCorasickMatcher`
is the portable fallback: one Aho-Corasick automaton for the literal terms plus Python `re` for the
few regex patterns. Both return {entry index: count} and are checked against each other in tests.
"""
from __future__ import annotations

import re
from collections import Counter

from pipelines.filters.lexicon import Lexicon


_SPACES = re.compile(r"\s+")


class HyperscanMatcher:
    name = "hyperscan"

    def __init__(self, lexicon: Lexicon) -> None:
        try:
            import hyperscan
        except ImportError as exc:  # pragma: no cover - depends on the platform's wheels
            raise ImportError("hyperscan is not installed: pip install hyperscan, or set "
                              "matcher: aho_corasick in the keyword conf") from exc
        self.db = hyperscan.Database()
        # Regex patterns can end at several offsets for one occurrence ("TS 23.501" and
        # "TS 23.501 v17.1.0"): they report their start (SOM) and count once per start.
        flags = [(hyperscan.HS_FLAG_CASELESS if e.caseless else 0)
                 | (hyperscan.HS_FLAG_SOM_LEFTMOST if e.kind == "pattern" else 0)
                 for e in lexicon.entries]
        self.som = frozenset(i for i, e in enumerate(lexicon.entries) if e.kind == "pattern")
        self.db.compile(expressions=[e.regex.encode() for e in lexicon.entries],
                        ids=list(range(len(lexicon.entries))), elements=len(lexicon.entries), flags=flags)

    def count(self, text: str) -> Counter:
        counts: Counter = Counter()
        starts: set[tuple[int, int]] = set()
        som = self.som

        def on_match(idx, start, end, flags, context):
            if idx in som:
                if (idx, start) in starts:
                    return
                starts.add((idx, start))
            counts[idx] += 1

        self.db.scan(text.encode("utf-8", "surrogatepass"), match_event_handler=on_match)
        return counts


class AhoCorasickMatcher:
    name = "aho_corasick"

    def __init__(self, lexicon: Lexicon) -> None:
        import ahocorasick

        self.caseless = ahocorasick.Automaton()
        self.exact = ahocorasick.Automaton()
        self.regexes: list[tuple[int, re.Pattern]] = []
        for idx, e in enumerate(lexicon.entries):
            if e.kind == "pattern":
                self.regexes.append((idx, re.compile(e.regex, re.IGNORECASE)))
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
        for idx, rx in self.regexes:
            n = sum(1 for _ in rx.finditer(text))
            if n:
                counts[idx] = n
        return counts


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
    return ch.isalnum() or ch == "_"


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
