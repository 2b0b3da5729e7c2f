"""The per-category adapter report (paper 001 Tables 2-3, Figures 2-3), from MCQ evaluations on disk.

Every number is read from the per-item Parquet that `eval/mcq.py` wrote for each model
(<eval>/<model>/mcq_generate.parquet), on the same seeded items for every model. Per category and
split: the zero-shot backbone, the category's adapter and the monolithic adapter (Pass@1, Maj@k), the
majority-class baseline, the adapter's gain over zero-shot in points with a paired-bootstrap 95%
interval and p-value, and whether the issue's goal holds on the unseen split (gain ≥ 10 points and
above the baseline; "met" alone only when the margin over the baseline is significant). Beside it, the
adapter against the baseline's constant answer: how often each model names that option, the items one
gets right and the other wrong, and the paired difference, so a report shows whether an adapter learned
more than the benchmark's answer-position prior. The rank ablation is a table and a PNG of score and
adapter size per rank.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow.parquet as pq

from eval import bootstrap
from eval.calls import safe_name
from eval.choice import majority, majority_baseline
from eval.mcq import SPLIT_NAMES

GOAL_POINTS = 10.0
"""The issue's goal: each adapter beats zero-shot by this many points on the unseen split."""


@dataclass
class Scores:
    pass_at_1: float
    maj_at_k: float | None


@dataclass
class Prior:
    """The adapter against the majority-class baseline, which answers `option` on every item."""
    option: int
    """0-based; the most common correct option of the scored items."""
    zero_shot_picks: float
    """Share of zero-shot's greedy answers that name `option`."""
    adapter_picks: float
    wins: int
    """Items the adapter gets right and the constant gets wrong."""
    losses: int
    """Items the constant gets right and the adapter gets wrong."""
    diff_points: float
    """(adapter − baseline) Pass@1 in points, with a paired-bootstrap 95% interval and p-value."""
    diff_low: float
    diff_high: float
    p_value: float


def prior(answers: list[int], zero: list[dict], adapter: list[dict], *, resamples: int = 1000) -> Prior:
    """`zero` and `adapter`: the per-item rows of the same items, in the order of `answers`."""
    option = majority(answers)
    constant = [float(a == option) for a in answers]
    mine = [float(r["pass_at_1"]) for r in adapter]
    c = bootstrap.paired(constant, mine, resamples=resamples, seed=7)
    return Prior(option=option, zero_shot_picks=_picks(zero, option), adapter_picks=_picks(adapter, option),
                 wins=sum(m > k for m, k in zip(mine, constant)), losses=sum(k > m for m, k in zip(mine, constant)),
                 diff_points=100 * c.diff.mean, diff_low=100 * c.diff.low, diff_high=100 * c.diff.high,
                 p_value=c.p_value)


def _picks(rows: list[dict], option: int) -> float:
    return sum(r["greedy_choice"] == option for r in rows) / len(rows)


@dataclass
class CategoryRow:
    category: str
    split: str
    items: int
    baseline: float
    zero_shot: Scores
    adapter: Scores
    monolithic: Scores | None
    gain_points: float
    """(adapter − zero-shot) Pass@1, in points."""
    gain_low: float
    gain_high: float
    p_value: float
    adapter_mb: float | None
    prior: Prior

    @property
    def goal_met(self) -> bool | None:
        if self.split != "test":
            return None
        return self.gain_points >= GOAL_POINTS and self.adapter.pass_at_1 > self.baseline

    @property
    def beats_baseline_significantly(self) -> bool | None:
        """Whether the 95% interval of (adapter − baseline) lies above zero, on the unseen split. A goal
        met by a few items in a hundred is often not: another sample of items can reverse it."""
        if self.split != "test":
            return None
        return self.prior.diff_low > 0

    @property
    def goal_text(self) -> str:
        if self.goal_met is None:
            return ""
        if not self.goal_met:
            return "**not met**"
        if self.beats_baseline_significantly:
            return "met"
        return f"met, not significantly above the baseline (p {self.prior.p_value:.2f})"


def read_items(eval_dir: Path, model: str) -> dict[tuple[str, str], dict[str, dict]]:
    """(category, split) → item_id → the item's row, of one model's MCQ evaluation."""
    path = eval_dir / safe_name(model) / "mcq_generate.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no MCQ results of {model!r}; run the evaluation first")
    out: dict[tuple[str, str], dict[str, dict]] = {}
    for r in pq.read_table(path).to_pylist():
        out.setdefault((r["category"], r["split"]), {})[r["item_id"]] = r
    return out


