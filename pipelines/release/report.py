"""The release report: report.md with the paper's Table I for this release, the funnel per source,
the suite results, and PNGs (funnel, category shares, length histograms) beside it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.gold.inclusion import STAGES
from schemas import TELE_EVAL

FUNNEL_STAGES = ("read", "sample", *STAGES)
"""`sample`: the general replay sample; a source shows only the stages its conf applies."""


def _funnels(manifest: dict) -> dict[str, dict[str, int]]:
    """source → stage → documents, from the assembly commits of the Tele-Data tables."""
    out = {}
    for table, a in manifest["assembly"].items():
        if a.get("funnel") and table != TELE_EVAL.name:
            out.update(json.loads(a["funnel"]))
    return out


def _tele_eval_funnel(manifest: dict) -> dict[str, int]:
    """stage → pairs remaining, from the filtering commit of the released gold.tele_eval."""
    a = manifest["assembly"].get(TELE_EVAL.name) or {}
    return json.loads(a["funnel"]) if a.get("funnel") else {}


def write_report(out: Path, manifest: dict, profiles: dict[str, pd.DataFrame]) -> str:
    """Write report.md and its PNGs into `out`; return the report's path relative to the release."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    cats = manifest["categories"]
    funnels = _funnels(manifest)
    layout = [p for p in profiles.values() if "content_chars" in p]  # the Tele-Data layout tables
    released = pd.concat(layout, ignore_index=True) if layout else pd.DataFrame()

    if funnels:
        fig, ax = plt.subplots(figsize=(8, 4))
        stages = [st for st in FUNNEL_STAGES if any(st in f for f in funnels.values())]
        for n, f in funnels.items():
            xs = [i for i, st in enumerate(stages) if st in f]
            ax.plot(xs, [max(f[stages[i]], 0.8) for i in xs], marker="o", label=f"{n} ({f['dedup']:,} released)")
        ax.set_xticks(range(len(stages)), [("dedup = released" if st == "dedup" else st) for st in stages])
        ax.set_yscale("log")
        ax.set_ylabel("documents remaining (log)")
        ax.legend(fontsize=7, loc="lower left")
        ax.set_title(f"{manifest['name']}: funnel per source")
        fig.tight_layout()
        fig.savefig(out / "funnel.png", dpi=110)
        plt.close(fig)

    if cats:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for ax, key in zip(axes, ("rows", "tokens")):
            ax.bar(list(cats), [c[key] for c in cats.values()], color="tab:blue")
            ax.set_title(f"{key} per category")
            total = sum(c[key] for c in cats.values()) or 1
            for i, c in enumerate(cats.values()):
                ax.annotate(f"{100 * c[key] / total:.1f}%", (i, c[key]), ha="center", va="bottom", fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "category_shares.png", dpi=110)
        plt.close(fig)

    if len(released):
        fig, ax = plt.subplots(figsize=(8, 3.6))
        bins = np.logspace(np.log10(max(1, released["content_chars"].min())),
                           np.log10(max(10, released["content_chars"].max())), 40)
        for cat, g in released.groupby("category"):
            ax.hist(g["content_chars"], bins=bins, histtype="step", label=f"{cat} ({len(g):,})")
        ax.set_xscale("log")
        ax.set_xlabel("characters per document")
        ax.set_ylabel("documents")
        ax.legend(fontsize=8)
        ax.set_title("document lengths per category")
        fig.tight_layout()
        fig.savefig(out / "length_histograms.png", dpi=110)
        plt.close(fig)

    lines = [f"# Release {manifest['name']}", "",
             f"Created {manifest['created_at']} by telelake {manifest['code_version']}; config hash "
             f"`{manifest['config_hash']}`; content hash `{manifest['content_hash'][:16]}…`.", "",
             "| table | version | rows | files | MB |", "|---|---:|---:|---:|---:|"]
    for t, e in manifest["tables"].items():
        lines.append(f"| {t} | {e['version']} | {e['rows']:,} | {len(e['files'])} | {e['bytes'] / 1e6:.2f} |")
    lines += ["", f"## Tele-Data by category (paper Table I; tokens: {manifest.get('tokenizer')})", "",
              "| category | documents | text MB | tokens | share of tokens |", "|---|---:|---:|---:|---:|"]
    total = sum(c["tokens"] for c in cats.values()) or 1
    for cat, c in cats.items():
        lines.append(f"| {cat} | {c['rows']:,} | {c['chars'] / 1e6:.3f} | {c['tokens']:,} | {100 * c['tokens'] / total:.1f}% |")
    lines.append(f"| **total** | {sum(c['rows'] for c in cats.values()):,} | "
                 f"{sum(c['chars'] for c in cats.values()) / 1e6:.3f} | {total:,} | 100% |")
    if funnels:
        stages = [st for st in FUNNEL_STAGES if any(st in f for f in funnels.values())]
        lines += ["", "## Funnel per source", "", "Documents remaining after each stage the source goes through "
                  "(`sample`: the general replay sample; `dedup`: released).", "", "| source | " + " | ".join(stages) + " |", "|---|" + "---:|" * len(stages)]
        for n, f in funnels.items():
            lines.append(f"| {n} | " + " | ".join(f"{f[s]:,}" if s in f else "–" for s in stages) + " |")
        lines += ["", "![funnel](funnel.png)"]
    te = _tele_eval_funnel(manifest)
    if te:
        lines += ["", "## Tele-Eval funnel", "", "Generated pairs remaining after each filter (the filtering run's "
                  "report has every filter's count).", "", "| " + " | ".join(te) + " |", "|" + "---:|" * len(te),
                  "| " + " | ".join(f"{v:,}" for v in te.values()) + " |"]
    for table, groups in manifest.get("contents", {}).items():
        lines += ["", f"## {table}", "", "| group | rows |", "|---|---:|"]
        lines += [f"| {g} | {n:,} |" for g, n in sorted(groups.items())]
    lines += ["", "## Data-quality suites", "", "| suite | table version | expectations | passed | Data Docs |",
              "|---|---:|---:|---|---|"]
    for s in manifest["suites"]:
        lines.append(f"| {s['suite']} | {s['version']} | {s['evaluated']} | {'yes' if s['success'] else 'NO'} | "
                     f"[{s['data_docs'] or '–'}](../{s['data_docs']}) |")
    if cats:
        lines += ["", "![category shares](category_shares.png)"]
    if len(released):
        lines += ["", "![length histograms](length_histograms.png)"]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return f"{out.name}/report.md"
