"""MinHash near-duplicate dedup: telelake's Spark stage vs datatrove's four MinHash stages, same data, same cores.

    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python benchmarks/minhash_dedup.py --docs 1000000 --workers 2

Generates (once, under --data) a corpus of --docs documents (150-400 words, Zipfian vocabulary) with
10% planted exact copies (whitespace/case variants) and 10% near copies (3-5% of words edited),
written as JSONL and Parquet shards with the ground truth (benchmarks/minhash_corpus.py). Then, one
after the other on --workers cores, both with 5-gram shingles and 14 bands x 8 hashes (FineWeb):
  (a) telelake: Spark local[N] reads the Parquet shards, Python tasks compute content hash, MinHash
      signature and band keys (pipelines/dedup/stage.py: signature_columns), `dedup` clusters and keeps
      one copy per cluster; every verdict is collected.
  (b) datatrove: JsonlReader → MinhashDedupSignature → Buckets → Cluster → Filter → JsonlWriter
      (benchmarks/datatrove_minhash.py), its simple `split` word tokenizer and xxhash when installed.
Reports docs/s per core, peak RSS of each process tree, the ratio (a)/(b), and recall of the planted
duplicates and false removals for both.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from keyword_throughput import PeakRSS  # noqa: E402

from pipelines.dedup.minhash import MinHashParams  # noqa: E402
from pipelines.dedup.stage import SIGNATURE_FIELDS, DedupSpec, dedup, signature_columns  # noqa: E402


def ensure_corpus(data: Path, docs: int, shards: int) -> Path:
    out = data / f"c{docs}"
    if (out / "manifest.json").is_file():
        return out
    from minhash_corpus import generate

    t = time.perf_counter()
    generate(docs, shards, str(out))
    print(f"corpus: {docs:,} documents in {shards} shards generated in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def bench_telelake(corpus: Path, workers: int) -> tuple[dict, set[str]]:
    from pyspark.sql import functions as F

    from pipelines.lake.spark_types import spark_schema
    from pipelines.spark import SparkConfig, build_session

    spec = DedupSpec(minhash=MinHashParams(ngram=5, bands=14, rows=8, seed=1), keep_order=())
    out_schema = pa.schema([pa.field("doc_id", pa.string()), pa.field("source", pa.string()),
                            pa.field("category", pa.string()), pa.field("priority", pa.int32()),
                            pa.field("recency", pa.int64()), pa.field("chars", pa.int64()), *SIGNATURE_FIELDS])

    def signatures(batches):
        for b in batches:
            texts = b.column("text").to_pylist()
            n = len(texts)
            cols = [b.column("id"), pa.array(["bench"] * n), b.column("category"), pa.array(np.zeros(n, np.int32)),
                    pa.array(np.zeros(n, np.int64)), pa.array([len(t) for t in texts], pa.int64()),
                    *signature_columns(texts, spec.minhash)]
            yield pa.RecordBatch.from_arrays(cols, schema=out_schema)

    with PeakRSS() as rss:
        spark = build_session(SparkConfig(master=f"local[{workers}]", driver_memory="6g", log_level="ERROR",
                                          conf={"spark.sql.shuffle.partitions": str(4 * workers),
                                                "spark.sql.execution.arrow.maxRecordsPerBatch": "1024"}),
                              "bench-minhash")
        start = time.perf_counter()
        files = sorted(str(p) for p in (corpus / "parquet").glob("*.parquet"))
        docs = spark.read.parquet(*files).select("id", "text", "category")
        sigs = docs.mapInArrow(signatures, spark_schema(out_schema)).persist()
        n = sigs.count()
        t_sig = time.perf_counter() - start
        ledger = dedup(sigs, spec)
        removed = {r["doc_id"] for r in ledger.where(F.col("verdict") == "drop").select("doc_id").collect()}
        total = time.perf_counter() - start
        sigs.unpersist()
        spark.stop()
    return ({"docs": n, "seconds": round(total, 1), "signature_seconds": round(t_sig, 1),
             "docs_per_s_per_core": round(n / total / workers, 1), "removed": len(removed), "peak_rss_bytes": rss.peak},
            removed)


def quality(corpus: Path, removed: set[str]) -> dict:
    """Planted copies removed (or their original, when the copy was kept instead) and unique documents removed."""
    gt = pq.read_table(corpus / "ground_truth.parquet", columns=["id", "kind", "dup_of", "n_copies"]).to_pandas()
    gt["removed"] = gt["id"].isin(removed)
    out = {}
    for kind in ("exact", "near"):
        d = gt[gt["kind"] == kind]
        # a group {original, copies} should end with one document: count documents removed per group
        out[f"{kind}_planted"] = int(len(d))
        out[f"{kind}_removed"] = int(d["removed"].sum())
    groups = gt.assign(group=gt["dup_of"].fillna(gt["id"])).groupby("group").agg(size=("id", "size"),
                                                                                 removed=("removed", "sum"))
    multi = groups[groups["size"] > 1]
    out["groups_with_copies"] = int(len(multi))
    out["groups_left_with_one_copy"] = round(float((multi["size"] - multi["removed"] == 1).mean()), 4)
    unique = gt[(gt["kind"] == "original") & (gt["n_copies"] == 0)]
    out["unique_docs_removed"] = int(unique["removed"].sum())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--shards", type=int, default=0, help="default: 8 per worker")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data", default="bench_data/minhash")
    ap.add_argument("--skip-datatrove", action="store_true")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    corpus = ensure_corpus(Path(args.data), args.docs, args.shards or 8 * args.workers)

    ours, removed = bench_telelake(corpus, args.workers)
    ours["quality"] = quality(corpus, removed)
    print(f"telelake: {ours['docs']:,} docs in {ours['seconds']} s (signatures {ours['signature_seconds']} s) = "
          f"{ours['docs_per_s_per_core']:,} docs/s/core, peak RSS {ours['peak_rss_bytes'] / 2**30:.2f} GiB, "
          f"removed {ours['removed']:,}; {ours['quality']}", flush=True)
    result = {"docs": args.docs, "workers": args.workers, "telelake": ours}
    if not args.skip_datatrove:
        from datatrove_minhash import run_datatrove

        dt = run_datatrove(str(corpus / "jsonl"), str(Path(args.data) / "datatrove_work"), tasks=args.workers,
                           workers=args.workers, tokenizer="split", hash_fc="xxhash")
        from datatrove_minhash import _read_ids

        dt_removed = _read_ids(str(Path(args.data) / "datatrove_work" / "removed"))
        dt_summary = {"docs": dt["docs_in"], "seconds": dt["total_seconds"],
                      "docs_per_s_per_core": dt["docs_per_s_per_core"], "removed": dt["docs_removed"],
                      "peak_rss_bytes": dt["peak_rss_bytes"], "stage_seconds": dt["stage_seconds"],
                      "tokenizer": dt["config"]["tokenizer"], "hash": dt["config"].get("hash_fc"),
                      "quality": quality(corpus, dt_removed)}
        result["datatrove"] = dt_summary
        result["speed_ratio"] = round(ours["docs_per_s_per_core"] / dt_summary["docs_per_s_per_core"], 2)
        print(f"datatrove: {dt_summary['docs']:,} docs in {dt_summary['seconds']} s = "
              f"{dt_summary['docs_per_s_per_core']:,} docs/s/core, peak RSS {dt_summary['peak_rss_bytes'] / 2**30:.2f} GiB, "
              f"removed {dt_summary['removed']:,}; {dt_summary['quality']}", flush=True)
        print(f"telelake / datatrove speed: {result['speed_ratio']}x", flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    main()
