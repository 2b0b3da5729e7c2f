"""The Tele-Eval funnel report: report.md with the funnel and every filter's count, and PNGs beside it."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def write_report(out: str | Path, tag: str, funnel: dict[str, int], reasons: dict[str, dict[str, int]],
                 hits: dict[str, int], n_filters: int, scores: pd.DataFrame, threshold: float) -> str:
    """Write report.md, funnel.png, filters.png and p_answerable.png into `out`; return report.md's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stages = list(funnel)
    total = funnel["generated"] or 1

    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.bar(stages, [max(funnel[s], 0.8) for s in stages], color="tab:blue")
    for i, s in enumerate(stages):
        ax.annotate(f"{funnel[s]:,}\n{100 * funnel[s] / total:.1f}%", (i, max(funnel[s], 0.8)), ha="center",
                    va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("pairs remaining (log)")
    ax.set_title(f"Tele-Eval funnel ({tag})")
    ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    fig.savefig(out / "funnel.png", dpi=110)
    plt.close(fig)

    dropped = sorted(((f"{stage}: {r}", n) for stage, rs in reasons.items() for r, n in rs.items()),
                     key=lambda x: -x[1])[:30]
    if dropped:
        fig, ax = plt.subplots(figsize=(8, 0.28 * len(dropped) + 1.2))
        ax.barh([d[0] for d in dropped][::-1], [d[1] for d in dropped][::-1], color="tab:red")
        ax.set_xlabel("pairs dropped (first filter that fired)")
        ax.set_title("filters that dropped the most pairs")
        ax.tick_params(axis="y", labelsize=7)
        fig.tight_layout()
        fig.savefig(out / "filters.png", dpi=110)
        plt.close(fig)

    if len(scores):
        fig, ax = plt.subplots(figsize=(7, 3.4))
        for label, mask in (("kept or dropped later", scores["stage"] != "answerability"),
                            ("dropped by the LLM filter", scores["stage"] == "answerability")):
            if mask.any():
                ax.hist(scores.loc[mask, "p_answerable"], bins=40, range=(0, 1), alpha=0.6, label=label)
        ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold}")
        ax.set_xlabel("P(Yes) of prompt 4 (answerable without the source)")
        ax.set_ylabel("pairs")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "p_answerable.png", dpi=110)
        plt.close(fig)

    lines = [f"# Tele-Eval filtering {tag}", "",
             f"{funnel['generated']:,} generated pairs, {funnel[stages[-1]]:,} kept "
             f"({100 * funnel[stages[-1]] / total:.2f}%; the paper kept about 1%). {n_filters} regex filters.", "",
             "| stage | pairs remaining | share of generated | dropped here |", "|---|---:|---:|---:|"]
    for s in stages:
        here = sum(reasons.get(s, {}).values())
        lines.append(f"| {s} | {funnel[s]:,} | {100 * funnel[s] / total:.2f}% | {here:,} |")
    lines += ["", "![funnel](funnel.png)", "", "## Drops by filter", "",
              "The first filter of the chain that fired on a pair is its reason; `regex hits` counts every "
              "pair a regex matches (a pair can match several).", "",
              "| stage | filter / reason | pairs dropped | regex hits |", "|---|---|---:|---:|"]
    for stage in funnel:
        for r, n in sorted(reasons.get(stage, {}).items(), key=lambda x: -x[1]):
            lines.append(f"| {stage} | {r} | {n:,} | {hits.get(r, '') if stage == 'regex' else ''} |")
    never = sorted(set(hits) - set(reasons.get("regex", {})))
    if never:
        lines += ["", "Regex filters that matched only pairs an earlier filter had dropped: "
                  + ", ".join(f"{h} ({hits[h]})" for h in never)]
    if dropped:
        lines += ["", "![filters](filters.png)"]
    if len(scores):
        lines += ["", "## Answerability", "", f"Threshold {threshold} on P(Yes) of prompt 4.", "",
                  "![P(Yes)](p_answerable.png)"]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return str(out / "report.md")
