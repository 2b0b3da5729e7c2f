"""The DeepSpeed trainer on a tiny model and real shards: exact resume, HF checkpoints, LoRA, the
launch from a release (recorded; refused when the release fails verification)."""
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from pipelines.release.store import ReleaseError
from training.config import BatchSpec, LoraSpec, OptimSpec, TrainSpec
from training.trainer import Trainer

pytestmark = pytest.mark.spark


def spec(**kw) -> TrainSpec:
    base = TrainSpec(batch=BatchSpec(tokens_per_step=128 * 4, micro_batch=2), optim=OptimSpec(lr=1e-3), epochs=1,
                     eval_every_steps=2, eval_batches=2, save_every_steps=3, log_every_steps=100)
    return replace(base, **kw)


def run(s: TrainSpec, model, shards, out, resume=False):
    out.mkdir(exist_ok=True)
    t = Trainer(s, model, shards, out)
    if resume:
        assert t.resume()
    t.train()
    return t


@pytest.mark.parametrize("variant", ["full-zero2", "lora-zero0"])
def test_stopping_and_resuming_gives_the_losses_and_data_order_of_one_run(tiny_model, cpt_shards, tmp_path, variant):
    kw = {"zero": "zero2.yaml"} if variant == "full-zero2" else {"zero": "zero0.yaml", "lora": LoraSpec(r=4, alpha=8)}
    whole = run(spec(max_steps=6, **kw), tiny_model, cpt_shards, tmp_path / "whole")
    run(spec(max_steps=3, **kw), tiny_model, cpt_shards, tmp_path / "split")
    resumed = run(spec(max_steps=6, **kw), tiny_model, cpt_shards, tmp_path / "split", resume=True)
    a = [(r["step"], r["loss"], r["first_samples"]) for r in whole.state.history]
    b = [(r["step"], r["loss"], r["first_samples"]) for r in resumed.state.history]
    assert [x[0] for x in b] == [4, 5, 6]
    for (sa, la, da), (sb, lb, db) in zip(a[3:], b, strict=True):
        assert sa == sb and da == db and lb == pytest.approx(la, rel=1e-5, abs=1e-6)
    assert a[-1][1] < a[0][1]  # it learns
    metrics = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5, 6]
    assert {"loss.png", "grad_norm.png", "lr.png"} <= {p.name for p in (tmp_path / "split").iterdir()}


def test_a_stop_file_ends_the_run_cleanly_and_a_resume_trains_on_as_one_run(tiny_model, cpt_shards, tmp_path):
    from training.stop import STOP_FILE

    whole = run(spec(max_steps=4), tiny_model, cpt_shards, tmp_path / "whole")
    asked = tmp_path / "asked"
    asked.mkdir()
    (asked / STOP_FILE).touch()
    t = run(spec(max_steps=4), tiny_model, cpt_shards, asked)
    assert t.state.step == 1 and t.state.ended_by == "request (STOP file)"
    last = t.state.history[-1]
    assert last["stop_requested"] == "STOP file" and "val_loss" in last  # validated although eval_every_steps is 2
    assert (asked / "checkpoints" / "step-000001" / "hf" / "model.safetensors").is_file()
    assert not (asked / STOP_FILE).exists()  # honoured, so the resume below is not stopped again
    resumed = run(spec(max_steps=4), tiny_model, cpt_shards, asked, resume=True)
    assert [r["step"] for r in resumed.state.history] == [2, 3, 4] and resumed.state.ended_by == "max_steps"
    for a, b in zip(whole.state.history[1:], resumed.state.history, strict=True):
        assert b["first_samples"] == a["first_samples"] and b["loss"] == pytest.approx(a["loss"], rel=1e-5, abs=1e-6)


