#!/usr/bin/env python
"""datatrove (0.10.1) MinHash near-duplicate dedup, timed stage by stage, with process-tree peak RSS.

    python datatrove_minhash.py --input DIR/jsonl --work WORKDIR --tasks T --workers W \
        [--tokenizer auto|spacy|split] [--hash auto|xxhash|sha1] [--precision 64|32] \
        [--ground-truth DIR/ground_truth.parquet] [--json-out result.json]

Stages (each its own LocalPipelineExecutor, run one after the other and timed separately):
  1 JsonlReader -> MinhashDedupSignature           tasks=T      (one task per group of input files)
  2 MinhashDedupBuckets                             tasks=14     (must be a multiple of num_buckets)
  3 MinhashDedupCluster                             tasks=1      (datatrove asserts world_size == 1)
  4 JsonlReader -> MinhashDedupFilter -> JsonlWriter tasks=T      (must equal stage 1's T: the .remove
                                                                   files are indexed by stage-1 rank)
Defaults reproduce datatrove's own (FineWeb) defaults: 5-gram word shingles, 14 buckets x 8 hashes,
seed 1, TextNormConfig() normalisation, 64-bit xxhash shingle hashes, spaCy blank-English word
tokenizer -- when `spacy` and `xxhash` are importable (they are NOT in /work/main/.venv; see NOTES.md).
`--tokenizer split` (str.split on the normalised text) and `--hash sha1` need no extra packages.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import sys
import threading
import time
from collections import defaultdict

import psutil
from datatrove.utils.word_tokenizers import WordTokenizer


class SplitTokenizer(WordTokenizer):
    """Whitespace split. MinhashDedupSignature tokenizes simplify_text() output, which is already
    lower-cased, punctuation-free and whitespace-normalised, so this is a plain word split.
    (datatrove's own WhitespaceTokenizer is NOT dependency-free: it delegates to spaCy 'xx'.)"""

    def __init__(self):
        super().__init__("split")

    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [text] if text.strip() else []

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))] if text else []


# ------------------------------------------------------------------------------------ memory sampler
class TreeSampler:
    """Samples RSS of this process + all descendants (recursive) every `interval` s in a thread.
    Tracks: peak of the SUM over the tree, peak of any single process, and CPU seconds (user+sys) of
    every process seen (last sample per pid; a process's final < interval s is missed)."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.root = psutil.Process(os.getpid())
        self.peak_sum = 0
        self.peak_single = 0
        self.cpu_by_pid: dict[tuple[int, float], float] = {}
        self.hwm_by_pid: dict[tuple[int, float], int] = {}   # kernel VmHWM (exact per-process peak RSS)
        self.max_procs = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._lock = threading.Lock()
        self._mark = {"sum": 0, "single": 0}

    def _sample(self):
        try:
            procs = [self.root] + self.root.children(recursive=True)
        except psutil.Error:
            return
        tot = 0
        n = 0
        for p in procs:
            try:
                with p.oneshot():
                    rss = p.memory_info().rss
                    ct = p.cpu_times()
                    key = (p.pid, p.create_time())
            except psutil.Error:
                continue
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.hwm_by_pid[key] = int(line.split()[1]) * 1024
                            break
            except OSError:
                pass
            n += 1
            tot += rss
            self.cpu_by_pid[key] = ct.user + ct.system
            self.peak_single = max(self.peak_single, rss)
            self._mark["single"] = max(self._mark["single"], rss)
        self.peak_sum = max(self.peak_sum, tot)
        self._mark["sum"] = max(self._mark["sum"], tot)
        self.max_procs = max(self.max_procs, n)

    def _loop(self):
        while not self._stop.is_set():
            with self._lock:
                self._sample()
            self._stop.wait(self.interval)

    def start(self):
        self._t.start()
        return self

    def mark(self) -> dict:
        """Peaks since the previous mark (per-stage peaks)."""
        with self._lock:
            self._sample()
            m = dict(self._mark)
            self._mark = {"sum": 0, "single": 0}
        return m

    def cpu_seconds(self) -> float:
        with self._lock:
            return sum(self.cpu_by_pid.values())

    def stop(self):
        self._stop.set()
        self._t.join()
        self._sample()


# ----------------------------------------------------------------------------------------- helpers
def _machine_cpu() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, steal seconds) since boot."""
    ct = psutil.cpu_times()
    busy = ct.user + ct.nice + ct.system + getattr(ct, "irq", 0) + getattr(ct, "softirq", 0)
    return busy, getattr(ct, "steal", 0.0)


