"""Adapter merging: TIES / DARE arithmetic on literal updates, identical adapters merging to themselves,
the merged folder loading in PEFT onto its base with exactly the merged update, and clear refusals."""
import json

import pytest
import torch

from training.merge import MergeError, MergeSpec, merge_adapters, merge_deltas, read_adapter


def _merge(deltas, **kw):
    return merge_deltas([torch.tensor(d, dtype=torch.float64) for d in deltas], MergeSpec(**kw),
                        torch.Generator().manual_seed(0))


def test_ties_trims_elects_signs_and_averages_the_agreeing_entries():
    got = _merge([[[1.0, -2.0, 0.5]], [[3.0, 1.0, -0.5]]], method="ties", density=1.0)
    assert got.tolist() == [[2.0, -2.0, 0.0]]  # + elected: mean 2; − elected: −2 alone; a tie of sums: 0
    trimmed = _merge([[[1.0, -4.0, 2.0, 0.5]], [[0.4, 0.3, 0.2, 0.1]]], method="ties", density=0.5)
    assert trimmed.tolist() == [[0.4, -4.0, 2.0, 0.0]]  # the first keeps −4 and 2, the second 0.4 and 0.3
    assert _merge([[[1.0, 2.0]], [[3.0, -2.0]]], method="linear").tolist() == [[2.0, 0.0]]
    assert _merge([[[1.0, 2.0]], [[3.0, -2.0]]], method="linear", weights=[1.0, 0.5]).tolist() == [[2.5, 1.0]]
    with pytest.raises(MergeError, match="3 weights for 2 adapters"):
        _merge([[[1.0]], [[2.0]]], method="linear", weights=[1, 1, 1])


def test_dare_drops_at_random_and_rescales_so_the_update_is_kept_in_expectation():
    delta = torch.full((200, 200), 0.5, dtype=torch.float64)
    spec = MergeSpec(method="dare_linear", density=0.3, seed=1)
    one = merge_deltas([delta, delta], spec, torch.Generator().manual_seed(1))
    assert 0.47 < float((one == 0).double().mean()) < 0.53  # each drops 70%: both dropped 49%, one kept 42%
    assert float(one.mean()) == pytest.approx(0.5, abs=0.02)  # rescaled by 1/density
    again = merge_deltas([delta, delta], spec, torch.Generator().manual_seed(1))
    assert torch.equal(one, again)  # seeded
    with pytest.raises(MergeError, match="density 0"):
        MergeSpec(density=0)
    with pytest.raises(MergeError, match="expected one of"):
        MergeSpec(method="average")


def _base(folder, hidden=64):
    from tests.eval.test_tele_eval import _tiny

    return _tiny(folder, hidden=hidden)


def _adapter(base, folder, seed, r=4):
    from tests.eval.test_tele_eval import _adapter as random_adapter

    torch.manual_seed(seed)
    random_adapter(base, folder, r=r, targets=("q_proj", "v_proj", "down_proj"), std=0.3)
    return folder


@pytest.mark.parametrize("method", ["linear", "ties", "dare_linear", "dare_ties"])
def test_two_identical_adapters_merge_to_the_same_adapter(tmp_path, method):
    base = _base(tmp_path / "base")
    a = _adapter(base, tmp_path / "a", seed=1)
    weights = None if method in ("linear", "dare_linear") else [1.0, 1.0]
    result = merge_adapters([a, a], tmp_path / "m", MergeSpec(method=method, density=1.0, weights=weights))
    original, merged = read_adapter(a), read_adapter(tmp_path / "m")
    assert result.rank == 4 and result.modules == len(original.factors) == 3
    for module in original.factors:
        assert torch.allclose(merged.delta(module), original.delta(module), atol=1e-5)
    assert result.max_truncation_error < 1e-5
    saved = json.loads((tmp_path / "m" / "merge.json").read_text())
    assert saved["method"] == method and saved["adapters"] == [str(a), str(a)]