def test_sigterm_ends_the_run_after_its_step_and_the_signal_handlers_are_restored(tiny_model, cpt_shards, tmp_path):
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)
    t = Trainer(spec(max_steps=4), tiny_model, cpt_shards, tmp_path)
    sent = []

    def terminate_once(module, args):
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    t.model.register_forward_pre_hook(terminate_once)
    t.train()
    assert sent and t.state.step == 1 and t.state.ended_by == "request (SIGTERM)"
    assert len(t.state.history) == 1 and t.state.history[0]["stop_requested"] == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_model_is_called_with_position_ids_and_no_attention_mask(tiny_model, cpt_shards, tmp_path):
    t = Trainer(spec(max_steps=1), tiny_model, cpt_shards, tmp_path)
    seen = []
    t.model.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs), with_kwargs=True)
    t.train_step()
    assert seen and all(k.get("attention_mask") is None and k["position_ids"] is not None for k in seen)


def test_the_hf_checkpoint_reloads_with_the_trained_weights(tiny_model, cpt_shards, tmp_path):
    from transformers import AutoModelForCausalLM

    t = run(spec(max_steps=2, save_every_steps=2), tiny_model, cpt_shards, tmp_path)
    hf = tmp_path / "checkpoints" / "step-000002" / "hf"
    assert (hf / "model.safetensors").is_file() and (hf / "tokenizer.json").is_file()
    reloaded = AutoModelForCausalLM.from_pretrained(hf).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    x = t.train_data.batch([0])
    with torch.no_grad():
        got = reloaded(input_ids=x["input_ids"], position_ids=x["position_ids"]).logits
        t.engine.module.eval()
        want = t.engine.module(input_ids=x["input_ids"], position_ids=x["position_ids"]).logits
        before = base(input_ids=x["input_ids"], position_ids=x["position_ids"]).logits
    assert torch.allclose(got, want, atol=1e-5) and not torch.allclose(got, before, atol=1e-3)