def _resolve_tokenizer(name: str):
    if name == "auto":
        try:
            import spacy  # noqa: F401
            name = "spacy"
        except ImportError:
            name = "split"
    if name == "spacy":
        return "en", "spacy-blank-en (datatrove default for language='en': SpaCyTokenizer('en'))"
    if name == "split":
        return SplitTokenizer(), "split (str.split on simplify_text output)"
    raise ValueError(name)


def _resolve_hash(name: str):
    if name == "auto":
        try:
            import xxhash  # noqa: F401
            name = "xxhash"
        except ImportError:
            name = "sha1"
    return name


def _stage_stats(logging_dir: str) -> list[dict]:
    with open(os.path.join(logging_dir, "stats.json")) as f:
        return json.load(f)


def _stat(stats: list[dict], block_name_part: str, key: str) -> int:
    for s in stats:
        if block_name_part in s["name"] and key in s["stats"]:
            v = s["stats"][key]
            return int(v["total"] if isinstance(v, dict) else v)
    return 0


# -------------------------------------------------------------------------------------------- main
def run_datatrove(jsonl_dir: str, work_dir: str, *, tasks: int, workers: int, n_grams: int = 5,
                  buckets: int = 14, hashes_per_bucket: int = 8, seed: int = 1, tokenizer: str = "auto",
                  hash_fc: str = "auto", precision: int = 64, bucket_tasks: int | None = None,
                  start_method: str = "forkserver", clean: bool = True, sample_interval: float = 0.2) -> dict:
    """Run datatrove's 4-stage MinHash dedup on the *.jsonl files of `jsonl_dir`; outputs under work_dir.

    Returns wall seconds per stage and total, docs in / kept / removed, peak RSS (bytes; peak of the
    summed RSS of this process and all its descendants, sampled), per-stage peaks and the configuration.
    """
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                                  MinhashDedupFilter, MinhashDedupSignature)
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.text import TextNormConfig

    jsonl_dir = os.path.abspath(jsonl_dir)
    work_dir = os.path.abspath(work_dir)
    if clean and os.path.exists(work_dir):
        shutil.rmtree(work_dir)            # executors skip "completed" ranks found in the logging dirs
    os.makedirs(work_dir, exist_ok=True)
    n_files = len([f for f in os.listdir(jsonl_dir) if f.endswith(".jsonl")])
    if n_files < tasks:
        raise ValueError(f"{tasks=} > {n_files} input files: datatrove shards by file, extra tasks get nothing")
    bucket_tasks = bucket_tasks or buckets
    if bucket_tasks % buckets:
        raise ValueError("bucket_tasks must be a multiple of buckets")

    lang_or_tok, tok_desc = _resolve_tokenizer(tokenizer)
    hash_fc = _resolve_hash(hash_fc)
    config = MinhashConfig(n_grams=n_grams, num_buckets=buckets, hashes_per_bucket=hashes_per_bucket, seed=seed,
                           norm_config=TextNormConfig(), hash_config=HashConfig(precision=precision, hash_fc=hash_fc))
    p = lambda *a: os.path.join(work_dir, *a)  # noqa: E731

    def reader(**kw):
        return JsonlReader(jsonl_dir, glob_pattern="*.jsonl", compression=None, text_key="text", id_key="id", **kw)

    stages = {
        "1_signatures": LocalPipelineExecutor(
            [reader(), MinhashDedupSignature(output_folder=p("signatures"), config=config, language=lang_or_tok)],
            tasks=tasks, workers=workers, logging_dir=p("logs", "1_signatures"), start_method=start_method),
        "2_buckets": LocalPipelineExecutor(
            [MinhashDedupBuckets(input_folder=p("signatures"), output_folder=p("buckets"), config=config)],
            tasks=bucket_tasks, workers=workers, logging_dir=p("logs", "2_buckets"), start_method=start_method),
        "3_cluster": LocalPipelineExecutor(
            [MinhashDedupCluster(input_folder=p("buckets"), output_folder=p("remove_ids"), config=config)],
            tasks=1, workers=1, logging_dir=p("logs", "3_cluster")),
        "4_filter": LocalPipelineExecutor(
            [reader(add_file_path=False),
             MinhashDedupFilter(input_folder=p("remove_ids"),
                                exclusion_writer=JsonlWriter(p("removed"), compression=None)),
             JsonlWriter(p("deduplicated"), compression=None)],
            tasks=tasks, workers=workers, logging_dir=p("logs", "4_filter"), start_method=start_method),
    }

    sampler = TreeSampler(sample_interval).start()
    res: dict = {"stage_seconds": {}, "stage_peak_rss_bytes": {}, "stage_cpu_seconds": {},
                 "stage_foreign_cpu_seconds": {}}
    busy_all, steal_all = _machine_cpu()
    t_all = time.perf_counter()
    try:
        for name, ex in stages.items():
            sampler.mark()
            cpu0 = sampler.cpu_seconds()
            busy0, _ = _machine_cpu()
            t0 = time.perf_counter()
            ex.run()
            res["stage_seconds"][name] = round(time.perf_counter() - t0, 3)
            m = sampler.mark()
            own = sampler.cpu_seconds() - cpu0
            res["stage_cpu_seconds"][name] = round(own, 2)
            res["stage_foreign_cpu_seconds"][name] = round(max(0.0, _machine_cpu()[0] - busy0 - own), 2)
            res["stage_peak_rss_bytes"][name] = m["sum"]
    finally:
        total = time.perf_counter() - t_all
        sampler.stop()
        busy_end, steal_end = _machine_cpu()

    s1 = _stage_stats(p("logs", "1_signatures"))
    s4 = _stage_stats(p("logs", "4_filter"))
    docs_in = _stat(s1, "Jsonl", "documents")
    kept = _stat(s4, "stage 4", "forwarded")
    removed = _stat(s4, "stage 4", "dropped")
    cores = min(workers, os.cpu_count() or 1)
    res.update({
        "total_seconds": round(total, 3),
        "docs_in": docs_in, "docs_kept": kept, "docs_removed": removed,
        "docs_per_s": round(docs_in / total, 1),
        "docs_per_s_per_core": round(docs_in / total / cores, 1),
        "peak_rss_bytes": sampler.peak_sum,
        "peak_rss_single_process_bytes": sampler.peak_single,
        # kernel high-water mark (VmHWM, exact, not sampled) of the largest single process
        "peak_hwm_single_process_bytes": max(sampler.hwm_by_pid.values(), default=0),
        "sample_interval_s": sample_interval,
        "max_processes_seen": sampler.max_procs,
        "cpu_seconds_sampled": round(sampler.cpu_seconds(), 2),
        # CPU used on the machine by processes NOT in our tree during the run (other jobs): should be ~0
        # for a clean measurement; steal = time the hypervisor took from this VM.
        "foreign_cpu_seconds": round(max(0.0, busy_end - busy_all - sampler.cpu_seconds()), 2),
        "steal_seconds": round(steal_end - steal_all, 2),
        "load_avg_1m_at_end": os.getloadavg()[0],
        "stage_docs": {"signatures_written": _stat(s1, "stage 1", "total"),
                       "duplicate_pairs": _stat(_stage_stats(p("logs", "2_buckets")), "stage 2", "total_matches"),
                       "docs_in_clusters": _stat(_stage_stats(p("logs", "3_cluster")), "stage 3", "duplicates"),
                       "to_remove": _stat(_stage_stats(p("logs", "3_cluster")), "stage 3", "to_remove")},
        "config": {"tasks": tasks, "workers": workers, "bucket_tasks": bucket_tasks, "cores": cores,
                   "n_grams": n_grams, "buckets": buckets, "hashes_per_bucket": hashes_per_bucket, "seed": seed,
                   "tokenizer": tok_desc, "hash_fc": hash_fc, "precision": precision,
                   "norm_config": vars(TextNormConfig()), "start_method": start_method,
                   "datatrove": importlib.metadata.version("datatrove"), "python": sys.executable,
                   "input": jsonl_dir, "work": work_dir},
    })
    return res


