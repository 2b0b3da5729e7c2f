"""Evaluate models on a release: Tele-Eval metrics, MCQ benchmarks, generation metrics, general skills, report.

    telelake eval tele-eval --release demo-v1
    telelake eval mcq --release demo-v1 --set eval.mcq.mode=loglik
    telelake eval generation --release demo-v1      # BLEU, ROUGE-L, BERTScore, RAGAS-style; bootstrap vs the first
    telelake eval general --release demo-v1         # MMLU, HellaSwag, GSM8K from eval.general.files
    telelake eval report --release demo-v1          # all of the above (cached), then report.md + PNGs
    telelake eval tele-eval --release R --model base=/models/Llama-3.2-1B --model tele=runs/cpt-R/checkpoints/step-000400/hf
    spark-submit --py-files dist/telelake.zip jobs/eval.py tele-eval --release R --conf conf/eval.yaml

Models come from conf (eval.subjects: name + path, adapters with their base) or from --model
NAME=PATH (repeatable, replaces the conf's list). Results: <eval.out>/<model>/<metric>.parquet (one row
per item) and .json (the scores, the items each rests on, the failures by reason, the settings).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.table import Table

from eval.general import GeneralSpec
from eval.generation import GenerationSpec
from eval.mcq import SPLIT_NAMES, McqSpec
from eval.subjects import Subject
from eval.tele_eval import TeleEvalSpec
from jobs._common import Runtime, load_config
from pipelines.llm.backend import BackendConfig

ACTIONS = ("tele-eval", "mcq", "generation", "general", "report")


@dataclass(frozen=True, kw_only=True)
class EvalSection:
    subjects: list[Subject] = field(default_factory=lambda: [
        Subject(name="SmolLM2-135M-Instruct", path="embedded:smollm2-135m-instruct")])
    """The models compared (a report row each)."""
    out: str = "reports/eval"
    backend: BackendConfig = field(default_factory=BackendConfig)
    """How evaluated models are served (transformers on CPU, vLLM on GPUs); its model is ignored."""
    tele_eval: TeleEvalSpec = field(default_factory=TeleEvalSpec)
    mcq: McqSpec = field(default_factory=McqSpec)
    generation: GenerationSpec = field(default_factory=GenerationSpec)
    general: GeneralSpec = field(default_factory=GeneralSpec)
    report: list[str] = field(default_factory=lambda: ["tele-eval", "mcq", "general"])
    """What `telelake eval report` runs before writing the table (each served from the result store
    where it ran before)."""
    results: Literal["auto", "lake", "local"] = "auto"
    """Where model calls run and their results are kept: lake (Spark tasks, silver.llm_results), local
    (this process, Parquet files under results_dir: a GPU node without Spark or delta-rs), auto (the lake
    where pyspark and deltalake are installed, else local)."""
    results_dir: str | None = None
    """The local result store's folder; default <out>/_llm_results."""


@dataclass(frozen=True, kw_only=True)
class EvalJobConfig(Runtime):
    eval: EvalSection = field(default_factory=EvalSection)


def run(cfg: EvalJobConfig, action: str, console: Console | None = None):
    from eval.calls import model_calls
    from pipelines.spark import build_session

    console = console or Console()
    e = cfg.eval
    calls = model_calls(e.results, spark_factory=lambda: build_session(cfg.spark, f"telelake-eval-{action}"),
                        cfg=cfg.lake, folder=e.results_dir or Path(e.out) / "_llm_results")
    console.print(f"model calls: results in {calls.where}")
    if action != "report":
        return _run_one(calls, cfg, action, console)
    from eval.report import write_report

    unknown = sorted(set(e.report) - set(ACTIONS[:-1]))
    if unknown:
        raise ValueError(f"eval.report names {unknown}; known: {list(ACTIONS[:-1])}")
    results = {a: _run_one(calls, cfg, a, console) for a in e.report}
    path = write_report(Path(e.out), [s.name for s in e.subjects], f"Evaluation of release {e.tele_eval.release}")
    console.print(f"[bold]report[/]: {path}")
    return results


