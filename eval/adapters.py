"""The per-category adapter report (paper 001 Tables 2-3, Figures 2-3), from MCQ evaluations on disk.

Every number is read from the per-item Parquet that `eval/mcq.py` wrote for each model
(<eval>/<model>/mcq_generate.parquet), on the same seeded items for every model. Per category and
split: the zero-shot backbone, the category's adapter, the monolithic adapter and the category
adapters merged into one (TIES, DARE), each by Pass@1 and Maj@k; the majority-class baseline; the
adapter's gain over zero-shot in points with a paired-bootstrap 95% interval and p-value; and whether
the issue's goal holds on the unseen split (gain ≥ 10 points and above the baseline; "met" alone only
when the margin over the baseline is significant). Beside it, each adapter (the category's, the
monolithic one, each merge) against the baseline's constant answer: how often each model names that
option, the items one gets right and the other wrong, and the paired difference, so a report shows
whether an adapter learned more than the benchmark's answer-position prior, or carries another
category's. The rank ablation is a table and a PNG of score and adapter size per rank, with each
rank's validation loss and training speed, against zero-shot and the majority baseline on the same
items.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
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
    """An adapter against the majority-class baseline, which answers `option` on every item."""
    option: int
    """0-based; the most common correct option of the scored items."""
    zero_shot_picks: float
    """Share of zero-shot's greedy answers that name `option`."""
    adapter_picks: float
    """Share of the adapter's greedy answers that name `option`."""
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
    merged: dict[str, Scores] = field(default_factory=dict)
    """Label (merge_label) → the merged adapter's scores on these items."""
    other_priors: dict[str, Prior] = field(default_factory=dict)
    """'monolithic' and each merge label → that model against the constant answer, as `prior` is the
    category adapter's: a merged adapter can carry another category's answer-position prior."""

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


MERGE_LABELS = {"linear": "linear merge", "ties": "TIES merge", "dare_linear": "DARE merge",
                "dare_ties": "DARE-TIES merge"}


def merge_label(method: str) -> str:
    return MERGE_LABELS.get(method, f"{method} merge")


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
                  sizes: dict[str, int], *, merged: dict[str, str] | None = None,
                  resamples: int = 1000) -> list[CategoryRow]:
    """One row per (category, split) evaluated for the category's adapter; `adapters`: category →
    model name, `sizes`: category → adapter bytes, `merged`: label → model name of each merged adapter,
    which, like the monolithic one, is scored on every category."""
    zero, mono = read_items(eval_dir, zero_shot), read_items(eval_dir, monolithic) if monolithic else None
    merges = {label: read_items(eval_dir, name) for label, name in (merged or {}).items()}
    rows = []
    for category, name in sorted(adapters.items()):
        mine = read_items(eval_dir, name)
        for (cat, split), items in sorted(mine.items(), key=lambda kv: (kv[0][0], kv[0][1] != "train")):
            if cat != category:
                continue
            ids, a, z = _aligned(items, zero.get((cat, split), {}), zero_shot, cat, split)
            m = _same_items(mono, cat, split, ids)
            merged_rows = {label: x for label, got in merges.items()
                           if (x := _same_items(got, cat, split, ids)) is not None}
            c = bootstrap.paired([float(r["pass_at_1"]) for r in z], [float(r["pass_at_1"]) for r in a],
                                 resamples=resamples, seed=7)
            answers = [r["answer"] for r in a]
            rows.append(CategoryRow(
                category=cat, split=split, items=len(ids), baseline=majority_baseline(answers),
                zero_shot=_scores(z), adapter=_scores(a), monolithic=_scores(m) if m else None,
                gain_points=100 * c.diff.mean, gain_low=100 * c.diff.low, gain_high=100 * c.diff.high,
                p_value=c.p_value, adapter_mb=sizes[category] / 1e6 if category in sizes else None,
                prior=prior(answers, z, a, resamples=resamples),
                merged={label: _scores(x) for label, x in merged_rows.items()},
                other_priors={label: prior(answers, z, x, resamples=resamples)
                              for label, x in (({"monolithic": m} if m else {}) | merged_rows).items()}))
    return rows


def _aligned(items: dict[str, dict], zero: dict[str, dict], zero_shot: str, category: str,
             split: str) -> tuple[list[str], list[dict], list[dict]]:
    """The item ids in order, and the model's and zero-shot's rows of them; zero-shot must have answered all."""
    ids = sorted(items)
    missing = [i for i in ids if i not in zero]
    if missing:
        raise ValueError(f"{zero_shot} was not evaluated on {len(missing)} of {category}/{split}'s items (e.g. "
                         f"{missing[0]}): evaluate every model on the same seeded items")
    return ids, [items[i] for i in ids], [zero[i] for i in ids]


