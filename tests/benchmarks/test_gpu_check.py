"""The GPU check rehearsed on the CPU: prepare.py builds a --smoke bundle with the project's jobs and
check.py runs its steps on it, each in a process where the lake's stack cannot be imported (as on the GPU
machine's image): training against transformers.Trainer on the same batches, the judge, the user's
train → checkpoint → eval path with a local result store, and KD. Figures of tiny shapes on a CPU mean
nothing; the test pins that the script the GPU session will run works end to end."""
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, subprocess_env

SHARED = ROOT.parent / "shared" / "data" / "benchmarks"
STEPS = "env,models,train:ours-full-mb4,train:hf-full-mb4,train:ours-lora-mb4,judge,cpt-eval,kd"


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "teleqna" / "TeleQnA.txt").is_file(), reason=f"no real benchmarks at {SHARED}")
def test_the_gpu_check_runs_end_to_end_on_a_smoke_bundle(tmp_path):
    bundle, out, work = tmp_path / "bundle", tmp_path / "out", tmp_path / "work"
    prepared = subprocess.run([sys.executable, "benchmarks/gpu/prepare.py", "--smoke", "--bundle", str(bundle)],
                              cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=900)
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    plan = json.loads((bundle / "plan.json").read_text())
    assert plan["sequences"]["train"] > 100 and (bundle / plan["shards"] / "manifest.json").is_file()
    assert not (bundle / "lake" / "_telelake" / "releases" / "gpu-check" / "data_docs").exists()

    done = subprocess.run([sys.executable, "benchmarks/gpu/check.py", "--smoke", "--bundle", str(bundle), "--out",
                           str(out), "--work", str(work), "--budget", "1500", "--only", STEPS],
                          cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    steps = report["steps"]
    assert [s for s, r in steps.items() if "error" in r or "skipped" in r] == []
    assert steps["env"]["lake_stack_importable"] == []  # the rehearsal's node has no Spark or delta-rs
    ours, hf = steps["train:ours-full-mb4"], steps["train:hf-full-mb4"]
    assert len(ours["losses"]) == len(hf["losses"]) == 4
    assert report["goals"]["loss_equal"]["relative"] < 1e-3  # the same batches, in the same order, on both
    assert steps["train:ours-lora-mb4"]["tokens_per_s"] > 0 and len(steps["kd"]["kd"]) == 4
    judge = steps["judge"]
    assert judge["prompts"] == 32 and judge["batch_16384"]["prompts_per_s"] > 0 and judge["generate"]["prompts"] == 4
    cpt = steps["cpt-eval"]
    assert cpt["final"]["step"] == 4 and cpt["results_store"]  # results kept in the local store
    assert {(g["category"], g["split"], g["items"]) for g in cpt["mcq"]} >= {("srsranbench", "test", 20)}
    assert cpt["tele_eval"]["ans_ppl_n"] == 16
    assert "goal" in done.stdout and sorted(p.name for p in out.iterdir()) == ["gpu_check.json", "steps.log"]
    assert "===== train:ours-full-mb4" in (out / "steps.log").read_text()
