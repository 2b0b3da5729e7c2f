"""Cascade savings: LLM calls and recall of the distilled cascade against the judge alone, one run.

    .venv/bin/python benchmarks/cascade_savings.py --pages 2000 --sample 300

Builds a pool from real text on this machine: telecom pages made of TeleQnA, ORAN-Bench and
srsRANBench items (../shared/data/benchmarks) and software pages made of the docstrings of
Python's standard library and installed packages (sockets, HTTP, asyncio, email…: networking
words, not telecom). Both kinds are cut to the same length so that length tells the classifier
nothing. The pool is the whole bronze table (`judge.pool: all`): the telecom keyword filter
(run too, for the record) drops most software pages, which would leave the judge little to
separate.

(a) the judge alone over the whole pool: its model calls and docs/s; its p_yes against the page
    kinds (telecom or software) gives the threshold at which it finds 90% of the telecom pages;
(b) per threshold, `telelake cascade`: the judge labels a seeded sample, the classifier is trained
    on it, the pool is classified in Spark, the uncertain band goes to the judge. Its LLM
    judgements are counted as documents (sample + band beyond it); they come from the result
    store that (a) filled, which is the same output the model would give again;
(c) cascade keeps vs judge keeps over the whole pool: recall loss, precision, judgements saved;
(d) what-if over the same judged pool, no further LLM calls: the cascade's rule (`cascade.fit`)
    with other sample sizes, to show how savings grow with the sample;
(e) the same rule with the page kind standing in for the judge's labels: what the cascade saves
    when the judge's verdicts follow the topic (no LLM involved; not a judge measurement).
"""
from __future__ import annotations

import argparse
import inspect
import json
import pkgutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH = ROOT.parent / "shared" / "data" / "benchmarks"
SOFTWARE_PACKAGES = ["socket", "ssl", "http", "urllib", "email", "asyncio", "smtplib", "ftplib", "imaplib", "ipaddress",
                     "xmlrpc", "wsgiref", "selectors", "subprocess", "threading", "multiprocessing", "logging",
                     "json", "csv", "sqlite3", "decimal", "fractions", "statistics", "datetime", "calendar",
                     "collections", "itertools", "functools", "pathlib", "shutil", "tarfile", "zipfile", "gzip",
                     "pyarrow", "pandas", "numpy", "requests", "urllib3", "botocore", "boto3",
                     "matplotlib", "yaml", "rich", "jinja2", "werkzeug", "flask", "fsspec"]


def telecom_items() -> list[str]:
    items = []
    qna = json.loads((BENCH / "teleqna" / "TeleQnA.txt").read_text(encoding="utf-8"))
    for v in qna.values():
        answer = v.get("answer", "").split(":", 1)[-1].strip()
        items.append(f"{v['question']} {answer}. {v.get('explanation', '')}".strip())
    for path in sorted((BENCH / "oran-bench-13k").glob("fin_*.json")) + [BENCH / "srsranbench" / "srsRANBench.json"]:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                q, options, k = json.loads(line)
                items.append(f"{q} {options[int(k) - 1].split('. ', 1)[-1]}")
            except (ValueError, IndexError, TypeError):
                continue
    return items


def software_items() -> list[str]:
    """Docstrings of modules, classes and functions: real English technical prose, not telecom."""
    import importlib

    seen, items = set(), []
    warnings.simplefilter("ignore")
    for top in SOFTWARE_PACKAGES:
        try:
            pkg = importlib.import_module(top)
        except Exception:
            continue
        modules = [pkg]
        for info in pkgutil.iter_modules(getattr(pkg, "__path__", []), top + "."):  # one level: no test packages
            name = info.name.rsplit(".", 1)[-1]
            if len(modules) > 40 or name.startswith("_") or "test" in name:
                continue
            try:
                modules.append(importlib.import_module(info.name))
            except BaseException:  # noqa: BLE001 - some modules exit or fail on import; skip them
                continue
        for mod in modules:
            for obj in [mod] + [o for _, o in inspect.getmembers(mod) if inspect.isclass(o) or inspect.isfunction(o)]:
                doc = inspect.getdoc(obj) or ""
                doc = " ".join(doc.split())
                if len(doc) >= 150 and doc not in seen:
                    seen.add(doc)
                    items.append(doc)
    return items


def pages(items: list[str], n: int, chars: int, rng) -> list[str]:
    """Pages of about `chars` characters, each made of consecutive items from a random start."""
    out = []
    while len(out) < n:
        i, page = int(rng.integers(len(items))), ""
        while len(page) < chars:
            page += items[i % len(items)] + "\n"
            i += 1
        out.append(page[:chars])
    return out