def _same_items(results: dict | None, category: str, split: str, ids: list[str]) -> list[dict] | None:
    """Another model's rows of exactly these items, or None when it did not answer all of them."""
    got = (results or {}).get((category, split), {})
    return [got[i] for i in ids] if results and all(i in got for i in ids) else None


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def write_report(out: Path, rows: list[CategoryRow], *, k: int, title: str, notes: list[str]) -> Path:
    """report.md, adapters.json and adapters.png under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    merged = list(dict.fromkeys(label for r in rows for label in r.merged))
    head = (f"| category | split | items | majority baseline | zero-shot Pass@1 | adapter Pass@1 | gain (95% CI) | p "
            f"| zero-shot Maj@{k} | adapter Maj@{k} | monolithic Pass@1 | monolithic Maj@{k} | "
            + "".join(f"{label} Pass@1 | {label} Maj@{k} | " for label in merged) + "adapter MB | goal |")
    lines = [f"# {title}", "", *notes, "", head, "|" + "---|" * 3 + "---:|" * (11 + 2 * len(merged))]
    for r in rows:
        cells = "".join(f"{_pct(r.merged[x].pass_at_1)} | {_pct(r.merged[x].maj_at_k)} | " if x in r.merged
                        else "– | – | " for x in merged)
        lines.append(
            f"| {r.category} | {SPLIT_NAMES.get(r.split, r.split)} | {r.items} | {_pct(r.baseline)} | "
            f"{_pct(r.zero_shot.pass_at_1)} | {_pct(r.adapter.pass_at_1)} | {r.gain_points:+.1f} "
            f"({r.gain_low:+.1f}, {r.gain_high:+.1f}) | {r.p_value:.3f} | {_pct(r.zero_shot.maj_at_k)} | "
            f"{_pct(r.adapter.maj_at_k)} | {_pct(r.monolithic.pass_at_1) if r.monolithic else '–'} | "
            f"{_pct(r.monolithic.maj_at_k) if r.monolithic else '–'} | {cells}"
            f"{'' if r.adapter_mb is None else f'{r.adapter_mb:.2f}'} | {r.goal_text} |")
    lines += ["", f"Scores in %. Gain: adapter − zero-shot Pass@1 in points, paired bootstrap over the same items "
              f"(1,000 resamples). Goal (unseen): gain ≥ {GOAL_POINTS:g} points and adapter above the majority "
              f"baseline; \"met\" alone when the 95% interval of adapter − baseline (below) lies above zero.",
              "", "Against the majority baseline, which gives the same answer to every item:", "",
              "| category | split | model | constant answer | zero-shot names it | model names it | model right, "
              "constant wrong | constant right, model wrong | model − baseline (95% CI) | p |",
              "|---|---|---|" + "---:|" * 7]
    for r in rows:
        for model, b in {"adapter": r.prior, **r.other_priors}.items():
            lines.append(f"| {r.category} | {SPLIT_NAMES.get(r.split, r.split)} | {model} | "
                         f"option {b.option + 1} | {_pct(b.zero_shot_picks)} | {_pct(b.adapter_picks)} | "
                         f"{b.wins} | {b.losses} | "
                         f"{b.diff_points:+.1f} ({b.diff_low:+.1f}, {b.diff_high:+.1f}) | {b.p_value:.3f} |")
    lines += ["", "Shares of greedy answers in %; options numbered from 1. A model that only learned the "
              "answer-position prior names the constant answer on every item and ties the baseline; a merged or "
              "monolithic adapter can carry another category's prior instead.", "",
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
                  ("monolithic", [getattr(r.monolithic, metric) if r.monolithic else None for r in rows]),
                  *((label, [getattr(r.merged[label], metric) if label in r.merged else None for r in rows])
                    for label in dict.fromkeys(x for r in rows for x in r.merged))]
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


@dataclass(frozen=True)
class RankRun:
    """What the rank ablation knows of one rank's training run."""
    name: str
    """The model's name in the evaluation."""
    alpha: float
    adapter_bytes: int
    trainable_params: int
    best_step: int | None = None
    best_val: float | None = None
    tokens_per_s: float | None = None


@dataclass
class RankRow:
    rank: int
    alpha: float
    adapter_mb: float
    trainable_params: int
    best_step: int | None
    best_val: float | None
    """Validation loss of the adapter kept (the best step)."""
    tokens_per_s: float | None
    """Median training tokens/s."""
    items: int
    pass_at_1: float
    maj_at_k: float | None
    baseline: float
    """Majority-class baseline of the same items."""
    zero_shot: Scores
    gain_points: float
    """(adapter − zero-shot) Pass@1 in points, paired bootstrap 95% interval and p-value."""
    gain_low: float
    gain_high: float
    p_value: float
    prior: Prior


