"""Evaluate the relevance judge against human labels: precision/recall/F1, PR curve, threshold.

    telelake classify eval --labels labels.jsonl --conf conf/judge.yaml [--out reports/judge_eval]

The labels file (CSV with a header, or JSONL) has a `label` (1/0, yes/no, true/false) and either
`text` (optionally `category`: wiki, web, arxiv, …), scored here with the configured model and
prompts, or `doc_id`, looked up in silver.relevance for that model revision and prompt version.
Writes report.md and pr_curve.png into --out.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

import pyarrow.compute as pc
from rich.progress import Progress

from eval.classification import evaluate, markdown, plot_pr
from jobs._common import load_config
from jobs.judge import JudgeJobConfig
from pipelines import lake
from pipelines.llm.backend import load_backend
from pipelines.llm.judge import score_texts
from pipelines.llm.prompts import load_prompt_set
from schemas import RELEVANCE

log = logging.getLogger(__name__)
TRUE, FALSE = {"1", "yes", "true", "y", "relevant"}, {"0", "no", "false", "n", "irrelevant"}


class LabelsError(ValueError):
    """The labels file cannot be used."""


def read_labels(path: Path) -> tuple[list[dict], list[str]]:
    """(rows with label: bool and text or doc_id, problems as 'line N: why')."""
    if not path.is_file():
        raise LabelsError(f"labels file {path} not found")
    raw: list[tuple[int, dict | None, str]] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                raw.append((n, row, ""))
    else:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                raw.append((n, obj if isinstance(obj, dict) else None, "" if isinstance(obj, dict) else "not an object"))
            except json.JSONDecodeError as exc:
                raw.append((n, None, f"malformed JSON ({exc.msg})"))
    rows, problems = [], []
    for n, obj, why in raw:
        if obj is None:
            problems.append(f"line {n}: {why}")
            continue
        label = str(obj.get("label", "")).strip().lower()
        if "label" not in obj or obj["label"] is None:
            problems.append(f"line {n}: no label")
            continue
        if label not in TRUE | FALSE:
            problems.append(f"line {n}: label {obj.get('label')!r} is not 1/0, yes/no or true/false")
            continue
        if not obj.get("text") and not obj.get("doc_id"):
            problems.append(f"line {n}: needs a text or a doc_id")
            continue
        rows.append({"line": n, "label": label in TRUE, "text": obj.get("text"), "doc_id": obj.get("doc_id"),
                     "category": obj.get("category") or "web"})
    if not rows:
        raise LabelsError(f"{path}: no usable labelled rows ({len(problems)} problems: {problems[:3]})")
    return rows, problems


def run(cfg: JudgeJobConfig, labels: Path, out: Path) -> dict:
    rows, problems = read_labels(labels)
    prompts = load_prompt_set(cfg.judge.prompts)
    backend = load_backend(cfg.llm)
    scores: dict[int, float] = {}
    texts = [r for r in rows if r["text"]]
    with Progress(transient=True) as progress:
        bar = progress.add_task("scoring labelled texts", total=len(texts))
        got = score_texts(backend, prompts, cfg.judge, [(r["category"], r["text"]) for r in texts],
                          cfg.llm.max_context_tokens - 1, progress=lambda k: progress.advance(bar, k))
    scores.update({r["line"]: s for r, s in zip(texts, got)})
    by_id = [r for r in rows if not r["text"]]
    if by_id:
        flt = (pc.field("model_revision") == backend.revision) & (pc.field("prompt_version") == prompts.version)
        judged = lake.dataset(cfg.lake, RELEVANCE.name).to_table(columns=["doc_id", "p_yes"], filter=flt).to_pylist()
        p_yes = {j["doc_id"]: j["p_yes"] for j in judged if j["p_yes"] is not None}
        for r in by_id:
            if r["doc_id"] in p_yes:
                scores[r["line"]] = p_yes[r["doc_id"]]
            else:
                problems.append(f"line {r['line']}: doc_id {r['doc_id']} has no p_yes in {RELEVANCE.name} for "
                                f"{backend.model_name} {backend.revision} / {prompts.version}; run `telelake judge` first")
    used = [r for r in rows if r["line"] in scores]
    report = evaluate([scores[r["line"]] for r in used], [r["label"] for r in used], cfg.judge.threshold,
                      cfg.judge.target_recall)
    out.mkdir(parents=True, exist_ok=True)
    title = f"Relevance judge vs human labels: {backend.model_name} / {prompts.version}"
    plot_pr(report, out / "pr_curve.png", title="relevance judge")
    notes = [f"Labels: `{labels}`; model revision `{backend.revision}`; prompts `{prompts.version}`.",
             f"{len(problems)} label rows skipped" + (": " + "; ".join(problems[:10]) if problems else ".")]
    (out / "report.md").write_text(markdown(report, title, "pr_curve.png", notes), encoding="utf-8")
    t = report.at_threshold
    print(f"classify eval: {report.n} labels ({report.positives} positive), threshold {t.threshold:g}: "
          f"precision {t.precision:.3f} recall {t.recall:.3f} F1 {t.f1:.3f}; "
          + (f"recall ≥ {report.target_recall:g} at threshold {report.at_target_recall.threshold:.4g}"
             if report.at_target_recall else f"no threshold reaches recall {report.target_recall:g}")
          + f"; report in {out / 'report.md'}", flush=True)
    return {"report": report, "problems": problems}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", required=True, type=Path)
    p.add_argument("--conf", default="conf/judge.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", type=Path, default=Path("reports/judge_eval"))
    args = p.parse_args(argv)
    cfg = load_config(JudgeJobConfig, args)
    try:
        return run(cfg, args.labels, args.out)
    except LabelsError as exc:
        raise SystemExit(f"telelake: {exc}") from exc


if __name__ == "__main__":
    main()