def _run_one(calls, cfg: EvalJobConfig, action: str, console: Console):
    e = cfg.eval
    out = Path(e.out)
    t = Table(title=f"{action} on release {e.tele_eval.release}")
    if action == "tele-eval":
        from eval.tele_eval import evaluate

        summaries = evaluate(calls, cfg.lake, e.tele_eval, e.subjects, out, e.backend)
        for col in ("model", "Ans-PPL", "SemScore", "LLM-Eval", "failures"):
            t.add_column(col, justify="left" if col == "model" else "right")
        for s in summaries:
            t.add_row(s.model, f"{s.ans_ppl:.2f} ({s.ans_ppl_n})", f"{s.semscore:.4f} ({s.semscore_n})",
                      f"{s.llm_eval:.2f} ({s.llm_eval_n})", ", ".join(f"{k} {v}" for k, v in sorted(s.failures.items())))
    elif action == "mcq":
        from eval.mcq import evaluate

        summaries = evaluate(calls, cfg.lake, e.mcq, e.subjects, out, e.backend)
        for col in ("model", "category", "split", "items", "Pass@1", f"Maj@{e.mcq.k}", "majority baseline"):
            t.add_column(col, justify="left" if col in ("model", "category", "split") else "right")
        for s in summaries:
            for g in s.groups:
                t.add_row(s.model, g.category, SPLIT_NAMES.get(g.split, g.split), f"{g.items:,}", f"{g.pass_at_1:.3f}",
                          "" if g.maj_at_k is None else f"{g.maj_at_k:.3f}", f"{g.baseline:.3f}")
    elif action == "general":
        from eval.general import evaluate

        summaries = evaluate(calls, cfg.lake, e.general, e.subjects, out, e.backend)
        tasks = list(e.general.files)
        for col in ("model", *tasks):
            t.add_column(col, justify="left" if col == "model" else "right")
        for s in summaries:
            t.add_row(s.model, *(f"{s.scores[x]:.4f} ({s.items[x]})" for x in tasks))
    else:
        from eval.generation import JUDGED, evaluate

        summaries = evaluate(calls, cfg.lake, e.generation, e.subjects, out, e.backend)
        shown = ("bleu4", "rouge_l", "cosine", "bertscore_f1", *JUDGED)
        for col in ("model", *shown, "sacreBLEU"):
            t.add_column(col, justify="left" if col == "model" else "right")
        for s in summaries:
            cells = []
            for k in shown:
                cell = f"{s.means[k]:.3f}"
                if s.against_first and k in s.against_first:
                    c = s.against_first[k]
                    cell += f" ({c['diff']:+.3f}{'*' if c['significant'] else ''})"
                cells.append(cell)
            t.add_row(s.model, *cells, f"{s.corpus_bleu:.2f}")
        t.caption = "(± against the first model; * p < 0.05, paired bootstrap)"
    console.print(t)
    console.print(f"per-item results and scores: {out}/<model>/")
    return summaries


def main(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("--release", required=True, help="release name (telelake release list)")
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                   help="a model to evaluate (repeatable; replaces eval.subjects)")
    p.add_argument("--conf", default="conf/eval.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    cfg = load_config(EvalJobConfig, args)
    e = cfg.eval
    subjects = e.subjects
    if args.model:
        bad = [m for m in args.model if "=" not in m]
        if bad:
            raise SystemExit(f"telelake: --model takes NAME=PATH, got {bad[0]!r}")
        subjects = [Subject(name=n, path=path) for n, path in (m.split("=", 1) for m in args.model)]
    cfg = replace(cfg, eval=replace(e, subjects=subjects, tele_eval=replace(e.tele_eval, release=args.release),
                                    mcq=replace(e.mcq, release=args.release),
                                    generation=replace(e.generation, release=args.release)))
    return run(cfg, args.action)


if __name__ == "__main__":
    main()
