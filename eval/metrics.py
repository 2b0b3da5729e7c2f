"""Tele-Eval metrics as the paper defines them (§V), as pure functions of per-item values.

- Ans-PPL (eq. 5): the mean over pairs of the per-pair mean answer-token log-likelihood, then
  exp of its negative. Each pair weighs the same whatever its answer's length.
- SemScore (eq. 6): cosine of the sentence embeddings of the ground truth and the model's answer.
- LLM-Eval (eq. 7): 100 × the share of answers a judge calls correct; the judge's verdict is read
  from its next-token probabilities of "Yes" and "No".
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    p_yes: float
    """P(Yes) / (P(Yes) + P(No)) for the judge's first answer token."""
    label_mass: float
    """P(Yes) + P(No): how much of the judge's next-token probability the two labels hold."""

    @property
    def correct(self) -> bool:
        return self.p_yes > 0.5


def verdict(logprob_yes: float, logprob_no: float) -> Verdict:
    yes, no = math.exp(logprob_yes), math.exp(logprob_no)
    return Verdict(p_yes=1.0 / (1.0 + math.exp(logprob_no - logprob_yes)), label_mass=yes + no)


def pair_mean_logprob(logprob_sum: float, n_tokens: int) -> float:
    """The inner term of eq. 5 for one pair: its answer tokens' mean log-probability."""
    if n_tokens <= 0:
        raise ValueError("an answer of no tokens has no perplexity")
    return logprob_sum / n_tokens


def ans_ppl(pair_means: Sequence[float]) -> float:
    """eq. 5 from the per-pair means; nan when no pair could be scored."""
    if not pair_means:
        return float("nan")
    return math.exp(-sum(pair_means) / len(pair_means))


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def llm_eval(correct: Sequence[bool]) -> float:
    """eq. 7: 100 × the share judged correct; nan on no judged item."""
    return 100.0 * sum(map(bool, correct)) / len(correct) if correct else float("nan")
