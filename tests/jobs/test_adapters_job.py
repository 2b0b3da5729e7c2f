"""`telelake train adapters` end to end on a tiny backbone and a real release: one adapter per benchmark
category and the monolithic one trained, the category adapters merged (TIES, DARE-TIES), all evaluated
against zero-shot on the same seen/unseen items, the report written from the per-item results; a rerun
reuses the runs and merges; the rank ablation writes its table and PNG with adapter sizes growing with
the rank, each rank's validation loss and speed, beside zero-shot on the same items."""
import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.training.conftest import tiny_model  # noqa: F401 - the tiny backbone fixture

pytestmark = pytest.mark.spark

CATEGORIES = ("oranbench", "teleqna")


def _benchmarks(spark, cfg):
    from pipelines.ingest.parse import utc_now
    from schemas import BENCHMARKS
    from tests.eval.conftest import QUESTIONS
    from tests.pipelines.gold.conftest import write_rows

    now, rows = utc_now(), []
    for category in CATEGORIES:
        for n, (q, choices, answer) in enumerate(QUESTIONS):
            rows.append({"item_id": f"{category}_{n:016x}", "category": category, "subject": None, "difficulty": None,
                         "question": f"{q} ({category})", "choices": choices, "answer": answer, "explanation": None,
                         "split": "train" if n < 3 else "val" if n == 3 else "test", "question_key": f"{category}{n}",
                         "source": "test@1", "source_file": "t.json", "source_location": f"key={n}", "repairs": [],
                         "import_batch": "b", "imported_at": now})
    write_rows(spark, cfg, BENCHMARKS, rows, "bench")


@pytest.fixture(scope="module")
def bench_release(spark, tmp_path_factory):
    from pipelines.config import SHIPPED_CONF
    from pipelines.instruct.stage import InstructSpec, LiteratureSpec, run_instruct
    from pipelines.lake import LakeConfig
    from pipelines.release.create import ReleaseSpec, create_release
    from tests.pipelines.release.test_release import gold_rows, write_gold

    cfg = LakeConfig(root=str(tmp_path_factory.mktemp("adapters") / "lake"))
    write_gold(spark, cfg, gold_rows(1, 4), "g")
    _benchmarks(spark, cfg)
    run_instruct(spark, cfg, InstructSpec(literature=LiteratureSpec(enabled=False),
                                          templates=str(SHIPPED_CONF / "instruct" / "templates.yaml")))
    create_release(spark, cfg, "b1", ReleaseSpec())
    return cfg


def _config(lake, model, out):
    from jobs.adapters import AdapterEvalSpec, AdaptersJobConfig, AdaptersSection, AblationSpec
    from pipelines.llm.backend import BackendConfig
    from pipelines.spark import SparkConfig

    overrides = [f"train.model.path={model}", "train.shards.seq_len=256", "train.batch.tokens_per_step=512",
                 "train.batch.micro_batch=2", "train.eval_every_steps=1", "train.epochs=3"]
    return AdaptersJobConfig(lake=lake, spark=SparkConfig(master="local[1]"), adapters=AdaptersSection(
        train_overrides=overrides, out=str(out), backend=BackendConfig(kind="transformers"),
        eval=AdapterEvalSpec(k=2, max_new_tokens=6, limit_per_group=None), ablation=AblationSpec(ranks=[2, 8])))


def test_the_report_says_how_a_run_ended_when_its_schedule_did_not_end_it():
    from training.run import ended_note

    assert ended_note({"ended_by": "schedule", "final": {"step": 144}, "planned_steps": 144}) == ""
    assert ended_note({"final": {"step": 16}}) == ""  # a result.json written before runs recorded it
    assert ended_note({"ended_by": "request (SIGTERM)", "final": {"step": 72}, "planned_steps": 144}) == (
        "stopped on request (SIGTERM) at step 72 of 144")
    assert ended_note({"ended_by": "early stopping", "final": {"step": 90}, "planned_steps": 96}) == (
        "early stopping at step 90 of 96")


