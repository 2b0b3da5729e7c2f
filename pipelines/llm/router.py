"""Category router: which adapter should answer a request that names no category (paper 001's open
question). A fastText-format classifier (floret, as the distilled relevance cascade) over the
benchmark categories, trained on the train split's questions of gold.benchmarks and measured on its
test split; it reads the question and its options, as the adapter will.

    router = train_router(questions, categories, "reports/adapters/router.bin")
    route(router, ["Which RRC message ..."])  → [("teleqna", 0.97)]
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pipelines.llm.distilled import ClassifierParams, features, load, train_labelled

PREFIX = "__label__"


@dataclass
class RouterReport:
    path: str
    categories: list[str]
    train_items: int
    test_items: int
    accuracy: float
    """Share of test questions routed to their own category."""
    per_category: dict[str, float]
    confusion: dict[str, dict[str, int]]
    """true category → routed category → count (test split)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)


def question_text(question: str, choices: Sequence[str]) -> str:
    return question + "\n" + "\n".join(choices)


def train_router(texts: Sequence[str], categories: Sequence[str], path: str | Path,
                 params: ClassifierParams = ClassifierParams(epoch=10, lr=0.5, word_ngrams=2, dim=32)) -> str:
    if len(set(categories)) < 2:
        raise ValueError(f"a router needs two or more categories; the training questions hold {sorted(set(categories))}")
    bad = sorted({c for c in categories if not c or any(ch.isspace() for ch in c)})
    if bad:
        raise ValueError(f"category names must be single words (fastText labels): {bad}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    train_labelled(texts, categories, params, str(path))
    return str(path)


def route(model, texts: Sequence[str], max_chars: int = 4000) -> list[tuple[str, float]]:
    """(category, probability) of the top label per text."""
    if not texts:
        return []
    labels, probs = model.predict([features(t, max_chars) for t in texts], k=1)
    return [(lab[0].removeprefix(PREFIX), float(p[0])) if len(lab) else ("", 0.0) for lab, p in zip(labels, probs)]


def measure(model, path: str, texts: Sequence[str], truth: Sequence[str], train_items: int) -> RouterReport:
    got = [c for c, _ in route(model, texts)]
    confusion: dict[str, Counter] = {}
    for t, g in zip(truth, got, strict=True):
        confusion.setdefault(t, Counter())[g] += 1
    per = {t: c[t] / sum(c.values()) for t, c in sorted(confusion.items())}
    acc = sum(t == g for t, g in zip(truth, got)) / max(1, len(truth))
    return RouterReport(path=path, categories=sorted(confusion), train_items=train_items, test_items=len(truth),
                        accuracy=acc, per_category=per, confusion={t: dict(c) for t, c in sorted(confusion.items())})


def load_router(path: str | Path):
    return load(str(path))
