"""The rule filters of Tele-Eval: regex (conf/qna/filters.yaml), length, form and language. Pure.

Each filter decides only: it returns None (keep) or a stable snake_case reason, which becomes the
ledger's reason and a line of the funnel. The stage applies them in order: regex, length, form,
language; then the LLM answerability filter, dedup and decontamination (stage.py).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipelines.dedup.minhash import normalize

FIELDS = ("question", "answer")


class FilterConfError(ValueError):
    """A regex filter file is malformed; the message names the file and the filter."""


@dataclass(frozen=True)
class RegexFilter:
    name: str
    pattern: re.Pattern
    fields: tuple[str, ...]


@dataclass(frozen=True)
class RegexFilters:
    version: str
    filters: tuple[RegexFilter, ...]

    def __post_init__(self) -> None:  # the Hyperscan database's cache key, hashed once
        patterns = "\x00".join(f"{f.name}\x01{f.pattern.pattern}" for f in self.filters)
        object.__setattr__(self, "_key", hashlib.sha256(patterns.encode()).hexdigest())

    @classmethod
    def load(cls, path: str | Path) -> RegexFilters:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise FilterConfError(f"cannot read regex filters {path}: {exc}") from exc
        if not isinstance(data, dict) or not data.get("version") or not isinstance(data.get("filters"), list):
            raise FilterConfError(f"{path}: expected keys version and filters (a list of {{name, pattern, fields}})")
        out, seen = [], set()
        for n, f in enumerate(data["filters"]):
            where = f"{path}: filter {n + 1} ({f.get('name') if isinstance(f, dict) else f!r})"
            if not isinstance(f, dict) or set(f) - {"name", "pattern", "fields"} or not f.get("name") or not f.get("pattern"):
                raise FilterConfError(f"{where}: needs name and pattern (and optionally fields), nothing else")
            if f["name"] in seen or not re.fullmatch(r"[a-z][a-z0-9_]*", f["name"]):
                raise FilterConfError(f"{where}: names must be unique snake_case (they become drop reasons)")
            fields = tuple(f.get("fields") or ("question",))
            if set(fields) - set(FIELDS):
                raise FilterConfError(f"{where}: fields {list(fields)} must be among {list(FIELDS)}")
            try:
                pattern = re.compile(f["pattern"], re.IGNORECASE)
            except re.error as exc:
                raise FilterConfError(f"{where}: pattern does not compile: {exc}") from exc
            seen.add(f["name"])
            out.append(RegexFilter(f["name"], pattern, fields))
        return cls(str(data["version"]), tuple(out))

    def hits(self, question: str, answer: str) -> list[str]:
        """Names of every filter that matches, in conf order (the first is the drop reason).

        Hyperscan scans each text once for all patterns in prefilter mode (a superset of the
        matches: lookarounds are relaxed), and Python `re` confirms only the candidates it names;
        without Hyperscan every pattern is searched with `re`."""
        text = {"question": question, "answer": answer}
        db = _hyperscan_db(self)
        if db is None:
            return self.hits_re(question, answer)
        found: set[int] = set()
        for value in (question, answer):
            if value:
                db.scan(value.encode("utf-8", "surrogatepass"), match_event_handler=_collect, context=found)
        return [f.name for f in (self.filters[i] for i in sorted(found))
                if any(f.pattern.search(text[k]) for k in f.fields)]

    def hits_re(self, question: str, answer: str) -> list[str]:
        """`hits` with Python `re` alone (the reference the Hyperscan path is tested against)."""
        text = {"question": question, "answer": answer}
        return [f.name for f in self.filters if any(f.pattern.search(text[k]) for k in f.fields)]


_DBS: dict[str, object] = {}


def _collect(pattern_id: int, start: int, end: int, flags: int, found: set[int]) -> None:
    found.add(pattern_id)


def _hyperscan_db(filters: RegexFilters):
    """One compiled Hyperscan database per filter set and process (databases do not pickle)."""
    key = filters._key
    if key not in _DBS:
        try:
            import hyperscan
        except ImportError:
            _DBS[key] = None
            return None
        flags = (hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_SINGLEMATCH
                 | hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_UCP)
        db = hyperscan.Database()
        db.compile(expressions=[f.pattern.pattern.encode() for f in filters.filters],
                   ids=list(range(len(filters.filters))), elements=len(filters.filters),
                   flags=[flags] * len(filters.filters))
        _DBS[key] = db
    return _DBS[key]


@dataclass(frozen=True, kw_only=True)
class LengthRules:
    min_question_chars: int = 15
    max_question_chars: int = 400
    min_question_words: int = 4
    min_answer_chars: int = 1
    max_answer_chars: int = 1500


def check_length(question: str, answer: str, rules: LengthRules) -> str | None:
    if len(question) < rules.min_question_chars or len(normalize(question)) < rules.min_question_words:
        return "question_too_short"
    if len(question) > rules.max_question_chars:
        return "question_too_long"
    if len(answer.strip()) < rules.min_answer_chars:
        return "answer_too_short"
    if len(answer) > rules.max_answer_chars:
        return "answer_too_long"
    return None


_INTERROGATIVE = re.compile(r"^\s*(?:what|which|who|whom|whose|when|where|why|how|is|are|was|were|do|does|did|can|"
                            r"could|should|would|will|may|might|shall|has|have|had|in what|on what|for what|to what|"
                            r"under what|at what|by what|from what|with what|of what|according to what)\b", re.I)


def reads_as_question(text: str) -> bool:
    """Ends with '?' or starts with an interrogative word."""
    return text.rstrip().endswith("?") or bool(_INTERROGATIVE.match(text))


@dataclass(frozen=True, kw_only=True)
class FormRules:
    copy_words: int = 12
    """A question that repeats this many consecutive words of its chunk copies the passage."""
    copy_share: float = 0.8
    """…or whose word 5-grams are mostly (this share) found in the chunk."""


def check_form(question: str, answer: str, chunk: str, rules: FormRules, examples: frozenset[str]) -> str | None:
    """Is it a question about its chunk, in its own words? `chunk`: the chunk's `reference` form
    (normalized once per chunk, not per pair); `examples`: the normalized few-shot questions of the
    generation prompt (`example_keys`)."""
    q = question.strip()
    if not reads_as_question(q):
        return "not_a_question"
    words = normalize(q)
    if " ".join(words) in examples:
        return "copies_example"
    if copies(words, chunk, rules.copy_words, rules.copy_share):
        return "copies_passage"
    if " ".join(normalize(answer)) == " ".join(words):
        return "answer_repeats_question"
    return None


def example_keys(examples: list[str]) -> frozenset[str]:
    return frozenset(" ".join(normalize(e)) for e in examples)


def reference(chunk: str) -> str:
    """The chunk as `copies` searches it: normalized words between spaces."""
    return " " + " ".join(normalize(chunk)) + " "


def copies(words: list[str], ref: str, run: int, share: float, n: int = 5) -> bool:
    """Whether `words` repeat `run` consecutive words of the chunk (`reference` form), or `share` of
    their n-grams occur in it."""
    if not words:
        return False
    if len(words) >= run and any(" " + " ".join(words[i:i + run]) + " " in ref for i in range(len(words) - run + 1)):
        return True
    if len(words) < n:
        return False
    grams = [" " + " ".join(words[i:i + n]) + " " for i in range(len(words) - n + 1)]
    return sum(g in ref for g in grams) / len(grams) >= share


@dataclass(frozen=True, kw_only=True)
class LanguageRules:
    languages: list[str] = field(default_factory=lambda: ["en"])
    """Accepted languages (ISO 639-1) of question + answer, by py3langid (langid.py's model)."""
    min_confidence: float = 0.5
    """Below this normalized probability the text is `language_uncertain` (short technical strings
    with acronyms often are); 0 accepts any accepted-language guess."""


_IDENTIFIER = None


def check_language(question: str, answer: str, rules: LanguageRules) -> tuple[str | None, str, float]:
    """(reason or None, language, probability) of question + answer."""
    global _IDENTIFIER
    if _IDENTIFIER is None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        _IDENTIFIER = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    lang, prob = _IDENTIFIER.classify(f"{question} {answer}")
    prob = float(prob)
    if lang not in rules.languages:
        return "not_" + "_or_".join(rules.languages), lang, prob
    if prob < rules.min_confidence:
        return "language_uncertain", lang, prob
    return None, lang, prob
