"""A training node: `telelake train` and `telelake eval` where only the training stack is installed.

A GPU machine holds torch, transformers, PEFT and DeepSpeed, not a JVM, pyspark or delta-rs. These tests
run the CLI in a child process in which those libraries (and the lake stack's other native parts)
cannot be imported: the entry points import, a run trains from a copied shard folder, and evaluation
reads the release through its manifest and keeps its model calls in a local result store, which a
rerun serves without calling the model."""
import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, subprocess_env
from tests.training.conftest import tiny_model  # noqa: F401 - fixture

LAKE_STACK = ("pyspark", "py4j", "deltalake", "great_expectations", "duckdb", "polars", "orjson", "hyperscan",
              "ahocorasick", "floret")
"""What a training node lacks (the lake's stack, and the native parts of ingest and curation)."""

BLOCK = f"""
import sys
for name in {LAKE_STACK!r}:
    sys.modules[name] = None  # as if not installed: `import` fails, importlib.util.find_spec says None
"""


def _node(code: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code], cwd=ROOT, env=subprocess_env(), capture_output=True,
                          text=True, timeout=timeout)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return _node(f"from jobs.cli import main\nsys.exit(main({list(args)!r}))")


def test_the_training_and_evaluation_entry_points_import_without_spark_or_delta():
    modules = ["jobs.cli", "jobs.train", "jobs.eval", "training.trainer", "training.run", "training.kd_step",
               "eval.tele_eval", "eval.mcq", "eval.generation", "eval.general", "eval.report", "eval.adapters",
               "pipelines.llm.hf_backend", "pipelines.tokenize.spec", "pipelines.release.ops"]
    done = _node(f"import importlib\nfor m in {modules!r}: importlib.import_module(m)\n"
                 f"print(sorted(m for m, v in sys.modules.items() if v is not None and m.split('.')[0] in {LAKE_STACK!r}))", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    blocked = _node("import pyspark")
    assert blocked.returncode == 1 and "ModuleNotFoundError" in blocked.stderr  # the block itself works


@pytest.mark.spark
def test_a_node_without_the_lake_stack_trains_from_a_shard_folder_and_evaluates_a_release(spark, lake_cfg, tmp_path,
                                                                                            tiny_model):
    from pipelines.release.create import ReleaseSpec, create_release
    from pipelines.tokenize.stage import ShardSpec, build_shards
    from schemas import TELE_EVAL
    from tests.eval.conftest import write_benchmarks
    from tests.pipelines.gold.conftest import write_rows
    from tests.pipelines.release.test_release import gold_rows, write_gold
    from tests.pipelines.release.test_release_datasets import tele_eval_rows

    write_gold(spark, lake_cfg, gold_rows(1, 30), "g")
    write_rows(spark, lake_cfg, TELE_EVAL, tele_eval_rows(["wiki_1", "wiki_2"]), "te")
    write_benchmarks(spark, lake_cfg, per_split=2)
    create_release(spark, lake_cfg, "r1", ReleaseSpec())
    built = build_shards(spark, lake_cfg, "r1", tiny_model, ShardSpec(seq_len=128, seqs_per_shard=16,
                                                                          blend={"gold.tele_data": None}))
    node_shards = tmp_path / "copied-shards"  # what a GPU node receives: the shard folder alone
    shutil.copytree(built.folder, node_shards)

    runs = tmp_path / "runs"
    train = _cli("train", "--recipe", "cpt", "--shards", str(node_shards), "--run-name", "node",
                 *(x for s in (f"train.model.path={tiny_model}", "train.max_steps=2", "train.batch.micro_batch=2",
                               "train.batch.tokens_per_step=256", f"train.out={runs}", "train.eval_batches=1")
                   for x in ("--set", s)))
    assert train.returncode == 0, train.stderr[-3000:]
    result = json.loads((runs / "node" / "result.json").read_text())
    assert result["final"]["step"] == 2 and result["shards"] == str(node_shards)
    assert json.loads((runs / "node" / "run.json").read_text())["release"]["name"] == "r1"

    out = tmp_path / "reports"
    sets = [f"lake.root={lake_cfg.root}", f"eval.out={out}", "eval.mcq.k=0", "eval.mcq.max_new_tokens=4",
            "eval.tele_eval.max_new_tokens=6"]
    model = f"cpt={result['checkpoint']}/hf"
    args = [x for s in sets for x in ("--set", s)]
    mcq = _cli("eval", "mcq", "--release", "r1", "--model", model, *args)
    assert mcq.returncode == 0, mcq.stderr[-3000:]
    store = out / "_llm_results"
    assert "model calls: results in" in mcq.stdout and str(store) in mcq.stdout.replace("\n", "")
    summary = json.loads((out / "cpt" / "mcq_generate.json").read_text())
    assert {(g["category"], g["split"], g["items"]) for g in summary["groups"]} >= {("teleqna", "train", 2),
                                                                                     ("teleqna", "test", 2)}
    tele = _cli("eval", "tele-eval", "--release", "r1", "--model", model, *args)
    assert tele.returncode == 0, tele.stderr[-3000:]
    scores = json.loads((out / "cpt" / "tele_eval.json").read_text())
    assert scores["items"] == 2 and scores["ans_ppl_n"] == 2 and scores["ans_ppl"] > 1
    files = sorted(store.glob("part-*.parquet"))
    assert files

    again = _cli("eval", "mcq", "--release", "r1", "--model", model, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(store.glob("part-*.parquet")) == files  # served from the local store: no model call
