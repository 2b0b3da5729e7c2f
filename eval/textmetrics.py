"""Reference-based metrics of free-text answers (paper 002's lexical and embedding metrics), per item.

- BLEU-1..4: sentence BLEU with n-grams up to n (sacrebleu, exponential smoothing, effective order so
  a short answer is not zero), 0-100; corpus sacreBLEU (4-gram, the standard signature) over all items.
- ROUGE-L: F-measure of the longest common subsequence (rouge-score, Porter stemming).
- Embedding cosine: sentence embeddings of answer and reference (`eval/embed.py`).
- BERTScore: precision / recall / F1 of greedy token matching on a local encoder's contextual
  embeddings (bert-score; default the embedded MiniLM's layer 6, no baseline rescaling: rescaling
  needs files bert-score downloads).

Each takes lists of predictions and references of equal length and returns one value per item, so the
paired bootstrap (`eval/bootstrap.py`) can compare two runs item by item.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BLEU_ORDERS = (1, 2, 3, 4)


def _check(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions against {len(references)} references")


def bleu(predictions: Sequence[str], references: Sequence[str], order: int) -> np.ndarray:
    from sacrebleu.metrics import BLEU

    _check(predictions, references)
    scorer = BLEU(max_ngram_order=order, effective_order=True, smooth_method="exp")
    return np.array([scorer.sentence_score(p or "", [r]).score for p, r in zip(predictions, references)], np.float64)


def corpus_bleu(predictions: Sequence[str], references: Sequence[str]) -> tuple[float, str]:
    """(sacreBLEU score, its signature)."""
    from sacrebleu.metrics import BLEU

    _check(predictions, references)
    scorer = BLEU()
    score = scorer.corpus_score([p or "" for p in predictions], [list(references)])
    return float(score.score), str(scorer.get_signature())


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    from rouge_score import rouge_scorer

    _check(predictions, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return np.array([scorer.score(r, p or "")["rougeL"].fmeasure for p, r in zip(predictions, references)],
                    np.float64)


class BertScore:
    """BERTScore with a local encoder folder (any Hugging Face encoder; `layer` picks its hidden layer)."""

    def __init__(self, folder: str, layer: int, *, batch_size: int = 32, device: str | None = None) -> None:
        from bert_score import BERTScorer

        self.folder, self.layer = folder, layer
        self.scorer = BERTScorer(model_type=folder, num_layers=layer, batch_size=batch_size, device=device,
                                 rescale_with_baseline=False, lang="en")

    def __call__(self, predictions: Sequence[str], references: Sequence[str]) -> dict[str, np.ndarray]:
        _check(predictions, references)
        if not predictions:
            return {k: np.zeros(0) for k in ("precision", "recall", "f1")}
        p, r, f = self.scorer.score([x or "" for x in predictions], list(references), verbose=False)
        return {"precision": p.numpy().astype(np.float64), "recall": r.numpy().astype(np.float64),
                "f1": f.numpy().astype(np.float64)}


def statements(text: str, max_statements: int = 8) -> list[str]:
    """The sentences of an answer (the units RAGAS-style metrics judge), at most `max_statements`."""
    import re

    parts = [s.strip() for s in re.split(r"(?<=[.!?;])\s+|\n+", text or "") if len(s.strip()) > 2]
    return parts[:max_statements]
