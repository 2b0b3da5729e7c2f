"""Validate and normalize one raw MCQ item: an item of the MCQ schema, or a Reject with the reason. Pure.

Each check has a stable reason (quarantine.rejected.reason). Repairs the import makes are recorded on
the item (`repairs`), never silent:

- option_prefix_removed: every option carried its number ("1. O-RAN.WG3"), so the numbers go.
- answer_index_from_text: the source's answer text is exactly another option than its index names
  (TeleQnA "option 5: Interface between an RNC and a Node B" where that is option 4): the text wins.
- answer_text_near_match: the answer text differs slightly from the option it names (plural, spacing).
"""
from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass

from pipelines.benchmarks.readers import MAX_RAW, RawItem
from pipelines.dedup.minhash import normalize
from pipelines.ingest.records import Reject

_PREFIX = re.compile(r"^\s*(\d+)\s*[.):]\s+")


@dataclass(frozen=True, kw_only=True)
class ItemRules:
    min_question_chars: int = 12
    """Shorter "questions" are labels, not questions (TeleQnA has 26 items whose question is "Research Papers")."""
    min_question_words: int = 3
    min_options: int = 2
    max_options: int = 10
    near_match: float = 0.9
    """difflib ratio above which an answer text that names its option's index counts as that option."""


def question_key(question: str) -> str:
    """The normalized question (case, accents, punctuation, spacing ignored), hashed: the split unit."""
    return hashlib.sha256(" ".join(normalize(question)).encode()).hexdigest()[:16]


def canon(text: str) -> str:
    """Case and spacing folded, punctuation kept: options that differ by "<" and ">" stay distinct."""
    return " ".join(text.casefold().split())


def item_id(category: str, question: str, choices: list[str]) -> str:
    body = "\x1f".join([category, canon(question), *(canon(c) for c in choices)])
    return f"{category}_{hashlib.sha256(body.encode()).hexdigest()[:16]}"


def check_item(raw: RawItem, category: str, rules: ItemRules) -> dict | Reject:
    """The normalized item (question, choices, answer 0-based, repairs, ids), or why it is refused."""
    def reject(reason: str, detail: str) -> Reject:
        return Reject(reason, detail, raw.location, raw.ordinal, raw.raw[:MAX_RAW], len(raw.raw))

    q = raw.question
    if not isinstance(q, str) or not q.strip():
        return reject("missing_question", f"question is {q!r}")
    q = " ".join(q.split())
    if len(q) < rules.min_question_chars or len(normalize(q)) < rules.min_question_words:
        return reject("question_too_short", f"question {q!r} has {len(q)} characters / {len(normalize(q))} words; "
                                            f"at least {rules.min_question_chars} / {rules.min_question_words} expected")
    choices = raw.choices
    if choices is None or (isinstance(choices, list) and not choices):
        return reject("no_options", "the item has no options")
    if not isinstance(choices, list) or not all(isinstance(c, str | int | float) for c in choices):
        return reject("wrong_shape", f"options must be a list of strings, got {type(choices).__name__}")
    choices = [" ".join(str(c).split()) for c in choices]
    repairs: list[str] = []
    numbers = [_PREFIX.match(c) for c in choices]
    if all(m and int(m.group(1)) == i + 1 for i, m in enumerate(numbers)):
        choices = [c[m.end():] for c, m in zip(choices, numbers)]
        repairs.append("option_prefix_removed")
    if len(choices) < rules.min_options:
        return reject("too_few_options", f"{len(choices)} option(s); at least {rules.min_options} expected")
    if len(choices) > rules.max_options:
        return reject("too_many_options", f"{len(choices)} options; at most {rules.max_options} expected")
    if any(not c for c in choices):
        return reject("empty_option", f"option(s) {[i + 1 for i, c in enumerate(choices) if not c]} are empty")
    keys = [canon(c) for c in choices]
    if len(set(keys)) < len(keys):
        same = [i + 1 for i, k in enumerate(keys) if keys.count(k) > 1]
        return reject("duplicate_options", f"options {same} read the same (case and spacing ignored)")

    answer = raw.answer
    if isinstance(answer, str) and answer.strip().lstrip("-").isdigit():
        answer = int(answer.strip())
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    if not isinstance(answer, int) or isinstance(answer, bool):
        return reject("answer_not_an_index", f"answer {raw.answer!r} is not an option number")
    index = answer - 1 if raw.one_based else answer
    if not 0 <= index < len(choices):
        base = "1" if raw.one_based else "0"
        return reject("answer_out_of_range", f"answer {raw.answer!r} names no option ({len(choices)} options, "
                                             f"numbered from {base})")
    if raw.answer_text:
        text = canon(raw.answer_text)
        if text != keys[index]:
            if text in keys:
                index = keys.index(text)
                repairs.append("answer_index_from_text")
            else:
                ratios = [difflib.SequenceMatcher(None, text, k).ratio() for k in keys]
                best = max(range(len(keys)), key=ratios.__getitem__)
                if best != index or ratios[index] < rules.near_match:
                    return reject("answer_text_mismatch",
                                  f"answer text {raw.answer_text!r} is not option {answer} ({choices[answer - 1]!r}) "
                                  f"nor any other option")
                repairs.append("answer_text_near_match")
    return {"item_id": item_id(category, q, choices), "question": q, "choices": choices, "answer": index,
            "question_key": question_key(q), "repairs": repairs, "subject": raw.subject,
            "difficulty": raw.difficulty, "explanation": raw.explanation}