def _scores(rows: list[dict]) -> Scores:
    maj = [r["maj_at_k"] for r in rows if r["maj_at_k"] is not None]
    return Scores(sum(bool(r["pass_at_1"]) for r in rows) / len(rows), sum(maj) / len(maj) if maj else None)


def category_rows(eval_dir: Path, zero_shot: str, adapters: dict[str, str], monolithic: str | None,
                  sizes: dict[str, int], *, resamples: int = 1000) -> list[CategoryRow]:
    """One row per (category, split) evaluated for the category's adapter; `adapters`: category →
    model name, `sizes`: category → adapter bytes."""
    zero, mono = read_items(eval_dir, zero_shot), read_items(eval_dir, monolithic) if monolithic else None
    rows = []
    for category, name in sorted(adapters.items()):
        mine = read_items(eval_dir, name)
        for (cat, split), items in sorted(mine.items(), key=lambda kv: (kv[0][0], kv[0][1] != "train")):
            if cat != category:
                continue
            ids = sorted(items)
            missing = [i for i in ids if i not in zero.get((cat, split), {})]
            if missing:
                raise ValueError(f"{zero_shot} was not evaluated on {len(missing)} of {category}/{split}'s items (e.g. "
                                 f"{missing[0]}): evaluate every model on the same seeded items")
            a = [items[i] for i in ids]
            z = [zero[(cat, split)][i] for i in ids]
            m = [mono[(cat, split)][i] for i in ids] if mono and all(i in mono.get((cat, split), {}) for i in ids) else None
            c = bootstrap.paired([float(r["pass_at_1"]) for r in z], [float(r["pass_at_1"]) for r in a],
                                 resamples=resamples, seed=7)
            answers = [r["answer"] for r in a]
            rows.append(CategoryRow(
                category=cat, split=split, items=len(ids), baseline=majority_baseline(answers),
                zero_shot=_scores(z), adapter=_scores(a), monolithic=_scores(m) if m else None,
                gain_points=100 * c.diff.mean, gain_low=100 * c.diff.low, gain_high=100 * c.diff.high,
                p_value=c.p_value, adapter_mb=sizes[category] / 1e6 if category in sizes else None,
                prior=prior(answers, z, a, resamples=resamples)))
    return rows


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def write_report(out: Path, rows: list[CategoryRow], *, k: int, title: str, notes: list[str]) -> Path:
    """report.md, adapters.json and adapters.png under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    head = (f"| category | split | items | majority baseline | zero-shot Pass@1 | adapter Pass@1 | gain (95% CI) | p "
            f"| zero-shot Maj@{k} | adapter Maj@{k} | monolithic Pass@1 | monolithic Maj@{k} | adapter MB | goal |")
    lines = [f"# {title}", "", *notes, "", head, "|" + "---|" * 3 + "---:|" * 11]
    for r in rows:
        lines.append(
            f"| {r.category} | {SPLIT_NAMES.get(r.split, r.split)} | {r.items} | {_pct(r.baseline)} | "
            f"{_pct(r.zero_shot.pass_at_1)} | {_pct(r.adapter.pass_at_1)} | {r.gain_points:+.1f} "
            f"({r.gain_low:+.1f}, {r.gain_high:+.1f}) | {r.p_value:.3f} | {_pct(r.zero_shot.maj_at_k)} | "
            f"{_pct(r.adapter.maj_at_k)} | {_pct(r.monolithic.pass_at_1) if r.monolithic else '–'} | "
            f"{_pct(r.monolithic.maj_at_k) if r.monolithic else '–'} | "
            f"{'' if r.adapter_mb is None else f'{r.adapter_mb:.2f}'} | {r.goal_text} |")
    lines += ["", f"Scores in %. Gain: adapter − zero-shot Pass@1 in points, paired bootstrap over the same items "
              f"(1,000 resamples). Goal (unseen): gain ≥ {GOAL_POINTS:g} points and adapter above the majority "
              f"baseline; \"met\" alone when the 95% interval of adapter − baseline (below) lies above zero.",
              "", "Against the majority baseline, which gives the same answer to every item:", "",
              "| category | split | constant answer | zero-shot names it | adapter names it | adapter right, constant "
              "wrong | constant right, adapter wrong | adapter − baseline (95% CI) | p |", "|---|---|" + "---:|" * 7]
    for r in rows:
        b = r.prior
        lines.append(f"| {r.category} | {SPLIT_NAMES.get(r.split, r.split)} | option {b.option + 1} | "
                     f"{_pct(b.zero_shot_picks)} | {_pct(b.adapter_picks)} | {b.wins} | {b.losses} | "
                     f"{b.diff_points:+.1f} ({b.diff_low:+.1f}, {b.diff_high:+.1f}) | {b.p_value:.3f} |")
    lines += ["", "Shares of greedy answers in %; options numbered from 1. An adapter that only learned the "
              "answer-position prior names the constant answer on every item and ties the baseline.", "",
              "![unseen scores](adapters.png)"]
    (out / "adapters.json").write_text(json.dumps([{**asdict(r), "goal_met": r.goal_met,
                                                          "beats_baseline_significantly": r.beats_baseline_significantly}
                                                         for r in rows], indent=1))
    _bars(out / "adapters.png", [r for r in rows if r.split == "test"] or rows, k)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _bars(path: Path, rows: list[CategoryRow], k: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    x = np.arange(len(rows))
    for ax, metric, label in ((axes[0], "pass_at_1", "Pass@1"), (axes[1], "maj_at_k", f"Maj@{k}")):
        series = [("zero-shot", [getattr(r.zero_shot, metric) for r in rows]),
                  ("adapter", [getattr(r.adapter, metric) for r in rows]),
                  ("monolithic", [getattr(r.monolithic, metric) if r.monolithic else None for r in rows])]
        series = [(n, v) for n, v in series if any(y is not None for y in v)]
        w = 0.8 / (len(series) + 1)
        for i, (name, vals) in enumerate(series):
            ax.bar(x + i * w, [100 * (v or 0) for v in vals], w, label=name)
        ax.bar(x + len(series) * w, [100 * r.baseline for r in rows], w, label="majority baseline", color="grey")
        ax.set_xticks(x + 0.4 - w / 2, [r.category for r in rows])
        ax.set_title(f"{label}, {SPLIT_NAMES.get(rows[0].split, rows[0].split)} split")
        ax.set_ylabel("%")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass
class RankRow:
    rank: int
    alpha: float
    adapter_mb: float
    trainable_params: int
    items: int
    pass_at_1: float
    maj_at_k: float | None


def rank_rows(eval_dir: Path, runs: dict[int, dict], category: str, split: str) -> list[RankRow]:
    """`runs`: rank → {name, alpha, adapter_bytes, trainable_params}."""
    rows = []
    for r, info in sorted(runs.items()):
        items = list(read_items(eval_dir, info["name"]).get((category, split), {}).values())
        if not items:
            raise ValueError(f"rank {r}: no MCQ results for {category}/{split}")
        s = _scores(items)
        rows.append(RankRow(r, info["alpha"], info["adapter_bytes"] / 1e6, info["trainable_params"], len(items),
                            s.pass_at_1, s.maj_at_k))
    return rows


def write_rank_report(out: Path, rows: list[RankRow], *, category: str, split: str, k: int, notes: list[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# LoRA rank ablation on {category} ({SPLIT_NAMES.get(split, split)} split)", "", *notes, "",
             f"| rank | alpha | adapter MB | trainable parameters | items | Pass@1 | Maj@{k} |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.rank} | {r.alpha:g} | {r.adapter_mb:.2f} | {r.trainable_params:,} | {r.items} | "
                     f"{_pct(r.pass_at_1)} | {_pct(r.maj_at_k)} |")
    lines += ["", "![rank ablation](rank_ablation.png)"]
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [str(r.rank) for r in rows]
    ax.bar(xs, [100 * (r.maj_at_k if r.maj_at_k is not None else r.pass_at_1) for r in rows], color="tab:blue")
    ax.set_xlabel("LoRA rank")
    ax.set_ylabel(f"Maj@{k} (%)" if rows and rows[0].maj_at_k is not None else "Pass@1 (%)", color="tab:blue")
    twin = ax.twinx()
    twin.plot(xs, [r.adapter_mb for r in rows], "o-", color="tab:red")
    twin.set_ylabel("adapter file (MB)", color="tab:red")
    ax.set_title(f"{category}: score and adapter size per rank")
    fig.tight_layout()
    fig.savefig(out / "rank_ablation.png", dpi=110)
    plt.close(fig)
    (out / "rank_ablation.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    path = out / "rank_ablation.md"
    path.write_text("\n".join(lines) + "\n")
    return path
