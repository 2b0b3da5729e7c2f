"""Every tensor of a training step, a distillation step, an evaluation and an LLM-stage call lives on the
model's device, checked on the CPU.

`training.device_guard.DeviceGuard` runs the code as if the model lived on cuda:0 and raises where an
operation would mix devices on a GPU (PyTorch's fake-tensor device checks decide), and records every
host sync of our code: a training step syncs once whatever its accumulation, not once per micro-batch.
"""
from dataclasses import replace

import pytest
import torch

from training.config import BatchSpec, LoraSpec
from training.device_guard import DeviceGuard, DeviceMixError
from training.trainer import Trainer
from tests.training.test_distill import foreign_teacher, kd, other_teacher  # noqa: F401 - fixtures
from tests.training.test_trainer import spec

HERE = (__file__.rsplit("/", 1)[0] + "/",)


# -- the guard itself, on the two bugs a GPU first showed ---------------------------------------------

def test_a_host_accumulator_of_device_losses_is_refused_as_on_a_gpu():
    weight = torch.nn.Parameter(torch.randn(4, 3))
    with DeviceGuard(own_code=HERE) as guard:
        x = torch.randn(2, 3).to(torch.device("cpu"))  # moved to "the device"
        ce = (x @ weight.t()).sum()
        loss_sum = torch.zeros((), dtype=torch.float64)  # the trainer's old accumulator: made on the host
        with pytest.raises(DeviceMixError, match=r"(?s)add_ at .*test_device_placement.py:\d+.*made at"):
            loss_sum += ce.detach().double()
        total = torch.zeros((), dtype=torch.float64, device=ce.device)
        total += ce.detach().double()  # made where the loss is: fine
        ok = ce + torch.tensor(1.0)  # a 0-dim host tensor may take part in a CUDA operation
        rows = torch.tensor([0, 1])
        x[rows]  # indexing with host indices is allowed on CUDA ...
        with pytest.raises(DeviceMixError, match="index_select"):
            x.index_select(0, rows)  # ... index_select is not
        with pytest.raises(DeviceMixError, match="linear"):
            torch.nn.functional.linear(torch.randn(2, 3), weight)  # host input to device weights
        float(ok)
    assert [s.op for s in guard.syncs] == ["__float__"] and guard.checked >= 2


# -- training ----------------------------------------------------------------------------------------

def guarded_steps(s, model, shards, out, steps=2):
    out.mkdir(exist_ok=True)
    with DeviceGuard() as guard:
        t = Trainer(s, model, shards, out)
        guard.reset()
        per_step = []
        for _ in range(steps):
            t.train_step()
            per_step.append(sum(guard.sync_counts().values()))
            guard.reset()
        t.evaluate()
        evaluation = sum(guard.sync_counts().values())
    return t, per_step, evaluation


VARIANTS = {"fused-zero2": {}, "head-zero0": {"fused_loss": False, "zero": "zero0.yaml"},
            "lora-zero0": {"lora": LoraSpec(r=4, alpha=8), "zero": "zero0.yaml"}}


@pytest.mark.spark
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_training_step_keeps_every_tensor_on_the_models_device_and_syncs_once(tiny_model, cpt_shards, tmp_path,
                                                                                variant):
    one = spec(max_steps=2, batch=BatchSpec(tokens_per_step=128 * 2, micro_batch=2), **VARIANTS[variant])
    three = replace(one, batch=BatchSpec(tokens_per_step=128 * 2 * 3, micro_batch=2))
    t1, steps1, eval1 = guarded_steps(one, tiny_model, cpt_shards, tmp_path / "accum1")
    t3, steps3, _ = guarded_steps(three, tiny_model, cpt_shards, tmp_path / "accum3")
    assert (t1.plan.accum, t3.plan.accum) == (1, 3)
    assert steps1 == steps3 == [1, 1]  # losses and the gradient norm come back together, once per step
    assert eval1 == 1


@pytest.mark.spark
@pytest.mark.parametrize("how", ["vanilla", "cached", "dskd"])
def test_a_distillation_step_keeps_every_tensor_on_the_models_device(tiny_model, other_teacher, foreign_teacher,
                                                                     cpt_shards, tmp_path, how):
    teacher = foreign_teacher if how == "dskd" else other_teacher
    extra = {"dskd": {"method": "dskd"}, "cached": {"teacher_logits": "cached", "cache_top_k": 8}}.get(how, {})
    s = spec(max_steps=2, kd=kd(teacher, rate=0.5, **extra), batch=BatchSpec(tokens_per_step=128 * 4, micro_batch=2))
    t, steps, evaluation = guarded_steps(s, tiny_model, cpt_shards, tmp_path)
    assert t.plan.accum == 2 and steps == [1, 1] and evaluation == 1


# -- the LLM stage's transformers backend --------------------------------------------------------------

def test_the_llm_backend_scores_and_generates_on_the_models_device(tiny_model):
    from pipelines.llm.backend import BackendConfig, SamplingParams
    from pipelines.llm.hf_backend import HFBackend
    from pipelines.llm.models import ModelSpec, resolve

    prompts = ["The base station", "A user equipment attaches to the network and", "5G NR", "x" * 40]
    with DeviceGuard() as guard:
        backend = HFBackend(resolve(ModelSpec(path=tiny_model)), BackendConfig(kind="transformers",
                                                                               max_batch_tokens=64))
        guard.reset()
        backend.next_token_logprobs(prompts, [100, 200])
        scoring = guard.sync_counts()
        guard.reset()
        backend.continuation_logprob(prompts, [" yes", " the core network", " radio", " y"])
        continuation = guard.sync_counts()
        backend.generate(prompts[:2], SamplingParams(max_tokens=3))
    forwards = backend.forwards
    assert forwards >= 3
    # one copy back per batch, not per prompt
    assert sum(scoring.values()) <= 3 and sum(continuation.values()) <= 3


# -- the GPU's dtypes: DeepSpeed's bf16 mode (bf16 weights and activations), run on the CPU ----------------

@pytest.mark.spark
@pytest.mark.parametrize("how", ["plain", "lora", "vanilla", "dskd"])
def test_a_step_runs_in_deepspeeds_bf16_mode_as_on_a_gpu(tiny_model, other_teacher, foreign_teacher, cpt_shards,
                                                         tmp_path, monkeypatch, how):
    """CPU bf16 runs under autocast, which forgives a float32 tensor meeting bf16 weights; a GPU runs
    DeepSpeed's bf16 mode, which does not. Here that mode runs on the CPU, under the device guard."""
    monkeypatch.setattr(Trainer, "_deepspeed_bf16", lambda self, on_gpu: True)
    extra = {"lora": {"lora": LoraSpec(r=4, alpha=8), "zero": "zero0.yaml"},
             "vanilla": {"kd": kd(other_teacher, rate=0.5)},
             "dskd": {"kd": kd(foreign_teacher, rate=0.5, method="dskd")}}.get(how, {})
    s = spec(max_steps=2, batch=BatchSpec(tokens_per_step=128 * 4, micro_batch=2), **extra)
    t, steps, evaluation = guarded_steps(s, tiny_model, cpt_shards, tmp_path)
    assert t.precision_name == "bf16" and next(t.engine.module.parameters()).dtype == torch.bfloat16
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in t.state.history) and steps == [1, 1]