# ------------------------------------------------------------------------------------- evaluation
def _rank_doc_ids(jsonl_dir: str, tasks: int) -> dict[int, list[str]]:
    """(stage-1 rank) -> ids in the order MinhashDedupSignature numbered them (doc_idx)."""
    import orjson
    from datatrove.io import get_datafolder
    df = get_datafolder(os.path.abspath(jsonl_dir))
    out = {}
    for rank in range(tasks):
        ids = []
        for f in df.get_shard(rank, tasks, recursive=True, glob_pattern="*.jsonl") or []:
            with df.open(f, "rb") as fh:
                for line in fh:
                    d = orjson.loads(line)
                    if d.get("text"):
                        ids.append(d["id"])
        out[rank] = ids
    return out


def _read_ids(folder: str) -> set[str]:
    import orjson
    ids = set()
    if not os.path.isdir(folder):
        return ids
    for f in sorted(os.listdir(folder)):
        if f.endswith(".jsonl"):
            with open(os.path.join(folder, f), "rb") as fh:
                ids.update(orjson.loads(line)["id"] for line in fh)
    return ids


def evaluate(jsonl_dir: str, work_dir: str, ground_truth: str, tasks: int, buckets: int = 14,
             hashes_per_bucket: int = 8) -> dict:
    """Compare datatrove's decisions with the planted duplicates of corpus.py.

    * removed / kept ids: from work/removed and work/deduplicated.
    * datatrove's clusters: rebuilt from the stage-2 .dups pair files (union-find, like stage 3), mapped
      back to document ids by replaying the stage-1 reader order.
    A planted copy d of source s is "caught" when datatrove put d and s in the same cluster (then exactly one
    member of that cluster is kept, not necessarily the original).
    """
    import struct

    import numpy as np
    import pyarrow.parquet as pq

    gt = pq.read_table(ground_truth).to_pandas()
    removed = _read_ids(os.path.join(work_dir, "removed"))
    kept = _read_ids(os.path.join(work_dir, "deduplicated"))
    rank_ids = _rank_doc_ids(jsonl_dir, tasks)

    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    bdir = os.path.join(work_dir, "buckets")
    n_pairs = 0
    for f in sorted(os.listdir(bdir)):
        if not f.endswith(".dups"):
            continue
        data = open(os.path.join(bdir, f), "rb").read()
        for f1, d1, f2, d2 in struct.iter_unpack("<4I", data):
            a, b = rank_ids[f1][d1], rank_ids[f2][d2]
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[ra] = rb
            n_pairs += 1

    ids = gt["id"].to_numpy()
    root = np.array([find(i) if i in parent else i for i in ids], dtype=object)
    gt["dt_cluster"] = root
    gt["removed"] = gt["id"].isin(removed)
    gt["kept"] = gt["id"].isin(kept)
    # ground-truth group: an original and all its copies
    gt["gt_group"] = np.where(gt["dup_of"].isna(), gt["id"], gt["dup_of"])
    id2root = dict(zip(ids, root))
    dups = gt[gt["kind"] != "original"].copy()
    dups["caught"] = [id2root[d] == id2root[s] for d, s in zip(dups["id"], dups["dup_of"])]

    out: dict = {"docs_gt": len(gt), "docs_kept": len(kept), "docs_removed": len(removed),
                 "kept_plus_removed_equals_in": len(kept) + len(removed) == len(gt),
                 "dup_pairs_in_dups_files": n_pairs}
    for kind in ("exact", "near"):
        d = dups[dups["kind"] == kind]
        out[f"{kind}_planted"] = len(d)
        out[f"{kind}_caught_recall"] = round(float(d["caught"].mean()), 4) if len(d) else None
        out[f"{kind}_removed_frac"] = round(float(d["removed"].mean()), 4) if len(d) else None
    ex = dups[dups["kind"] == "exact"]
    out["exact_recall_by_variant"] = {v: round(float(g["caught"].mean()), 4) for v, g in ex.groupby("variant")}
    # near-dup recall by 5-gram Jaccard bin vs the LSH S-curve 1-(1-J^r)^b
    nd = dups[dups["kind"] == "near"]
    bins = np.arange(0.50, 0.951, 0.05)
    curve = {}
    for lo, hi in zip(bins[:-1], bins[1:]):
        g = nd[(nd["jaccard_5gram"] >= lo) & (nd["jaccard_5gram"] < hi)]
        if len(g):
            jm = float(g["jaccard_5gram"].mean())
            curve[f"{lo:.2f}-{hi:.2f}"] = {"n": len(g), "recall": round(float(g["caught"].mean()), 4),
                                          "lsh_theory_at_mean_J": round(1 - (1 - jm ** hashes_per_bucket) ** buckets, 4)}
    out["near_recall_by_jaccard"] = curve
    # ideal: every ground-truth group keeps exactly one document
    grp = gt.groupby("gt_group").agg(size=("id", "size"), kept=("kept", "sum"))
    multi = grp[grp["size"] > 1]
    out["gt_groups_with_copies"] = len(multi)
    out["gt_groups_fully_resolved_frac"] = round(float((multi["kept"] == 1).mean()), 4) if len(multi) else None
    out["excess_kept_docs"] = int((multi["kept"] - 1).clip(lower=0).sum())
    # which member survives: datatrove keeps the union-find root, not necessarily the earliest document
    orig = gt[(gt["kind"] == "original") & (gt["n_copies"] > 0)]
    out["originals_with_copies_kept_frac"] = round(float(orig["kept"].mean()), 4) if len(orig) else None
    out["ideal_removed"] = int((grp["size"] - 1).sum())
    # false positives
    unique = gt[(gt["kind"] == "original") & (gt["n_copies"] == 0)]
    out["unique_docs"] = len(unique)
    out["unique_docs_removed"] = int(unique["removed"].sum())
    out["unique_docs_false_removal_rate"] = round(float(unique["removed"].mean()), 6)
    roots_groups = gt.groupby("dt_cluster")["gt_group"].nunique()
    out["dt_clusters_mixing_gt_groups"] = int((roots_groups > 1).sum())
    out["dt_clusters"] = int(gt.groupby("dt_cluster")["id"].size().gt(1).sum())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, help="folder of *.jsonl files (corpus.py's DIR/jsonl)")
    ap.add_argument("--work", required=True, help="work/output folder (deleted first)")
    ap.add_argument("--tasks", type=int, required=True, help="stage 1/4 tasks (<= number of input files)")
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--n-grams", type=int, default=5)
    ap.add_argument("--buckets", type=int, default=14)
    ap.add_argument("--hashes-per-bucket", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tokenizer", default="auto", choices=["auto", "spacy", "split"])
    ap.add_argument("--hash", default="auto", choices=["auto", "xxhash", "sha1"])
    ap.add_argument("--precision", type=int, default=64, choices=[32, 64])
    ap.add_argument("--bucket-tasks", type=int, default=None, help="stage 2 tasks (multiple of --buckets)")
    ap.add_argument("--ground-truth", default=None,
                    help="corpus.py ground_truth.parquet (default: INPUT/../ground_truth.parquet if present)")
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()

    res = run_datatrove(a.input, a.work, tasks=a.tasks, workers=a.workers, n_grams=a.n_grams, buckets=a.buckets,
                        hashes_per_bucket=a.hashes_per_bucket, seed=a.seed, tokenizer=a.tokenizer, hash_fc=a.hash,
                        precision=a.precision, bucket_tasks=a.bucket_tasks)
    gt = a.ground_truth or os.path.join(os.path.dirname(os.path.abspath(a.input.rstrip("/"))), "ground_truth.parquet")
    if os.path.exists(gt):
        t0 = time.perf_counter()
        res["eval"] = evaluate(a.input, a.work, gt, a.tasks, a.buckets, a.hashes_per_bucket)
        res["eval"]["eval_seconds"] = round(time.perf_counter() - t0, 2)
    txt = json.dumps(res, indent=2, default=str)
    print(txt)
    if a.json_out:
        with open(a.json_out, "w") as f:
            f.write(txt)


if __name__ == "__main__":
    sys.exit(main())