def rank_rows(eval_dir: Path, zero_shot: str, runs: dict[int, RankRun], category: str, split: str, *,
              resamples: int = 1000) -> list[RankRow]:
    """One row per rank, each against the zero-shot backbone and the majority baseline on the same items."""
    zero = read_items(eval_dir, zero_shot).get((category, split), {})
    rows = []
    for r, info in sorted(runs.items()):
        items = read_items(eval_dir, info.name).get((category, split), {})
        if not items:
            raise ValueError(f"rank {r}: no MCQ results for {category}/{split}")
        ids, a, z = _aligned(items, zero, zero_shot, category, split)
        s = _scores(a)
        c = bootstrap.paired([float(x["pass_at_1"]) for x in z], [float(x["pass_at_1"]) for x in a],
                             resamples=resamples, seed=7)
        answers = [x["answer"] for x in a]
        rows.append(RankRow(r, info.alpha, info.adapter_bytes / 1e6, info.trainable_params, info.best_step,
                            info.best_val, info.tokens_per_s, len(ids), s.pass_at_1, s.maj_at_k,
                            majority_baseline(answers), _scores(z), 100 * c.diff.mean, 100 * c.diff.low,
                            100 * c.diff.high, c.p_value, prior(answers, z, a, resamples=resamples)))
    return rows


def write_rank_report(out: Path, rows: list[RankRow], *, category: str, split: str, k: int, notes: list[str]) -> Path:
    """rank_ablation.md, .json and .png under `out`: per rank the adapter's size, validation loss, speed and
    scores, beside the zero-shot backbone and the majority baseline of the same items."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    ref = rows[0]
    lines = [f"# LoRA rank ablation on {category} ({SPLIT_NAMES.get(split, split)} split)", "", *notes, "",
             f"On these {ref.items} items the zero-shot backbone scores {_pct(ref.zero_shot.pass_at_1)} Pass@1 and "
             f"{_pct(ref.zero_shot.maj_at_k)} Maj@{k}; the majority baseline (option {ref.prior.option + 1} on every "
             f"item) scores {_pct(ref.baseline)}.", "",
             f"| rank | alpha | adapter MB | trainable parameters | best val loss (step) | train tokens/s | Pass@1 "
             f"| Maj@{k} | − zero-shot (95% CI) | p | − baseline (95% CI) | p |",
             "|" + "---:|" * 12]
    for r in rows:
        val = "–" if r.best_val is None else f"{r.best_val:.4f} ({r.best_step})"
        speed = "–" if r.tokens_per_s is None else f"{r.tokens_per_s:,.0f}"
        b = r.prior
        lines.append(f"| {r.rank} | {r.alpha:g} | {r.adapter_mb:.2f} | {r.trainable_params:,} | {val} | {speed} | "
                     f"{_pct(r.pass_at_1)} | {_pct(r.maj_at_k)} | {r.gain_points:+.1f} ({r.gain_low:+.1f}, "
                     f"{r.gain_high:+.1f}) | {r.p_value:.3f} | {b.diff_points:+.1f} ({b.diff_low:+.1f}, "
                     f"{b.diff_high:+.1f}) | {b.p_value:.3f} |")
    lines += ["", "Scores in %; differences in points, paired bootstrap over the same items (1,000 resamples). "
              "Adapter file: safetensors as saved.", "", "![rank ablation](rank_ablation.png)"]
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [100 * r.pass_at_1 for r in rows], 0.4, label="Pass@1", color="tab:blue")
    ax.bar(x + 0.2, [100 * (r.maj_at_k or 0) for r in rows], 0.4, label=f"Maj@{k}", color="tab:cyan")
    ax.axhline(100 * ref.baseline, color="grey", ls="--", lw=1, label="majority baseline")
    ax.axhline(100 * ref.zero_shot.pass_at_1, color="black", ls=":", lw=1, label="zero-shot Pass@1")
    ax.set_xticks(x, [str(r.rank) for r in rows])
    ax.set_xlabel("LoRA rank")
    ax.set_ylabel("%")
    ax.legend(fontsize=8, loc="lower left")
    twin = ax.twinx()
    twin.plot(x, [r.adapter_mb for r in rows], "o-", color="tab:red")
    twin.set_ylabel("adapter file (MB)", color="tab:red")
    ax.set_title(f"{category}, {SPLIT_NAMES.get(split, split)} split: score and adapter size per rank")
    fig.tight_layout()
    fig.savefig(out / "rank_ablation.png", dpi=110)
    plt.close(fig)
    (out / "rank_ablation.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    path = out / "rank_ablation.md"
    path.write_text("\n".join(lines) + "\n")
    return path
