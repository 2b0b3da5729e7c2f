"""Vanilla knowledge distillation losses (paper 002 §3: the teacher and the student share a vocabulary).

At each position that carries a label (the answer tokens of SFT, every next token of CPT), the
student's next-token distribution is pulled toward the teacher's:

    KD = T² · KL(softmax(z_teacher / T) ‖ softmax(z_student / T))        (forward KL, Hinton et al.)

with temperature T (the T² keeps gradient magnitudes comparable across temperatures), and the
training objective mixes it with the usual cross-entropy on the labels:

    loss = (1 − rate) · CE + rate · KD

Both are returned as sums over positions with their count, so the trainer can weight them by tokens
over the global batch like its cross-entropy. Reverse KL (KL(student ‖ teacher), mode-seeking) is the
`reverse` divergence. Different vocabularies need dual-space KD (DSKD), not these.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F


class KDError(ValueError):
    """Student and teacher outputs that cannot be compared position by position."""


@dataclass(frozen=True, kw_only=True)
class KDSpec:
    temperature: float = 2.0
    rate: float = 0.5
    """Weight of KD in the objective; 1 − rate goes to the cross-entropy on the labels."""
    divergence: Literal["forward", "reverse"] = "forward"
    chunk_rows: int = 1024
    """Positions per softmax chunk (bounds the [positions, vocabulary] temporaries)."""

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise KDError(f"temperature {self.temperature}: must be > 0")
        if not 0 <= self.rate <= 1:
            raise KDError(f"rate {self.rate}: must lie in [0, 1]")
        if self.divergence not in ("forward", "reverse"):
            raise KDError(f"divergence {self.divergence!r}: forward or reverse")


def _positions(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    flat = logits.reshape(-1, logits.shape[-1])
    return flat if mask is None else flat[mask.reshape(-1)]


def kd_sum(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor | None,
           spec: KDSpec) -> tuple[torch.Tensor, int]:
    """(Σ over masked positions of T²·KL, number of positions). Logits are [batch, seq, vocab] (or
    [positions, vocab]) predicting the next token; `mask` marks the positions with a label (None: all of
    them, as when the logits were taken at the labelled positions only; a boolean mask on a GPU costs a
    device sync). The teacher gets no gradient."""
    if student_logits.shape[-1] != teacher_logits.shape[-1]:
        raise KDError(f"student vocabulary {student_logits.shape[-1]:,} ≠ teacher vocabulary "
                      f"{teacher_logits.shape[-1]:,}: vanilla KD compares distributions over one vocabulary; "
                      "use dual-space KD (dskd) for models with different tokenizers")
    if student_logits.shape[:-1] != teacher_logits.shape[:-1] or (
            mask is not None and student_logits.shape[:-1] != mask.shape):
        raise KDError(f"positions differ: student {tuple(student_logits.shape[:-1])}, teacher "
                      f"{tuple(teacher_logits.shape[:-1])}, mask {None if mask is None else tuple(mask.shape)}")
    mask = None if mask is None else mask.bool()
    s, t = _positions(student_logits, mask), _positions(teacher_logits.detach(), mask)
    total = student_logits.new_zeros((), dtype=torch.float32)
    for start in range(0, s.shape[0], spec.chunk_rows):
        ls = F.log_softmax(s[start:start + spec.chunk_rows].float() / spec.temperature, -1)
        lt = F.log_softmax(t[start:start + spec.chunk_rows].float() / spec.temperature, -1)
        if spec.divergence == "forward":
            kl = (lt.exp() * (lt - ls)).sum(-1)
        else:
            kl = (ls.exp() * (ls - lt)).sum(-1)
        total = total + kl.sum()
    return total * spec.temperature ** 2, int(s.shape[0])


def topk_kd_sum(student_logits: torch.Tensor, teacher_ids: torch.Tensor, teacher_logp: torch.Tensor,
                spec: KDSpec) -> tuple[torch.Tensor, int]:
    """KD against a cached teacher: its top-k token ids and log-probabilities per position
    ([positions, k]). Both distributions are tempered and renormalized on the teacher's top-k support,
    so the value is zero when the student's distribution equals the teacher's there. Student logits
    are [positions, vocab] at the same labelled positions, in the same order."""
    if student_logits.shape[0] != teacher_ids.shape[0]:
        raise KDError(f"the cache holds {teacher_ids.shape[0]:,} positions for this batch, the student "
                      f"{student_logits.shape[0]:,}: the cache belongs to other shards; delete it to rebuild")
    if teacher_ids.numel() and int(teacher_ids.max()) >= student_logits.shape[-1]:
        raise KDError(f"cached teacher token id {int(teacher_ids.max())} is outside the student's vocabulary of "
                      f"{student_logits.shape[-1]:,}: vanilla KD needs one vocabulary")
    total = student_logits.new_zeros((), dtype=torch.float32)
    ids, tlp = teacher_ids.to(student_logits.device), teacher_logp.to(student_logits.device)
    for start in range(0, ids.shape[0], spec.chunk_rows):
        chunk = slice(start, start + spec.chunk_rows)
        ls = F.log_softmax(student_logits[chunk].float().gather(1, ids[chunk]) / spec.temperature, -1)
        lt = F.log_softmax(tlp[chunk].float() / spec.temperature, -1)
        kl = (lt.exp() * (lt - ls)).sum(-1) if spec.divergence == "forward" else (ls.exp() * (ls - lt)).sum(-1)
        total = total + kl.sum()
    return total * spec.temperature ** 2, int(ids.shape[0])


def objective(ce_sum: torch.Tensor, kd: torch.Tensor, tokens: int, spec: KDSpec) -> torch.Tensor:
    """The mixed per-token loss (1 − rate)·CE + rate·KD from their sums over `tokens` positions."""
    return ((1 - spec.rate) * ce_sum + spec.rate * kd) / max(1, tokens)
