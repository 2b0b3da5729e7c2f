"""Parse a generator's output into question/answer pairs, robustly. Pure.

Two forms are read: JSON (what vLLM's structured output produces: a list of {question, answer};
an object holding such a list, or {"Question 1": …, "Answer 1": …} are accepted too) and the text
form of the paper's prompt 3 ("Question 1: … Answer 1: …", with or without bold, "Q1:"/"A1:").
Nothing is dropped silently: a pair beyond the expected count, a question left without its answer
(a truncated output), an answer without a question, a pair with an empty side, each becomes a
`Problem` that the stage quarantines with its raw text; an output with no readable pair at all is
one problem (empty_output, unparseable_output) carrying the whole output.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

QNA_JSON_SCHEMA = {
    "type": "array",
    "items": {"type": "object", "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
              "required": ["question", "answer"], "additionalProperties": False},
    "minItems": 1,
}
"""The structured-output schema sent to vLLM (its length is set per request: `schema_for`)."""


def schema_for(pairs: int) -> dict:
    return {**QNA_JSON_SCHEMA, "minItems": pairs, "maxItems": pairs}


@dataclass(frozen=True)
class Problem:
    reason: str
    detail: str
    raw: str


@dataclass
class Parsed:
    pairs: list[tuple[str, str]] = field(default_factory=list)
    format: str = "text"
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```\s*$")
_KIND = r"(?:question|answer|[qa](?=\s*\d|\s*:))"
_MARKER = re.compile(
    rf"(?:^[ \t>*#_-]*(?:\*\*|__)?\s*(?P<k1>{_KIND})\s*\d*\s*(?:\*\*|__)?\s*[:.)\]-]"   # at a line start
    rf"|(?<=\s)(?:\*\*|__)?(?P<k2>{_KIND})\s*\d+\s*(?:\*\*|__)?\s*:)"                 # inline: "… A1: …"
    r"\s*(?:\*\*|__)?", re.I | re.M)
_TAIL = re.compile(r"\n\s*\n|\n\s*(?:\*\*)?(?:explanation|note|context|source|reference)s?\s*(?:\*\*)?\s*:", re.I)
_QUESTION_KEYS = ("question", "q", "statement")
_ANSWER_KEYS = ("answer", "a", "response")


def parse_pairs(output: str | None, expected: int = 5) -> Parsed:
    text = (output or "").strip()
    if not text:
        return Parsed(problems=[Problem("empty_output", "the model returned no text", output or "")])
    parsed = _json(text) or _text(text)
    if not parsed.pairs and not parsed.problems:
        return Parsed(problems=[Problem("unparseable_output", "no question/answer pair could be read", text)])
    if not parsed.pairs:
        parsed.problems.append(Problem("unparseable_output", "no complete question/answer pair could be read", text))
        return parsed
    if len(parsed.pairs) > expected:
        extra = parsed.pairs[expected:]
        parsed.pairs = parsed.pairs[:expected]
        parsed.notes.append(f"extra_pairs:{len(extra)}")
        parsed.problems += [Problem("extra_pair", f"pair {expected + i + 1} of {expected + len(extra)}; {expected} "
                                                  f"were asked for", f"Question: {q}\nAnswer: {a}")
                            for i, (q, a) in enumerate(extra)]
    elif len(parsed.pairs) < expected:
        parsed.notes.append(f"fewer_pairs:{len(parsed.pairs)}")
    return parsed


def _json(text: str) -> Parsed | None:
    body = _FENCE.sub("", text).strip()
    start = min((i for i in (body.find("["), body.find("{")) if i >= 0), default=-1)
    if start < 0 or start > 200:  # prose first: the text form
        return None
    try:
        obj, _ = json.JSONDecoder().raw_decode(body, start)
    except json.JSONDecodeError:
        found = [(m.end(), _load(m.group(0))) for m in re.finditer(r"\{[^{}]*\}", body[start:])]
        objects = [o for _, o in found if isinstance(o, dict)]
        if not objects:
            return None
        out = _from_items(objects, "json_repaired")
        out.notes.append("truncated")
        tail = body[start + found[-1][0]:].strip(" \t\r\n,]")
        if tail:
            out.problems.append(Problem("truncated_pair", "the JSON output breaks off inside an item", tail[:4000]))
        return out
    items = _items(obj)
    if items is None:
        return None
    return _from_items(items, "json")


def _load(s: str):
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        return None


def _items(obj) -> list | None:
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict):
        for key in ("pairs", "questions", "qna", "items", "data"):
            if isinstance(obj.get(key), list):
                return obj[key]
        numbered = {k.lower(): v for k, v in obj.items() if isinstance(k, str)}
        qs = sorted((int(m.group(1)), v) for k, v in numbered.items() if (m := re.fullmatch(r"question\s*(\d+)", k)))
        if qs:
            return [{"question": v, "answer": numbered.get(f"answer {n}", numbered.get(f"answer{n}"))} for n, v in qs]
        return [obj]
    return None


def _from_items(items: list, fmt: str) -> Parsed:
    out = Parsed(format=fmt)
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            out.problems.append(Problem("malformed_pair", f"item {n + 1} is {type(item).__name__}, not an object",
                                        json.dumps(item)[:4000]))
            continue
        low = {str(k).lower(): v for k, v in item.items()}
        q = next((low[k] for k in _QUESTION_KEYS if k in low), None)
        a = next((low[k] for k in _ANSWER_KEYS if k in low), None)
        _add(out, q if isinstance(q, str) else None, a if isinstance(a, str | int | float) else None,
             json.dumps(item)[:4000])
    return out


def _text(text: str) -> Parsed:
    out = Parsed(format="text")
    marks = list(_MARKER.finditer(text))
    pending: tuple[str, str] | None = None  # (question, raw)
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[m.end():end]
        kind = (m.group("k1") or m.group("k2")).lower()[0]
        if kind == "q":
            if pending:
                out.problems.append(Problem("unanswered_question", "a question followed by another question",
                                            pending[1]))
            pending = (_clean(body), text[m.start():end])
        elif pending is None:
            out.problems.append(Problem("orphan_answer", "an answer without a question before it", text[m.start():end]))
        else:
            _add(out, pending[0], _clean(_TAIL.split(body, maxsplit=1)[0]), pending[1] + text[m.start():end])
            pending = None
    if pending:
        out.problems.append(Problem("truncated_pair", "the output ends with a question and no answer", pending[1]))
        out.notes.append("truncated")
    return out


def _add(out: Parsed, q: str | None, a, raw: str) -> None:
    q = _clean(q or "")
    a = _clean(str(a)) if a is not None else ""
    if not q or not a:
        out.problems.append(Problem("incomplete_pair", f"{'question' if not q else 'answer'} is empty", raw))
    else:
        out.pairs.append((q, a))


def _clean(s: str) -> str:
    s = re.sub(r"(\*\*|__)", "", s)
    return " ".join(s.split()).strip(" \"'")


def few_shot_questions(template: str) -> list[str]:
    """The example questions of a generation prompt (after its {content} slot), JSON or text form:
    a generated question that repeats one copied the example, not the passage."""
    tail = template.split("{content}", 1)[-1]
    if "[" in tail:
        found = parse_pairs(tail[tail.index("["):], expected=100)
        if found.pairs:
            return [q for q, _ in found.pairs]
    return [q for q, _ in parse_pairs(tail, expected=100).pairs]
