"""Dual-space knowledge distillation with cross-model attention (DSKD; Zhang et al., 2024), for a
teacher and a student that tokenize differently (paper 002 §3).

The two models' next-token distributions live over different vocabularies, so vanilla KD cannot
compare them. DSKD moves each model's hidden states into the other's representation space and uses
the other model's own head there, after aligning the two token sequences of one text with a learned
cross-model attention (CMA):

    Q = W_q [e_s(x_i); e_s(x_{i+1})]      the student's token and its target, embedded (student tokens i)
    K = W_k [e_t(y_j); e_t(y_{j+1})]      the same for the teacher's tokens j
    A_t→s = softmax(Q Kᵀ / √d)  [n, m]    A_s→t = softmax(K Qᵀ / √d)  [m, n]

    teacher → student:  h_t→s = A_t→s · W_t→s h_t,   q_t→s = softmax(head_s(h_t→s))   over the student vocabulary
    student → teacher:  h_s→t = A_s→t · W_s→t h_s,   q_s→t = softmax(head_t(h_s→t))   over the teacher vocabulary

    loss_dskd = CE(q_t→s, student targets)               trains the projectors so the projected teacher predicts
              + KL(q_t→s ‖ p_s)  (q_t→s detached)        the student learns the teacher's view in its own space
              + KL(p_t ‖ q_s→t)                          and its states, in the teacher's space, match the teacher

KL is at temperature T (× T²) as in vanilla KD. Embeddings are taken without gradient (the queries
and keys only align); the student's head in the t→s direction is detached too, so the projector's CE
does not move the student. Positions are the labelled ones: the student's target tokens and, on the
teacher side, the tokens of the same text span (each packed document is decoded, split at its first
labelled token and re-tokenized by the teacher in two parts). Special tokens are decoded to their
text, so a teacher with another chat template reads the student's rendering as text.

The projector is a module of the student (`attach`) so DeepSpeed trains and checkpoints it with the
adapter; HF exports leave it out. ZeRO stage 3 is refused (the projector runs outside the model's
forward, where stage 3 would not gather its weights).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from training.data import IGNORE
from training.kd import KDError, KDSpec

PROJECTOR = "dskd_projector"


class Projector(torch.nn.Module):
    """Cross-model attention and the two space projections."""

    def __init__(self, d_student: int, d_teacher: int, d_attn: int | None = None) -> None:
        super().__init__()
        d = d_attn or min(d_student, d_teacher)
        self.d = d
        self.query = torch.nn.Linear(2 * d_student, d)
        self.key = torch.nn.Linear(2 * d_teacher, d)
        self.t2s = torch.nn.Linear(d_teacher, d_student)
        self.s2t = torch.nn.Linear(d_student, d_teacher)

    def scores(self, q_in: torch.Tensor, k_in: torch.Tensor) -> torch.Tensor:
        """[n, m] float32 attention logits between student positions (queries) and teacher positions (keys)."""
        q = self.query(self._own(q_in / q_in.float().std().clamp(min=1e-6)))
        k = self.key(self._own(k_in / k_in.float().std().clamp(min=1e-6)))
        return (q @ k.t()).float() / math.sqrt(self.d)

    def to_student(self, teacher_states: torch.Tensor) -> torch.Tensor:
        """Teacher hidden states in the student's space (float32)."""
        return self.t2s(self._own(teacher_states)).float()

    def to_teacher(self, student_states: torch.Tensor) -> torch.Tensor:
        """Student hidden states in the teacher's space (float32)."""
        return self.s2t(self._own(student_states)).float()

    def _own(self, x: torch.Tensor) -> torch.Tensor:
        """`x` in the projector's dtype: bf16 under DeepSpeed's bf16 mode, where no autocast casts inputs."""
        return x.to(self.query.weight.dtype)


def attach(student: torch.nn.Module, d_student: int, d_teacher: int) -> Projector:
    proj = Projector(d_student, d_teacher)
    student.add_module(PROJECTOR, proj)
    proj.requires_grad_(True)
    return proj


@dataclass
class Side:
    """One model's view of one document: hidden states and embedded (token, target) pairs at its
    labelled positions, and those targets."""
    hidden: torch.Tensor
    """[positions, d] last hidden states (after the final norm) at the labelled positions."""
    pairs: torch.Tensor
    """[positions, 2d] embeddings of the token at the position and of its target, no gradient."""
    targets: torch.Tensor
    """[positions] the target token ids."""


