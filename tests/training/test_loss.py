"""The chunked head cross-entropy: the same loss and gradients as the model's own head, in the
trainer too (full and LoRA), and only for models whose logits are exactly lm_head(hidden)."""
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from training.config import BatchSpec, LoraSpec, OptimSpec, TrainSpec
from training.data import IGNORE
from training.loss import FusedHead, linear_cross_entropy


def reference(h, w, y):
    return F.cross_entropy(h @ w.t(), y, ignore_index=IGNORE, reduction="sum")


@pytest.mark.parametrize("weight_grad", [True, False])
def test_chunked_loss_and_gradients_equal_the_plain_head(weight_grad):
    torch.manual_seed(0)
    h0, w0 = torch.randn(37, 16), torch.randn(101, 16)
    y = torch.randint(0, 101, (37,))
    y[[0, 5, 6, 36]] = IGNORE
    grads = []
    for f in (reference, lambda h, w, y: linear_cross_entropy(h, w, y, rows=8)):
        h, w = h0.clone().requires_grad_(), w0.clone().requires_grad_(weight_grad)
        loss = f(h, w, y)
        (loss * 0.5).backward()  # a scaled loss, as the trainer's backward is
        grads.append((loss.detach(), h.grad, w.grad))
    (la, ha, wa), (lb, hb, wb) = grads
    assert torch.allclose(la, lb, rtol=1e-5)
    assert torch.allclose(ha, hb, atol=1e-5) and ha[[0, 5, 6, 36]].abs().sum() == 0
    assert (wb is None) if not weight_grad else torch.allclose(wa, wb, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(linear_cross_entropy(h0, w0, y, rows=5), la, rtol=1e-5)


def test_only_models_whose_logits_are_the_plain_head_qualify(tiny_model):
    from transformers import AutoModelForCausalLM, Gemma2Config, Gemma2ForCausalLM

    assert FusedHead.of(AutoModelForCausalLM.from_pretrained(tiny_model)) is not None
    capped = Gemma2ForCausalLM(Gemma2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                            num_attention_heads=2, num_key_value_heads=1, head_dim=8))
    assert FusedHead.of(capped) is None  # gemma2 soft-caps its logits


@pytest.mark.spark
@pytest.mark.parametrize("lora", [False, True])
def test_the_trainer_learns_the_same_with_the_fused_loss(tiny_model, cpt_shards, tmp_path, lora):
    from training.trainer import Trainer

    base = TrainSpec(batch=BatchSpec(tokens_per_step=128 * 4, micro_batch=2), optim=OptimSpec(lr=1e-3), epochs=1,
                     max_steps=3, eval_every_steps=3, eval_batches=2, save_every_steps=10**6, log_every_steps=100,
                     zero="zero0.yaml", lora=LoraSpec(r=8, alpha=16, dropout=0.0) if lora else None)
    runs = []
    for fused in (True, False):
        out = tmp_path / f"fused-{fused}"
        out.mkdir()
        t = Trainer(replace(base, fused_loss=fused), tiny_model, cpt_shards, out)
        assert (t.fused is not None) == fused
        t.save = lambda final=False: None
        t.train()
        runs.append([(r["loss"], r["grad_norm"], r.get("val_loss", -1.0)) for r in t.state.history])
    for a, b in zip(*runs, strict=True):
        assert a == pytest.approx(b, rel=1e-4)
