"""Reference-based metrics of free-text answers (paper 002's lexical and embedding metrics), per item.

- BLEU-1..4: sentence BLEU with n-grams up to n (sacrebleu, exponential smoothing, effective order so
  a short answer is not zero), 0-100; corpus sacreBLEU (4-gram, the standard signature) over all items.
- ROUGE-L: F-measure of the longest common subsequence (rouge-score, Porter stemming).
- Embedding cosine: sentence embeddings of answer and reference (`eval/embed.py`).
- BERTScore: precision / recall / F1 of greedy token matching on a local encoder's contextual
  embeddings (default the embedded MiniLM's layer 6; no idf, no baseline rescaling).

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
    """BERTScore (Zhang et al. 2020) with a local encoder folder: each token of the answer and of the
    reference is embedded by the encoder's hidden layer `layer` (special tokens left out) and L2-normed;
    precision is the mean over answer tokens of their best cosine with a reference token, recall the
    mean over reference tokens of their best cosine with an answer token, F1 their harmonic mean. No
    idf weighting and no baseline rescaling (both need corpus statistics or files from a hub).

    Written here rather than taken from bert-score 0.3.13, whose tokenization calls a tokenizer method
    that transformers 5 no longer has; the arithmetic is the paper's.
    """

    def __init__(self, folder: str, layer: int, *, batch_size: int = 32, max_tokens: int = 512,
                 device: str | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.folder, self.layer, self.batch_size = folder, layer, batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).to(self.device).eval()
        depth = self.model.config.num_hidden_layers
        if not 0 < layer <= depth:
            raise ValueError(f"BERTScore layer {layer} is outside the encoder {folder} (layers 1..{depth})")
        self.max_tokens = min(max_tokens, getattr(self.tokenizer, "model_max_length", max_tokens) or max_tokens)

    def _embed(self, texts: list[str]) -> list:
        """Per text, the normed embeddings of its non-special tokens (a [tokens, dim] tensor)."""
        import torch

        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[start:start + self.batch_size], padding=True, truncation=True,
                                   max_length=self.max_tokens, return_tensors="pt",
                                   return_special_tokens_mask=True)
            special = batch.pop("special_tokens_mask").bool()
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with torch.inference_mode():
                hidden = self.model(**batch, output_hidden_states=True).hidden_states[self.layer]
            hidden = torch.nn.functional.normalize(hidden.float(), dim=-1).cpu()
            keep = batch["attention_mask"].cpu().bool() & ~special
            out.extend(hidden[i][keep[i]] for i in range(hidden.shape[0]))
        return out

    def __call__(self, predictions: Sequence[str], references: Sequence[str]) -> dict[str, np.ndarray]:
        _check(predictions, references)
        n = len(predictions)
        p, r = np.zeros(n), np.zeros(n)
        if n:
            cand = self._embed([x or "" for x in predictions])
            ref = self._embed([x or "" for x in references])
            for i, (c, f) in enumerate(zip(cand, ref, strict=True)):
                if len(c) and len(f):
                    sim = c @ f.T
                    p[i], r[i] = float(sim.max(dim=1).values.mean()), float(sim.max(dim=0).values.mean())
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
        return {"precision": p, "recall": r, "f1": f1}


def statements(text: str, max_statements: int = 8) -> list[str]:
    """The sentences of an answer (the units RAGAS-style metrics judge), at most `max_statements`."""
    import re

    parts = [s.strip() for s in re.split(r"(?<=[.!?;])\s+|\n+", text or "") if len(s.strip()) > 2]
    return parts[:max_statements]
