"""`telelake clean measure`: the cleanliness measure over a random sample of silver.cleaned.

The sample is drawn on the driver (seeded) from the kept rows of the configured sources; the raw
side of each document is rebuilt from bronze: an arXiv source's .tex files as they came (main file
first), a 3GPP document converted by pandoc with nothing removed. Writes report.md, metrics.json
and the histogram PNGs to `out`.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.progress import Progress

from pipelines import lake
from pipelines.latex.flatten import TEX_EXTENSIONS, decode
from pipelines.llm.models import ModelSpec, resolve
from pipelines.sources.measure import ReferenceLM, TailStats, fmt, plot_tails, tail_stats
from pipelines.standards.clean import ConvertLimits, raw_latex
from pipelines.standards.package import WordFile
from schemas import CLEANED, sources_table


@dataclass(frozen=True, kw_only=True)
class MeasureSpec:
    sources: list[str] = field(default_factory=lambda: ["arxiv", "standards"])
    """Sources in silver.cleaned to sample (those present are used)."""
    sample: int = 50
    """Documents sampled (the paper: 500 arXiv papers; 50 keeps a CPU run to minutes)."""
    seed: int = 0
    chunk_tokens: int = 1024
    """T: the paper uses 1024, GPT-2's context."""
    max_tokens_per_doc: int = 16384
    quantile: float = 0.9
    model: ModelSpec = field(default_factory=ModelSpec)
    batch_size: int = 4
    out: str = "reports/cleanliness"


@dataclass
class MeasureResult:
    raw: TailStats
    cleaned: TailStats
    documents: int
    report: Path
    plots: list[str]


def raw_text(category: str, files: dict[str, bytes], main: str | None) -> str:
    """The document before cleaning, from its bronze files (`main`: the main file cleaning found)."""
    if category == "standard":
        [(name, data)] = files.items()
        return raw_latex(WordFile(name, "doc" if name.lower().endswith(".doc") else "docx", data), ConvertLimits())
    tex = sorted((p for p in files if p.lower().endswith(TEX_EXTENSIONS)), key=lambda p: (p != main, p))
    return "\n".join(decode(files[p]) for p in tex)


def run_measure(cfg: lake.LakeConfig, spec: MeasureSpec) -> MeasureResult:
    if lake.open_table(cfg, CLEANED.name) is None:
        raise LookupError(f"{CLEANED.name} does not exist in {cfg.root}; run `telelake clean latex|standards` first")
    cleaned = lake.read_arrow(cfg, CLEANED.name, columns=["doc_id", "source", "verdict", "text", "metadata"])
    cleaned = cleaned.filter(pc.and_(pc.is_in(cleaned["source"], pa.array(spec.sources)),
                                     pc.equal(cleaned["verdict"], "keep")))
    rows = cleaned.to_pylist()
    if not rows:
        raise LookupError(f"no kept rows of sources {spec.sources} in {CLEANED.name}")
    rows = sorted(random.Random(spec.seed).sample(rows, min(spec.sample, len(rows))), key=lambda r: r["doc_id"])
    bronze: dict[str, dict] = {}
    for source in sorted({r["source"] for r in rows}):
        t = lake.read_arrow(cfg, sources_table(source), columns=["doc_id", "category", "files"])
        t = t.filter(pc.is_in(t["doc_id"], pa.array([r["doc_id"] for r in rows if r["source"] == source])))
        bronze.update({b["doc_id"]: b for b in t.to_pylist()})
    lm = ReferenceLM(resolve(spec.model, chat=False).path, batch_size=spec.batch_size)
    raw_losses, clean_losses, n_raw, n_clean = [], [], 0, 0
    with Progress() as progress:
        bar = progress.add_task("cleanliness: scoring raw and cleaned text", total=len(rows))
        for r in rows:
            b = bronze[r["doc_id"]]
            main = json.loads(r["metadata"]).get("cleaning", {}).get("main")
            raw = raw_text(b["category"], {f["path"]: f["data"] for f in b["files"]}, main)
            rc = lm.chunks(raw, spec.chunk_tokens, spec.max_tokens_per_doc)
            cc = lm.chunks(r["text"], spec.chunk_tokens, spec.max_tokens_per_doc)
            raw_losses.append(lm.token_losses(rc))
            clean_losses.append(lm.token_losses(cc))
            n_raw, n_clean = n_raw + len(rc), n_clean + len(cc)
            progress.advance(bar)
    raw = np.concatenate(raw_losses)
    clean = np.concatenate(clean_losses)
    rs, cs = tail_stats(raw, n_raw, spec.quantile), tail_stats(clean, n_clean, spec.quantile)
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    plots = plot_tails(raw, clean, rs, cs, out)
    metrics = {"documents": len(rows), "sources": spec.sources, "model": spec.model.path, "T": spec.chunk_tokens,
               "quantile": spec.quantile, "raw": rs.to_dict(), "cleaned": cs.to_dict()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    q = int(spec.quantile * 100)
    lines = [f"# Cleanliness: raw vs cleaned ({len(rows)} documents of {', '.join(spec.sources)})", "",
             f"Reference LM `{spec.model.path}`, non-overlapping chunks of T = {spec.chunk_tokens} tokens "
             f"(at most {spec.max_tokens_per_doc:,} tokens a document), per-token cross-entropy in nats. "
             f"τ is each set's {q}th percentile; the tail is the tokens at or above it (paper eq. 4).", "",
             "| set | chunks | tokens | mean (all) | τ | tail tokens | tail mean | tail std |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in (("raw", rs), ("cleaned", cs)):
        lines.append(f"| {name} | {s.chunks:,} | {s.tokens:,} | {fmt(s.mean_all)} | {fmt(s.tau)} | {s.tail_tokens:,} | "
                     f"{fmt(s.tail_mean)} | {fmt(s.tail_std)} |")
    verdict = ("cleaner: lower tail mean and narrower spread" if cs.tail_mean < rs.tail_mean and cs.tail_std < rs.tail_std
               else "NOT clearly cleaner: the cleaned tail is not both lower and narrower")
    lines += ["", f"Result: {verdict}.", ""] + [f"![{p}]({p})" for p in plots]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return MeasureResult(raw=rs, cleaned=cs, documents=len(rows), report=report, plots=plots)