def pair_embeddings(embed: torch.nn.Module, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """[len(positions), 2d]: embed(ids[p]) and embed(ids[p + 1]), without gradient."""
    with torch.no_grad():
        e = embed(ids)
    return torch.cat([e.index_select(0, positions), e.index_select(0, positions + 1)], -1).detach()


def dskd_sum(student: Side, teacher: Side, proj: Projector, student_head: torch.Tensor, teacher_head: torch.Tensor,
             spec: KDSpec) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(KD sum, projector CE sum, student positions) of one document. Heads are the two models'
    output weights [vocab, d]."""
    n, m = student.hidden.shape[0], teacher.hidden.shape[0]
    if n == 0 or m == 0:
        zero = student.hidden.new_zeros((), dtype=torch.float32)
        return zero, zero, n
    if student.hidden.shape[1] != student_head.shape[1] or teacher.hidden.shape[1] != teacher_head.shape[1]:
        raise KDError(f"hidden sizes {student.hidden.shape[1]} / {teacher.hidden.shape[1]} do not match the heads "
                      f"{tuple(student_head.shape)} / {tuple(teacher_head.shape)}")
    s = proj.scores(student.pairs, teacher.pairs)          # [n, m]
    t_h = teacher.hidden.detach().float()
    s_h = student.hidden.float()
    h_t2s = torch.softmax(s, -1) @ proj.to_student(t_h)   # teacher states aligned to student positions
    h_s2t = torch.softmax(s.t(), -1) @ proj.to_teacher(s_h)  # student states aligned to teacher positions
    tau = spec.temperature
    # teacher → student: the projected teacher predicts the student's targets (trains the projector) ...
    q_t2s = h_t2s @ student_head.detach().float().t()     # [n, V_s]
    ce = F.cross_entropy(q_t2s, student.targets, reduction="sum")
    # ... and the student learns that distribution in its own space
    p_s = s_h @ student_head.float().t()
    kd_t2s = _kl(q_t2s.detach(), p_s, tau, spec.divergence)
    # student → teacher: the student's states, in the teacher's space, through the teacher's head
    with torch.no_grad():
        p_t = t_h @ teacher_head.float().t()
    q_s2t = h_s2t @ teacher_head.detach().float().t()     # [m, V_t]
    kd_s2t = _kl(p_t, q_s2t, tau, spec.divergence)
    # each direction is a per-position mean over its own positions; scaled to the student's count
    return (kd_t2s + kd_s2t * (n / m)) * tau ** 2, ce, n


def _kl(target_logits: torch.Tensor, logits: torch.Tensor, tau: float, divergence: str) -> torch.Tensor:
    lt = F.log_softmax(target_logits / tau, -1)
    ls = F.log_softmax(logits / tau, -1)
    return ((lt.exp() * (lt - ls)).sum() if divergence == "forward" else (ls.exp() * (ls - lt)).sum())


def documents(micro: dict, labels: torch.Tensor) -> list[tuple[int, int, int]]:
    """(row, start, stop) of every packed document of a micro-batch that carries a label: documents
    start where the position ids restart at 0."""
    out = []
    pos = micro["position_ids"]
    for r in range(pos.shape[0]):
        starts = (pos[r] == 0).nonzero().squeeze(1).tolist() + [pos.shape[1]]
        for a, b in zip(starts[:-1], starts[1:]):
            if (labels[r, a:b] != IGNORE).any():
                out.append((r, a, b))
    return out


def teacher_tokens(student_ids: list[int], first_target: int, student_tok, teacher_tok) -> tuple[list[int], int]:
    """The teacher's tokens of a student document and the index of its first target token: the text
    before the student's first target and the rest, decoded and tokenized apart (so the target span
    is the same text on both sides)."""
    head = student_tok.decode(student_ids[:first_target], skip_special_tokens=False)
    tail = student_tok.decode(student_ids[first_target:], skip_special_tokens=False)
    h = teacher_tok(head, add_special_tokens=False)["input_ids"]
    t = teacher_tok(tail, add_special_tokens=False)["input_ids"]
    if not h:  # the first target needs a position before it
        bos = teacher_tok.bos_token_id if teacher_tok.bos_token_id is not None else teacher_tok.eos_token_id
        h = [bos]
    return h + t, len(h)