def test_adapters_are_trained_per_category_and_reported_against_zero_shot(bench_release, tiny_model, tmp_path):
    from jobs.adapters import ablate, run

    cfg = _config(bench_release, tiny_model, tmp_path / "exp")
    report = run(cfg, "b1")
    rows = json.loads((tmp_path / "exp" / "adapters.json").read_text())
    assert [(r["category"], r["split"]) for r in rows] == [(c, s) for c in CATEGORIES for s in ("train", "test")]
    assert all(r["items"] == (3 if r["split"] == "train" else 2) for r in rows)
    for r in rows:  # every number is the per-item results' own
        assert r["monolithic"] is not None and r["adapter_mb"] > 0
        assert r["goal_met"] is None if r["split"] == "train" else r["goal_met"] in (True, False)
        assert r["gain_points"] == pytest.approx(100 * (r["adapter"]["pass_at_1"] - r["zero_shot"]["pass_at_1"]))
    for method, label in (("ties", "TIES merge"), ("dare_ties", "DARE-TIES merge")):  # merged, scored everywhere
        made = json.loads((tmp_path / "exp" / "merged" / method / "merge.json").read_text())
        assert made["method"] == method and [Path(a).parts[-4] for a in made["adapters"]] == [
            f"lora-{c}" for c in CATEGORIES]
        assert all(set(r["merged"][label]) == {"pass_at_1", "maj_at_k"} for r in rows)
    routing = json.loads((tmp_path / "exp" / "router.json").read_text())
    assert routing["categories"] == list(CATEGORIES) and routing["train_items"] == 6 and routing["test_items"] == 4
    text = report.read_text()
    assert "Router for requests without a category" in text
    assert "| teleqna | unseen | 2 |" in text and "adapters.png" in text and (tmp_path / "exp" / "adapters.png").is_file()
    runs = sorted(p.name for p in (tmp_path / "exp" / "runs").iterdir())
    assert runs == ["lora-all", "lora-oranbench", "lora-teleqna"]
    for c in CATEGORIES:  # each adapter trained on its own category's questions only
        manifest = json.loads((tmp_path / "exp" / "runs" / f"lora-{c}" / "run.json").read_text())
        assert manifest["shards"]["blend"] and list(manifest["config"]["shards"]["blend"]) == [
            f"gold.instructions:mcq_answering/{c}"]
        assert manifest["shards"]["splits"]["train"]["entries"] == 3
    stamp = (tmp_path / "exp" / "runs" / "lora-teleqna" / "result.json").stat().st_mtime
    merged_stamp = (tmp_path / "exp" / "merged" / "ties" / "adapter_model.safetensors").stat().st_mtime
    run(cfg, "b1")  # a rerun reuses every run and merge, and re-reads the stored model calls
    assert (tmp_path / "exp" / "runs" / "lora-teleqna" / "result.json").stat().st_mtime == stamp
    assert (tmp_path / "exp" / "merged" / "ties" / "adapter_model.safetensors").stat().st_mtime == merged_stamp
    with pytest.raises(SystemExit, match="merged from other adapters or with another spec"):
        run(replace(cfg, adapters=replace(cfg.adapters, merge_density=0.5)), "b1")
    with pytest.raises(SystemExit, match="adapters.merges names tie; the merge methods are linear, ties"):
        run(replace(cfg, adapters=replace(cfg.adapters, merges=["tie"])), "b1")
    check = replace(cfg, adapters=replace(cfg.adapters, out=str(tmp_path / "check"), runs=str(tmp_path / "exp" / "runs"),
                                          categories=["teleqna"], monolithic=False,
                                          eval=replace(cfg.adapters.eval, splits=["test"])))
    run(check, "b1")  # an evaluation-only check: the experiment's runs, a report of its own
    assert (tmp_path / "exp" / "runs" / "lora-teleqna" / "result.json").stat().st_mtime == stamp
    assert not (tmp_path / "check" / "runs").exists()
    [row] = json.loads((tmp_path / "check" / "adapters.json").read_text())
    assert (row["category"], row["split"]) == ("teleqna", "test")
    assert row["adapter"] == next(r for r in rows if (r["category"], r["split"]) == ("teleqna", "test"))["adapter"]
    changed = replace(cfg, adapters=replace(cfg.adapters, train_overrides=[*cfg.adapters.train_overrides,
                                                                           "train.optim.lr=1e-3"]))
    with pytest.raises(SystemExit, match="another recipe or release"):
        run(changed, "b1")

    table = ablate(cfg, "b1", "teleqna")
    ranks = json.loads((tmp_path / "exp" / "rank_ablation.json").read_text())
    assert [r["rank"] for r in ranks] == [2, 8] and [r["alpha"] for r in ranks] == [4, 16]
    assert ranks[0]["adapter_mb"] < ranks[1]["adapter_mb"] and ranks[0]["trainable_params"] * 4 == ranks[1][
        "trainable_params"]
    assert all(r["items"] == 2 for r in ranks) and (tmp_path / "exp" / "rank_ablation.png").is_file()
    for r in ranks:  # from each run's metrics.jsonl, and against zero-shot on the same items
        assert r["best_step"] >= 1 and r["best_val"] > 0 and r["tokens_per_s"] > 0
        assert r["zero_shot"] == next(x["zero_shot"] for x in rows if (x["category"], x["split"]) == (
            "teleqna", "test"))
    assert "| 8 | 16 |" in table.read_text() and "the zero-shot backbone scores" in table.read_text()


