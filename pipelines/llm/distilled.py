"""A fastText-format classifier distilled from the LLM judge's verdicts (floret bindings: the
`fasttext` wheel's training fails here and its predict breaks on numpy 2, see DESIGN.md).

Pure helpers: the text form the classifier sees, training from (text, label) pairs, and batch
prediction of P(yes). Models are files; `load` caches one per process for Spark workers.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# ASCII punctuation and whitespace become spaces, except "." and "-" inside tokens (TS 38.331, Wi-Fi).
_SPACE_OUT = str.maketrans({c: " " for c in "\t\n\r\x0b\x0c,;:!?()[]{}\"'/\\<>|*+=#@&%$~^`_"})


@dataclass(frozen=True, kw_only=True)
class ClassifierParams:
    max_chars: int = 4000
    """Characters of a document the classifier reads (the judge reads up to 10,000)."""
    epoch: int = 25
    lr: float = 0.5
    word_ngrams: int = 2
    dim: int = 64
    min_count: int = 1
    seed: int = 0


def features(text: str, max_chars: int) -> str:
    """Lower-cased text on one line with punctuation spaced out (fastText splits on whitespace);
    spec numbers and hyphenated terms stay whole. str.translate: ~50,000 4-KB documents/s."""
    t = (text or "")[:max_chars].lower().translate(_SPACE_OUT) + " "
    return t.replace(". ", " ").replace(" -", " ").replace("- ", " ").replace(" .", " ")


def train(texts: Sequence[str], labels: Sequence[bool], params: ClassifierParams, path: str) -> None:
    """Train on (text, judge label) pairs and save the model to the local file `path`."""
    if len(set(labels)) < 2:
        raise ValueError(f"the training sample has only {'positive' if labels and labels[0] else 'negative'} "
                         f"judge labels ({len(labels)} documents); judge a larger sample")
    train_labelled(texts, ["yes" if label else "no" for label in labels], params, path)


def train_labelled(texts: Sequence[str], labels: Sequence[str], params: ClassifierParams, path: str) -> None:
    """fastText supervised training on (text, label name) pairs, saved to the local file `path`."""
    import floret

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
        for text, label in zip(texts, labels, strict=True):
            fh.write(f"__label__{label} {features(text, params.max_chars)}\n")
        train_path = fh.name
    try:
        model = floret.train_supervised(input=train_path, epoch=params.epoch, lr=params.lr,
                                        wordNgrams=params.word_ngrams, dim=params.dim, minCount=params.min_count,
                                        thread=1, seed=params.seed, verbose=0)
        model.save_model(path)
    finally:
        os.unlink(train_path)


_MODELS: dict[str, object] = {}


def load(path: str):
    import floret

    if path not in _MODELS:
        _MODELS[path] = floret.load_model(path)
    return _MODELS[path]


def predict_yes(model, texts: Sequence[str], max_chars: int) -> np.ndarray:
    """P(yes) per text. (floret's k=2 multi-line output repeats the top probability, so read the
    top label only: with two classes P(yes) = 1 - P(no).)"""
    if not texts:
        return np.zeros(0)
    labels, probs = model.predict([features(t, max_chars) for t in texts], k=1)
    top = np.array([float(p[0]) if len(p) else 0.5 for p in probs])
    is_yes = np.array([bool(lab) and lab[0] == "__label__yes" for lab in labels])
    return np.clip(np.where(is_yes, top, 1.0 - top), 0.0, 1.0)
