"""Reading a model's choice out of a multiple-choice answer, and voting over samples (pure).

Answers name an option by number ("3", "option 3", "Answer: 3)"), by letter ("C", "(c)") or by its
text. `extract` tries, in order: a leading number or letter, an "option/answer N" phrase anywhere, and
the one option whose text the answer contains (the longest when several do). None when nothing names
exactly one option: counted wrong, and recorded as `no_choice_found`.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

_LEAD = re.compile(r"^\s*(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)?\s*(?:is|:)?\s*[\(\[]?\s*"
                   r"(?:(?P<num>[1-9])(?:[\)\]\.:,]|$|\s)|(?P<let>[A-Ia-i])\s*(?:[\)\]\.:,]|$))", re.IGNORECASE)
"""A number, or a letter closed by a bracket or punctuation ("A UPF is…" is an article, not option A)."""
_PHRASE = re.compile(r"\b(?:answer|option|choice)\s*(?:is|:)?\s*[\(\[]?\s*(?:(?P<num>[1-9])|(?P<let>[A-Ia-i]))\b",
                     re.IGNORECASE)


def extract(answer: str, choices: Sequence[str]) -> int | None:
    """0-based index of the option `answer` names, or None."""
    text = (answer or "").strip()
    if not text:
        return None
    n = len(choices)
    for pattern in (_LEAD, _PHRASE):
        m = pattern.search(text)
        if m:
            i = int(m["num"]) - 1 if m["num"] else ord(m["let"].lower()) - ord("a")
            if 0 <= i < n:
                return i
    low = " ".join(text.lower().split())
    named = [i for i, c in enumerate(choices) if c.strip() and " ".join(c.lower().split()) in low]
    if len(named) == 1:
        return named[0]
    if named:  # "5G NR" inside "5G NR-U": the longest option the answer contains, when it is unique
        longest = max(len(choices[i]) for i in named)
        top = [i for i in named if len(choices[i]) == longest]
        return top[0] if len(top) == 1 else None
    return None


def majority(votes: Sequence[int | None]) -> int | None:
    """The most frequent extracted choice (None votes ignored); a tie goes to the choice reached first."""
    counts = Counter(v for v in votes if v is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(v for v in votes if v is not None and counts[v] == best)


def majority_baseline(answers: Sequence[int]) -> float:
    """Accuracy of always giving the most common correct option index of these items."""
    if not answers:
        return float("nan")
    return Counter(answers).most_common(1)[0][1] / len(answers)