def _checksum(tensors) -> str:
    import hashlib

    h = hashlib.sha256()
    for name, x in sorted(tensors):
        h.update(name.encode())
        h.update(x.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def test_lora_trains_only_the_adapter_and_writes_it_and_the_merged_model(tiny_model, cpt_shards, tmp_path):
    from safetensors.torch import load_file

    on_disk = _checksum(load_file(Path(tiny_model) / "model.safetensors").items())
    t = Trainer(spec(max_steps=2, save_every_steps=2, lora=LoraSpec(r=8, alpha=16, dropout=0.1)), tiny_model,
                cpt_shards, tmp_path)
    backbone = lambda: _checksum((n, p) for n, p in t.model.named_parameters() if "lora_" not in n)  # noqa: E731
    adapter = lambda: _checksum((n, p) for n, p in t.model.named_parameters() if "lora_" in n)  # noqa: E731
    before, adapter_before = backbone(), adapter()
    t.train()
    assert backbone() == before and adapter() != adapter_before  # the backbone is frozen, the adapter moved
    assert _checksum(load_file(Path(tiny_model) / "model.safetensors").items()) == on_disk
    trained = {n for n, p in t.model.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in n for n in trained)
    hf = tmp_path / "checkpoints" / "step-000002" / "hf"
    assert (hf / "adapter_model.safetensors").is_file() and (hf / "merged" / "model.safetensors").is_file()
    assert json.loads((hf / "adapter_config.json").read_text())["r"] == 8


def test_bf16_on_a_cpu_runs_the_forward_under_autocast_and_keeps_fp32_weights(tiny_model, cpt_shards, tmp_path):
    fp32 = run(spec(max_steps=4, lora=LoraSpec(r=8, alpha=16)), tiny_model, cpt_shards, tmp_path / "fp32")
    (tmp_path / "bf16").mkdir()
    t = Trainer(spec(max_steps=4, lora=LoraSpec(r=8, alpha=16), precision="bf16"), tiny_model, cpt_shards,
                tmp_path / "bf16")
    assert t.autocast and not t.bf16 and "bf16 autocast" in t.describe()[0]
    dtypes = []
    proj = next(m for n, m in t.model.named_modules() if n.endswith("q_proj.base_layer"))
    proj.register_forward_hook(lambda m, args, out: dtypes.append(out.dtype))
    t.train()
    assert set(dtypes) == {torch.bfloat16}  # the matmuls ran in bf16 ...
    assert {p.dtype for p in t.model.parameters()} == {torch.float32}  # ... the weights and the adapter stayed fp32
    a, b = [r["loss"] for r in fp32.state.history], [r["loss"] for r in t.state.history]
    assert b[0] == pytest.approx(a[0], rel=2e-2) and b[-1] < b[0]  # the same loss to bf16 precision, and it learns
    assert t.state.history[-1]["val_loss"] == pytest.approx(fp32.state.history[-1]["val_loss"], rel=5e-2)


def test_launch_records_the_run_and_refuses_a_release_that_fails_verification(spark, released, tiny_model, tmp_path):
    from jobs.train import TrainJobConfig, run as train_run
    from pipelines.llm.models import ModelSpec
    from pipelines.tokenize.stage import ShardSpec

    s = spec(max_steps=2, model=ModelSpec(path=tiny_model), shards=ShardSpec(seq_len=128, seqs_per_shard=16),
             out=str(tmp_path / "runs"))
    cfg = TrainJobConfig(lake=released, train=s)
    result = train_run(cfg, "r1", name="first")
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["release"]["name"] == "r1" and record["release"]["content_hash"]
    assert record["shards"]["key"] == result.shards.manifest["key"] and record["config"]["max_steps"] == 2
    assert record["code_version"] and record["model"]["revision"].startswith("fp-")
    assert (result.checkpoint / "hf" / "model.safetensors").is_file()

    manifest = json.loads((Path(released.root) / "_telelake" / "releases" / "r1" / "manifest.json").read_text())
    victim = Path(released.root) / "gold" / "tele_data" / manifest["tables"]["gold.tele_data"]["files"][0]["path"]
    original = victim.read_bytes()
    victim.unlink()
    try:
        with pytest.raises(ReleaseError, match="(?s)failed verification.*missing"):
            train_run(cfg, "r1", name="second")
        assert not (tmp_path / "runs" / "second").exists()
    finally:
        victim.write_bytes(original)


def test_early_stopping_keeps_the_best_checkpoint_and_stops_after_patience(tiny_model, cpt_shards, tmp_path):
    from training.config import EarlyStopSpec

    # min_delta far above any real gain: the first evaluation is the best, the next two are not
    s = spec(eval_every_steps=1, save_every_steps=2, keep_checkpoints=1,
             early_stopping=EarlyStopSpec(patience=2, min_delta=100.0), lora=LoraSpec(r=4, alpha=8), zero="zero0.yaml")
    t = run(s, tiny_model, cpt_shards, tmp_path)
    steps = [(r["step"], r.get("best", False), r.get("early_stopped", False)) for r in t.state.history]
    assert steps == [(1, True, False), (2, False, False), (3, False, True)] and t.plan.total_steps > 3
    assert t.best_checkpoint() == tmp_path / "checkpoints" / "step-000001"
    assert (tmp_path / "checkpoints" / "step-000002").is_dir()  # kept 1 besides the best, which is never pruned
    assert (t.best_checkpoint() / "hf" / "merged" / "model.safetensors").is_file()  # the best is a usable result
    assert t.state.best_step == 1 and t.state.best_val == t.state.history[0]["val_loss"]

    # improvements by more than min_delta count as new bests: with min_delta 0 the loss of a learning run falls
    t2 = run(spec(eval_every_steps=1, max_steps=3, early_stopping=EarlyStopSpec(patience=1)), tiny_model, cpt_shards,
             tmp_path / "learning")
    assert [r.get("best") for r in t2.state.history] == [True, True, True]
    assert t2.best_checkpoint() == tmp_path / "learning" / "checkpoints" / "step-000003"


def test_the_lora_recipe_trains_one_category_and_records_the_adapter(released, tiny_model, tmp_path):
    from jobs.train import main

    result = main(["--recipe", "lora", "--category", "literature", "--release", "r1", "--set", f"lake.root={released.root}",
                   "--set", f"train.model.path={tiny_model}", "--set", f"train.out={tmp_path}",
                   "--set", "train.shards.seq_len=256", "--set", "train.batch.tokens_per_step=1024",
                   "--set", "train.batch.micro_batch=2", "--set", "train.eval_every_steps=1", "--set", "train.epochs=2",
                   "--set", "spark.master=local[1]"])
    assert result.run_dir.name.startswith("lora-literature-r1-")
    assert result.shards.manifest["blend"] and set(result.shards.manifest["spec"]["blend"]) == {
        "gold.instructions:mcq_answering/literature"}
    # the category's 6 train examples (of 30 instructions), packed 4 to a 256-token sequence
    assert result.shards.manifest["splits"]["train"]["entries"] == 6
    recorded = json.loads((result.run_dir / "result.json").read_text())
    hf = result.checkpoint / "hf"
    assert recorded["adapter_bytes"] == (hf / "adapter_model.safetensors").stat().st_size > 0
    assert recorded["adapter"] == str(hf) and recorded["trainable_params"] == result.trainable_params
    config = json.loads((hf / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["lora_alpha"] == 32 and set(config["target_modules"]) == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert result.best_step is not None and (result.run_dir / "best").is_file()  # early stopping is on
    assert recorded["ended_by"] in ("schedule", "early stopping") and recorded["planned_steps"] >= recorded["final"]["step"]
    with pytest.raises(SystemExit, match="--category trains on benchmark instructions"):
        main(["--recipe", "cpt", "--category", "literature", "--release", "r1", "--set", f"lake.root={released.root}"])


def test_a_step_budget_fits_the_schedule_to_the_steps_run():
    from training.trainer import make_plan

    s = spec(epochs=3, batch=BatchSpec(tokens_per_step=1024, micro_batch=4))  # 1 step = 4 sequences of 256
    whole = make_plan(s, n_train=800, seq_len=256, world=1)
    assert (whole.steps_per_epoch, whole.total_steps, whole.warmup_steps) == (200, 600, 20)
    cut = make_plan(replace(s, step_budget=30), n_train=800, seq_len=256, world=1)
    assert (cut.total_steps, cut.warmup_steps) == (30, 3)  # warm-up 10% of the 30 steps, cosine to step 30
    assert make_plan(replace(s, step_budget=900), n_train=800, seq_len=256, world=1).total_steps == 600


def test_a_shard_folder_is_refused_when_damaged_or_made_for_another_vocabulary_or_mode(tiny_model, cpt_shards, tmp_path):
    import shutil

    from pipelines.tokenize.spec import ShardError
    from training.run import _checked_folder

    copied = tmp_path / "shards"
    shutil.copytree(cpt_shards, copied)
    assert _checked_folder(copied, tiny_model, spec(), checksums=True).manifest["spec"]["mode"] == "cpt"
    with pytest.raises(ShardError, match="holds cpt sequences; recipe sft trains sft"):
        _checked_folder(copied, tiny_model, spec(recipe="sft", shards=replace(spec().shards, mode="sft")),
                        checksums=True)
    other = tmp_path / "other-vocab"  # the same tokenizer with one token more: other ids from there on
    shutil.copytree(tiny_model, other)
    tok = json.loads((other / "tokenizer.json").read_text())
    tok["added_tokens"].append({**tok["added_tokens"][-1], "id": 49152, "content": "<|telecom|>"})
    (other / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ShardError, match="49,153 tokens"):
        _checked_folder(copied, str(other), spec(), checksums=True)
    next(copied.rglob("*.arrow")).write_bytes(b"damaged")
    with pytest.raises(ShardError, match="is damaged"):
        _checked_folder(copied, tiny_model, spec(), checksums=True)