def test_the_merged_adapter_loads_on_its_base_with_the_merged_update(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from eval.subjects import Subject, resolve_subject

    base = _base(tmp_path / "base")
    a, b = _adapter(base, tmp_path / "a", seed=1), _adapter(base, tmp_path / "b", seed=2)
    result = merge_adapters([a, b], tmp_path / "m", MergeSpec(method="ties", density=0.5, rank=8))
    assert result.rank == 8 and 0 <= result.mean_truncation_error <= result.max_truncation_error < 1
    ra, rb = read_adapter(a), read_adapter(b)
    module = next(m for m in ra.factors if m.endswith("q_proj"))
    expected = merge_deltas([ra.delta(module), rb.delta(module)], MergeSpec(method="ties", density=0.5),
                            torch.Generator().manual_seed(42))
    errors = json.loads((tmp_path / "m" / "truncation_errors.json").read_text())
    got = read_adapter(tmp_path / "m").delta(module)
    assert float((got - expected).norm() / expected.norm()) == pytest.approx(errors[module], abs=1e-6)

    plain = AutoModelForCausalLM.from_pretrained(base)
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), tmp_path / "m").merge_and_unload()
    name = module.removeprefix("base_model.model.") + ".weight"
    w0, w1 = dict(plain.named_parameters())[name], dict(merged.named_parameters())[name]
    assert torch.allclose(w1.double() - w0.double(), got, atol=1e-5)
    model = resolve_subject(Subject(name="merged", path=str(tmp_path / "m")), cache_dir=str(tmp_path / "cache"))
    assert model.name == "merged"  # evaluated like any adapter: checked against its base, merged once


def test_adapters_that_cannot_merge_are_refused_with_the_reason(tmp_path):
    base, other = _base(tmp_path / "base"), _base(tmp_path / "other", hidden=32)
    a, b = _adapter(base, tmp_path / "a", seed=1), _adapter(other, tmp_path / "b", seed=2)
    with pytest.raises(MergeError, match="trained on base .*different bases"):
        merge_adapters([a, b], tmp_path / "m", MergeSpec())
    cfg = json.loads((b / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(base)
    (b / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(MergeError, match=r"down_proj updates a \[32, 64\] weight, .* a \[64, 128\] one: not the same base"):
        merge_adapters([a, b], tmp_path / "m", MergeSpec())
    with pytest.raises(MergeError, match="at least two adapters"):
        merge_adapters([a], tmp_path / "m", MergeSpec())
    with pytest.raises(MergeError, match="not a PEFT adapter folder"):
        merge_adapters([a, base], tmp_path / "m", MergeSpec())
    (tmp_path / "m").mkdir()
    with pytest.raises(MergeError, match="exists"):
        merge_adapters([a, a], tmp_path / "m", MergeSpec())
    assert not any(p.name.startswith(".m-") for p in tmp_path.iterdir())  # no half-written folder left


def test_telelake_train_merge_writes_the_adapter_or_refuses(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT, subprocess_env

    base = _base(tmp_path / "base")
    a, b = _adapter(base, tmp_path / "a", seed=1), _adapter(base, tmp_path / "b", seed=2)

    def merge(*args):
        return subprocess.run([sys.executable, "-m", "jobs.cli", "train", "merge", *map(str, args)], cwd=ROOT,
                              env=subprocess_env(), capture_output=True, text=True, timeout=300, check=False)

    done = merge(a, b, "--method", "dare_ties", "--density", "0.5", "--weights", "1,0.5", "--out", tmp_path / "m")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "merged 2 adapters (dare_ties, rank 4, 3 modules" in done.stdout
    assert json.loads((tmp_path / "m" / "merge.json").read_text())["spec"]["weights"] == [1.0, 0.5]
    refused = merge(a, b, "--out", tmp_path / "m")
    assert refused.returncode == 1 and "exists" in refused.stderr
    missing = merge(a, b)
    assert missing.returncode != 0 and "needs --out DIR" in missing.stderr
