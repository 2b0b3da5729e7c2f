"""`telelake eval report` as a user runs it: a child process over a real release (Tele-Eval pairs and
MCQ benchmarks) with the embedded model, writing every summary, the per-item Parquet and report.md
with its charts; a rerun asks no model anything; a missing release is refused with the reason."""
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, subprocess_env


def _eval(lake_root, out, *args):
    sets = [f"lake.root={lake_root}", f"eval.out={out}", "eval.tele_eval.max_new_tokens=8",
            "eval.mcq.k=2", "eval.mcq.max_new_tokens=4", "eval.general.max_new_tokens=12",
            "spark.log_level=ERROR"]
    return subprocess.run([sys.executable, "-m", "jobs.cli", "eval", *args, *(x for s in sets for x in ("--set", s))],
                          cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=900)


@pytest.mark.spark
def test_eval_report_writes_the_table_from_results_files_and_reruns_from_the_store(spark, lake_cfg, tmp_path):
    from pipelines.llm.runner import stored_results
    from pipelines.release.create import ReleaseSpec, create_release
    from schemas import TELE_EVAL
    from tests.eval.conftest import write_benchmarks
    from tests.pipelines.gold.conftest import write_rows
    from tests.pipelines.release.test_release import gold_rows, write_gold
    from tests.pipelines.release.test_release_datasets import tele_eval_rows

    write_gold(spark, lake_cfg, gold_rows(1, 3), "g")
    write_rows(spark, lake_cfg, TELE_EVAL, tele_eval_rows(["wiki_1", "wiki_2"]), "te")
    write_benchmarks(spark, lake_cfg, per_split=2)
    create_release(spark, lake_cfg, "r1", ReleaseSpec())
    out = tmp_path / "reports"

    done = _eval(lake_cfg.root, out, "report", "--release", "r1")
    assert done.returncode == 0, done.stderr[-3000:]
    folder = out / "SmolLM2-135M-Instruct"
    tele = json.loads((folder / "tele_eval.json").read_text())
    mcq = json.loads((folder / "mcq_generate.json").read_text())
    general = json.loads((folder / "general.json").read_text())
    assert tele["items"] == 2 and tele["ans_ppl_n"] == 2 and tele["ans_ppl"] > 1
    unseen = next(g for g in mcq["groups"] if g["category"] == "all" and g["split"] == "test")
    assert unseen["items"] == 2 and general["items"] == {"mmlu": 4, "hellaswag": 3, "gsm8k": 3}
    assert all((folder / f).is_file() for f in ("tele_eval.parquet", "mcq_generate.parquet", "general.parquet"))
    report = (out / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| SmolLM2-135M-Instruct"))
    assert f"{tele['ans_ppl']:.2f} <sub>n=2</sub>" in row and f"{general['scores']['mmlu']:.4f} <sub>n=4</sub>" in row
    assert "![Ans-PPL](report_ans-ppl.png)" in report and (out / "report_ans-ppl.png").stat().st_size > 1000
    assert "Ans-PPL" in done.stdout and "report" in done.stdout

    calls = stored_results(spark, lake_cfg).count()
    again = _eval(lake_cfg.root, out, "report", "--release", "r1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert stored_results(spark, lake_cfg).count() == calls  # the rerun was served from the result store
    assert (out / "report.md").read_text() == report

    missing = _eval(lake_cfg.root, out, "tele-eval", "--release", "nope")
    assert missing.returncode == 1 and "refused" in missing.stderr and "nope" in missing.stderr


def test_the_cli_offers_every_eval_action():
    from jobs.cli import _parser
    from jobs.eval import ACTIONS

    eval_parser = _parser()._subparsers._group_actions[0].choices["eval"]
    action = next(a for a in eval_parser._actions if a.dest == "action")
    assert list(action.choices) == list(ACTIONS)