def build_pool(work: Path, spark, n: int, chars: int, seed: int, base: dict) -> dict[str, str]:
    from jobs.ingest import IngestJobConfig
    from jobs.ingest import run as run_ingest
    from jobs.keyword_filter import KeywordJobConfig
    from jobs.keyword_filter import run as run_keywords
    from pipelines import config

    rng = np.random.default_rng(seed)
    docs = [("telecom", t) for t in pages(telecom_items(), n // 2, chars, rng)] + \
           [("software", t) for t in pages(software_items(), n - n // 2, chars, rng)]
    order = rng.permutation(len(docs))
    raw = work / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "pages.jsonl").write_text("".join(json.dumps({"id": f"p{i}", "text": docs[j][1]}) + "\n"
                                             for i, j in enumerate(order)), encoding="utf-8")
    run_ingest(config.from_dict(IngestJobConfig, {**base, "ingest": {
        "source": "bench", "category": "web", "format": "jsonl", "paths": [str(raw)]}}), spark)
    run_keywords(config.from_dict(KeywordJobConfig, {**base, "keywords": {
        "sources": ["bench"], "lexicon": str(ROOT / "conf" / "lexicon" / "telecom_v1.yaml")}}), spark)
    return {f"p{i}": docs[j][0] for i, j in enumerate(order)}


def what_if(texts: list[str], judge: np.ndarray, sizes: list[int], spec, seed: int) -> list[dict]:
    """The cascade's own rule (`cascade.fit`: split, train, band on held-out) on judged samples of
    other sizes, scored against the judge's verdicts on the whole pool; no LLM calls."""
    from pipelines.llm import distilled
    from pipelines.llm.cascade import fit

    rows = []
    for size in sizes:
        if size >= len(texts):
            continue
        sample = np.random.default_rng(seed).choice(len(texts), size, replace=False)
        try:
            model, band, *_ = fit([texts[i] for i in sample], [bool(judge[i]) for i in sample], spec,
                                  tempfile.mktemp(suffix=".bin"))
        except ValueError as exc:
            rows.append({"sample": size, "error": str(exc)})
            continue
        p = distilled.predict_yes(model, texts, spec.classifier.max_chars)
        in_band = (p >= band.lo) & (p < band.hi)
        in_band[sample] = False  # judged already
        keep = (p >= band.hi) | (in_band & judge)
        keep[sample] = judge[sample]
        calls = size + int(in_band.sum())
        share = float(in_band.sum()) / (len(texts) - size)  # of the documents outside the sample
        rows.append({"sample": size, "band": [round(band.lo, 4), round(band.hi, 4)], "calls": calls,
                     "savings": round(len(texts) / calls, 2), "band_share": round(share, 4),
                     # a pool of a million like this one: the same sample, the band at the same share
                     "projected_savings_1m": round(1e6 / (size + share * (1e6 - size)), 1),
                     "recall_loss": round(1 - float((keep & judge).sum() / judge.sum()), 4),
                     "precision": round(float((keep & judge).sum() / max(1, keep.sum())), 4), "note": band.note})
    return rows


def compare(cfg, c, threshold: float, kinds: dict[str, str], texts: dict[str, str], spec, seed: int) -> dict:
    """Cascade verdicts against the judge alone over the whole pool, at one threshold."""
    import pyarrow.compute as pc

    from pipelines import lake

    rel = {r["doc_id"]: r for r in lake.dataset(cfg, "silver.relevance").to_table(
        columns=["doc_id", "p_yes", "verdict"], filter=pc.field("threshold") == threshold).to_pylist()}
    cas = {r["doc_id"]: r["verdict"] for r in lake.dataset(cfg, "silver.cascade").to_table(
        columns=["doc_id", "verdict"], filter=pc.field("classifier_id") == c.classifier_id).to_pylist()}
    ids = sorted(set(rel) & set(cas))
    jk = np.array([rel[i]["verdict"] == "keep" for i in ids])
    ck = np.array([cas[i] == "keep" for i in ids])
    both = int((jk & ck).sum())
    calls = min(c.pool, spec.sample_size) + c.band_judged
    return {
        "threshold": threshold, "pool": c.pool, "judge_keep_share": round(float(jk.mean()), 3),
        "judge_keep_share_by_kind": {k: round(float(np.mean([jk[n] for n, i in enumerate(ids) if kinds[i] == k])), 3)
                                     for k in ("telecom", "software")},
        "cascade_llm_judgements": calls, "sample": min(c.pool, spec.sample_size), "band_beyond_sample": c.band_judged,
        "judge_alone_llm_judgements": len(ids), "savings": round(len(ids) / max(1, calls), 2),
        "band_share_beyond_sample": round(c.band_judged / max(1, c.pool - spec.sample_size), 3),
        "recall_loss_vs_judge": round(1 - both / max(1, int(jk.sum())), 4),
        "precision_vs_judge": round(both / max(1, int(ck.sum())), 4),
        "held_out_agreement": round(c.agreement, 3), "band_lo_hi": [round(c.band.lo, 4), round(c.band.hi, 4)],
        "what_if": what_if([texts[i] for i in ids], jk, [200, 400, 800, 1200, 1600], spec, seed),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2000, help="pages in the pool, half telecom, half software")
    ap.add_argument("--chars", type=int, default=700)
    ap.add_argument("--sample", type=int, default=300, help="cascade.sample_size")
    ap.add_argument("--thresholds", default="0.5,recall90",
                    help="judge thresholds; recall90: the one at which the judge finds 90%% of the telecom pages")
    ap.add_argument("--max-context", type=int, default=384)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None, help="lake folder (default: a new temporary one)")
    args = ap.parse_args()

    import pyarrow.compute as pc

    from eval.classification import evaluate
    from jobs.cascade import CascadeJobConfig
    from jobs.cascade import run as run_cascade
    from jobs.judge import run as run_judge
    from pipelines import config, lake
    from pipelines.spark import SparkConfig, build_session

    work = Path(args.work or tempfile.mkdtemp(prefix="telelake-cascade-bench-"))
    spark = build_session(SparkConfig(master=f"local[{args.workers}]", log_level="ERROR"), "bench-cascade")
    base = {"lake": {"root": str(work / "lake")}}
    by_source_id = build_pool(work, spark, args.pages, args.chars, args.seed, base)
    llm = {"kind": "transformers", "threads": 1, "max_context_tokens": args.max_context}

    def job(threshold: float) -> CascadeJobConfig:
        judge = {"sources": ["bench"], "pool": "all", "threshold": threshold, "run": {"commit_every": 128},
                 "prompts": str(ROOT / "conf" / "prompts" / "tele_llms_v1.yaml")}
        cascade = {"sample_size": args.sample, "seed": args.seed, "classifier": {"max_chars": args.chars}}
        return config.from_dict(CascadeJobConfig, {**base, "judge": judge, "llm": llm, "cascade": cascade,
                                                   "report_dir": str(work / "reports")})

    # (b) first: the judge alone over the whole pool fills the store; the cascades below reuse it
    t0 = time.perf_counter()
    (alone,) = run_judge(job(0.5), spark)
    judge_s = time.perf_counter() - t0
    cfg = job(0.5).lake
    docs = lake.dataset(cfg, "bronze.bench").to_table(columns=["doc_id", "source_id", "text"]).to_pylist()
    texts = {r["doc_id"]: r["text"] for r in docs}
    kinds = {r["doc_id"]: by_source_id[r["source_id"]] for r in docs}
    rel = lake.dataset(cfg, "silver.relevance").to_table(columns=["doc_id", "p_yes"],
                                                         filter=pc.field("threshold") == 0.5).to_pylist()
    scored = [(r["p_yes"], kinds[r["doc_id"]] == "telecom") for r in rel if r["p_yes"] is not None]
    kind_report = evaluate(np.array([p for p, _ in scored]), np.array([y for _, y in scored]), 0.5, 0.9)
    result = {"pool": len(rel), "judge_calls": alone.model_calls, "judge_s": round(judge_s, 1),
              "judge_docs_per_s": round(alone.model_calls / judge_s, 2),
              "judge_vs_kind_average_precision": round(kind_report.average_precision, 3),
              "judge_vs_kind_at_0.5": [round(kind_report.at_threshold.precision, 3),
                                       round(kind_report.at_threshold.recall, 3)], "runs": []}
    for t in args.thresholds.split(","):
        threshold = round(kind_report.at_target_recall.threshold, 4) if t == "recall90" else float(t)
        run_judge(job(threshold), spark)                   # verdicts at this threshold: all from the store
        (c,) = run_cascade(job(threshold), spark)          # (a) the cascade's judgements: from the store too
        result["runs"].append(compare(cfg, c, threshold, kinds, texts, job(threshold).cascade, args.seed))
    # (e) the same rule when the judge's labels follow the topic (page kind; no LLM): what a judge
    # that separates the topics would let the cascade save
    ids = sorted(texts)
    result["what_if_topical_judge"] = what_if([texts[i] for i in ids], np.array([kinds[i] == "telecom" for i in ids]),
                                              [200, 400, 800, 1200, 1600], job(0.5).cascade, args.seed)
    print(json.dumps(result, indent=2))
    (work / "result.json").write_text(json.dumps(result, indent=2))
    spark.stop()


if __name__ == "__main__":
    main()
