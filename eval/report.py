"""The comparison report: a markdown table shaped like paper 000's Table III, and PNG bar charts.

It reads the summaries the evaluations wrote (<out>/<model>/{tele_eval,mcq_*,general,generation}.json):
every number in the table is a file's, with the count of items it rests on, and each model's row
names its folder of per-item Parquet. The best value of each column is bold (lowest for Ans-PPL).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from eval.calls import safe_name


@dataclass(frozen=True)
class Column:
    title: str
    file: str
    value: str
    """Dotted path to the value in the summary JSON."""
    count: str | None
    lower_is_better: bool = False
    digits: int = 4


COLUMNS = [
    Column("Ans-PPL", "tele_eval.json", "ans_ppl", "ans_ppl_n", lower_is_better=True, digits=2),
    Column("SemScore", "tele_eval.json", "semscore", "semscore_n"),
    Column("LLM-Eval", "tele_eval.json", "llm_eval", "llm_eval_n", digits=2),
    Column("MCQ Pass@1 seen", "mcq_generate.json", "groups[all/train].pass_at_1", "groups[all/train].items", digits=3),
    Column("MCQ Pass@1 unseen", "mcq_generate.json", "groups[all/test].pass_at_1", "groups[all/test].items", digits=3),
    Column("MCQ Maj@k unseen", "mcq_generate.json", "groups[all/test].maj_at_k", "groups[all/test].items", digits=3),
    Column("MMLU", "general.json", "scores.mmlu", "items.mmlu"),
    Column("HellaSwag", "general.json", "scores.hellaswag", "items.hellaswag"),
    Column("GSM8K", "general.json", "scores.gsm8k", "items.gsm8k"),
    Column("ROUGE-L", "generation.json", "means.rouge_l", "counts.rouge_l"),
    Column("BERTScore F1", "generation.json", "means.bertscore_f1", "counts.bertscore_f1"),
    Column("Answer correctness", "generation.json", "means.answer_correctness", "counts.answer_correctness"),
]


def _get(data: dict, path: str):
    node = data
    for part in path.split("."):
        if part.startswith("groups["):
            cat, split = part[len("groups["):-1].split("/")
            node = next((g for g in node.get("groups", []) if g["category"] == cat and g["split"] == split), None)
        else:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def collect(out: Path, models: list[str]) -> dict[str, dict[str, tuple[float, int, str]]]:
    """model → column title → (value, items, source file), for the values that exist."""
    table: dict[str, dict] = {}
    for m in models:
        row = {}
        for c in COLUMNS:
            path = out / safe_name(m) / c.file
            if not path.is_file():
                continue
            data = json.loads(path.read_text())
            v = _get(data, c.value)
            if isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v)):
                row[c.title] = (float(v), int(_get(data, c.count) or 0) if c.count else 0, str(path))
        table[m] = row
    return table


def write_report(out: Path, models: list[str], title: str) -> Path:
    """<out>/report.md and one PNG bar chart per column with values; returns the markdown path."""
    table = collect(out, models)
    cols = [c for c in COLUMNS if any(c.title in r for r in table.values())]
    best = {}
    for c in cols:
        vals = [r[c.title][0] for r in table.values() if c.title in r]
        best[c.title] = min(vals) if c.lower_is_better else max(vals)
    lines = [f"# {title}", "", "| model | " + " | ".join(c.title for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for m in models:
        cells = []
        for c in cols:
            if c.title not in table[m]:
                cells.append("–")
                continue
            v, n, _ = table[m][c.title]
            text = f"{v:.{c.digits}f}"
            cells.append((f"**{text}**" if v == best[c.title] and len(models) > 1 else text) + f" <sub>n={n:,}</sub>")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "n: the items each number rests on (items without a value are counted as failures in the "
              "model's JSON). Sources, per model: " + "; ".join(f"`{out / safe_name(m)}/`" for m in models) + " "
              "(per-item predictions in the .parquet beside each .json).", ""]
    for c in cols:
        png = _bars(out, c, models, table)
        lines.append(f"![{c.title}]({png.name})")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _bars(out: Path, column: Column, models: list[str], table: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m for m in models if column.title in table[m]]
    values = [table[m][column.title][0] for m in names]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(names) + 2), 3.2))
    bars = ax.bar(range(len(names)), values, color="#4C72B0")
    ax.bar_label(bars, labels=[f"{v:.{column.digits}f}" for v in values], fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_title(column.title + (" (lower is better)" if column.lower_is_better else ""))
    fig.tight_layout()
    path = out / f"report_{safe_name(column.title.lower().replace(' ', '_'))}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