@pytest.mark.slow  # six tiny training runs and eight models evaluated: an experiment's orchestration
def test_the_four_sft_before_kd_strategies_are_trained_and_compared(bench_release, tiny_model, tmp_path):
    from jobs.adapters import AdapterEvalSpec
    from jobs.kd_strategies import KDStrategiesJobConfig, KDStrategiesSection, run
    from pipelines.llm.backend import BackendConfig
    from pipelines.llm.models import ModelSpec
    from pipelines.spark import SparkConfig
    from tests.training.test_distill import _tiny

    teacher = _tiny(tmp_path / "teacher", tiny_model, 49152, seed=5, hidden=96)
    overrides = ["train.shards.seq_len=256", "train.batch.tokens_per_step=512", "train.batch.micro_batch=2",
                 "train.eval_every_steps=1", "train.step_budget=3"]
    cfg = KDStrategiesJobConfig(lake=bench_release, spark=SparkConfig(master="local[1]"), kd_strategies=KDStrategiesSection(
        teacher=ModelSpec(path=teacher), student=ModelSpec(path=tiny_model), category="teleqna",
        train_overrides=overrides, out=str(tmp_path / "kd"), backend=BackendConfig(kind="transformers"),
        eval=AdapterEvalSpec(splits=["test"], k=2, max_new_tokens=6, limit_per_group=None), resamples=200))
    report = run(cfg, "b1")
    rows = {r["strategy"]: r for r in json.loads((tmp_path / "kd" / "kd_strategies.json").read_text())}
    assert list(rows) == ["neither", "teacher", "student", "both"]
    assert [(r["sft_teacher"], r["sft_student"]) for r in rows.values()] == [(False, False), (True, False),
                                                                          (False, True), (True, True)]
    assert all(r["items"] == 2 and r["kd_final"] is not None and r["kd_final"] > 0 for r in rows.values())
    assert rows["neither"]["diff_points"] is None and rows["both"]["p_value"] is not None
    runs = tmp_path / "kd" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["kd-both", "kd-neither", "kd-student", "kd-teacher",
                                                     "sft-student", "sft-teacher"]
    both = json.loads((runs / "kd-both" / "run.json").read_text())["config"]
    # "both" distils the fine-tuned teacher into the fine-tuned student
    assert both["kd"]["teacher"]["path"].startswith(str(runs / "sft-teacher"))
    assert both["model"]["path"].startswith(str(runs / "sft-student"))
    neither = json.loads((runs / "kd-neither" / "run.json").read_text())["config"]
    assert neither["kd"]["teacher"]["path"] == teacher and neither["model"]["path"] == tiny_model
    text = report.read_text()
    assert "| both | yes | yes | 2 |" in text and "Before distillation" in text
    assert (tmp_path / "kd" / "kd_strategies.png").is_file()
