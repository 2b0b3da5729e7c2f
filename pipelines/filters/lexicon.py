"""A versioned telecom lexicon (conf/lexicon/*.yaml) and its compiled regular expressions."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml


class LexiconError(ValueError):
    """The lexicon file is malformed (unknown key, duplicate term, invalid pattern)."""


# Matchers scan a batch as one buffer with documents joined by NUL: a pattern that could match NUL
# (".", a negated class, \W \S \D) could join the end of one document to the start of the next.
_SPANNING = re.compile(r"(?<!\\)\.|\[\^|\\[WSD]")


@dataclass(frozen=True)
class Entry:
    """One thing to look for. `regex` is what both matchers search for (bytes, for Hyperscan)."""

    term: str
    kind: str  # term | ambiguous | pattern
    group: str
    regex: str
    caseless: bool


@dataclass(frozen=True)
class Lexicon:
    version: str
    entries: tuple[Entry, ...]

    @cached_property
    def digest(self) -> str:
        payload = json.dumps([(e.term, e.kind, e.regex, e.caseless) for e in self.entries])
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def ambiguous(self) -> frozenset[str]:
        return frozenset(e.term for e in self.entries if e.kind == "ambiguous")


def term_regex(term: str) -> str:
    """Word-bounded regex for a literal term: spaces match space/hyphen runs, hyphens are optional,
    a trailing plural 's' is accepted."""
    out = []
    for ch in term:
        if ch == " ":
            out.append(r"[\s\-]+")
        elif ch == "-":
            out.append(r"[\s\-]?")
        else:
            out.append(re.escape(ch))
    plural = "(?:s|es)?" if term[-1].isalnum() else ""
    return r"\b" + "".join(out) + plural + r"\b"


def load_lexicon(path: str | Path) -> Lexicon:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LexiconError(f"cannot read lexicon {path}: {exc}") from exc
    known = {"version", "terms", "ambiguous", "patterns"}
    if not isinstance(data, dict) or set(data) - known or "version" not in data:
        raise LexiconError(f"{path}: expected keys {sorted(known)} (version required), got "
                           f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
    entries: list[Entry] = []
    seen: set[str] = set()

    def add(entry: Entry) -> None:
        key = entry.term if entry.kind == "ambiguous" else entry.term.lower()
        if key in seen:
            raise LexiconError(f"{path}: term {entry.term!r} listed twice")
        seen.add(key)
        try:
            re.compile(entry.regex)
        except re.error as exc:
            raise LexiconError(f"{path}: invalid pattern for {entry.term!r}: {exc}") from exc
        entries.append(entry)

    for group, terms in (data.get("terms") or {}).items():
        for t in terms:
            t = str(t).strip()
            add(Entry(t, "term", group, term_regex(t), caseless=True))
    for t in data.get("ambiguous") or []:
        t = str(t).strip()
        add(Entry(t, "ambiguous", "ambiguous", r"\b" + re.escape(t) + r"\b", caseless=False))
    for group, patterns in (data.get("patterns") or {}).items():
        for i, p in enumerate(patterns):
            if _SPANNING.search(p):
                raise LexiconError(f"{path}: pattern {group}#{i} {p!r} uses '.', a negated class or "
                                   r"\W/\S/\D, which can match across documents; spell out the "
                                   r"characters allowed (e.g. [\s\-] or \d)")
            add(Entry(f"{group}#{i}", "pattern", group, p, caseless=True))
    if not entries:
        raise LexiconError(f"{path}: lexicon has no entries")
    return Lexicon(version=str(data["version"]), entries=tuple(entries))
