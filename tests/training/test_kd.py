"""Vanilla KD: zero when the student is the teacher, the textbook values on literal distributions, a
refusal for different vocabularies, and a real tiny student moving toward a teacher in a short run."""
import math

import pytest
import torch

from training.kd import KDError, KDSpec, kd_sum, objective


def test_kd_is_zero_when_the_student_is_the_teacher():
    logits = torch.randn(2, 7, 50)
    mask = torch.ones(2, 7, dtype=torch.bool)
    for divergence in ("forward", "reverse"):
        value, n = kd_sum(logits, logits.clone(), mask, KDSpec(divergence=divergence))
        assert n == 14 and abs(float(value)) < 1e-5


def test_kd_matches_the_kl_of_literal_distributions_on_labelled_positions_only():
    p, q = torch.tensor([0.7, 0.2, 0.1]), torch.tensor([0.4, 0.4, 0.2])
    teacher, student = p.log()[None, None], q.log()[None, None]
    expected = float((p * (p / q).log()).sum())
    value, n = kd_sum(student, teacher, torch.ones(1, 1, dtype=torch.bool), KDSpec(temperature=1.0))
    assert n == 1 and float(value) == pytest.approx(expected, rel=1e-5)
    reverse, _ = kd_sum(student, teacher, torch.ones(1, 1, dtype=torch.bool), KDSpec(temperature=1.0,
                                                                                     divergence="reverse"))
    assert float(reverse) == pytest.approx(float((q * (q / p).log()).sum()), rel=1e-5)
    # at temperature 2 the distributions soften (KL of p^½, q^½ renormalized) and T² = 4 rescales it
    ps, qs = p.sqrt() / p.sqrt().sum(), q.sqrt() / q.sqrt().sum()
    soft, _ = kd_sum(student, teacher, torch.ones(1, 1, dtype=torch.bool), KDSpec(temperature=2.0))
    assert float(soft) == pytest.approx(4 * float((ps * (ps / qs).log()).sum()), rel=1e-5)
    # positions without a label do not count; chunking does not change the sum
    s, t = torch.randn(3, 5, 20), torch.randn(3, 5, 20)
    mask = torch.rand(3, 5) > 0.5
    whole, n = kd_sum(s, t, mask, KDSpec(chunk_rows=1024))
    chunked, _ = kd_sum(s, t, mask, KDSpec(chunk_rows=2))
    assert n == int(mask.sum()) and float(whole) == pytest.approx(float(chunked), rel=1e-5)
    assert float(objective(torch.tensor(6.0), torch.tensor(2.0), 4, KDSpec(rate=0.25))) == pytest.approx(
        (0.75 * 6 + 0.25 * 2) / 4)


def test_different_vocabularies_or_positions_are_refused():
    with pytest.raises(KDError, match="student vocabulary 50 ≠ teacher vocabulary 60.*dual-space KD"):
        kd_sum(torch.randn(1, 3, 50), torch.randn(1, 3, 60), torch.ones(1, 3, dtype=torch.bool), KDSpec())
    with pytest.raises(KDError, match="positions differ"):
        kd_sum(torch.randn(1, 3, 50), torch.randn(1, 4, 50), torch.ones(1, 3, dtype=torch.bool), KDSpec())
    with pytest.raises(KDError, match="rate 1.5"):
        KDSpec(rate=1.5)


def test_a_tiny_student_distilled_from_a_teacher_gets_closer_in_a_short_run():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = dict(vocab_size=256, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
               tie_word_embeddings=True)
    teacher = LlamaForCausalLM(LlamaConfig(hidden_size=96, num_hidden_layers=2, **cfg)).eval()
    student = LlamaForCausalLM(LlamaConfig(hidden_size=64, num_hidden_layers=1, **cfg))
    ids = torch.randint(0, 256, (4, 24))
    mask = torch.ones(4, 23, dtype=torch.bool)
    spec = KDSpec(temperature=2.0, rate=1.0)
    opt = torch.optim.AdamW(student.parameters(), lr=3e-3)
    with torch.no_grad():
        t_logits = teacher(input_ids=ids).logits[:, :-1]
    losses = []
    for _ in range(15):
        kd, n = kd_sum(student(input_ids=ids).logits[:, :-1], t_logits, mask, spec)
        loss = objective(torch.zeros(()), kd, n, spec)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(x) for x in losses) and losses[-1] < 0.5 * losses[0]
