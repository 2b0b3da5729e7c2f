"""Data-quality gate on a 1M-row gold table: Spark profile, then the great-expectations suites in pandas.

    .venv/bin/python benchmarks/release_gate.py --rows 1000000 --workers 2

Writes a synthetic gold.tele_data (four categories, 300-3,000 character documents, valid public
metadata) with delta-rs, then times `validate_table` split into its two parts: the profile (Spark
tasks read the table and reduce each row to small columns) and the suites (two checkpoints with
Data Docs). Reports seconds, rows/s and peak RSS of the process tree.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from keyword_throughput import PeakRSS  # noqa: E402

from pipelines import lake  # noqa: E402
from pipelines.lake.storage import table_uri  # noqa: E402
from schemas import TELE_DATA  # noqa: E402

CATS = ["arxiv", "standard", "wiki", "web"]
META = {"arxiv": '{"Abstract":"a","Arxiv_id":"2401.00001","Title":"t"}', "standard": '{"File_name":"38331-i40",'
        '"Release":"18","Series":"38"}', "wiki": '{"Title":"t","Url":"u"}', "web": '{"Url":"u"}'}


def build_table(cfg: lake.LakeConfig, rows: int, seed: int = 0) -> None:
    from deltalake import write_deltalake

    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(20_000)])
    now = dt.datetime.now(dt.timezone.utc)
    for start in range(0, rows, 100_000):
        n = min(100_000, rows - start)
        cats = rng.choice(CATS, n, p=[0.05, 0.05, 0.02, 0.88])
        lens = rng.integers(50, 500, n)
        pool = words[rng.integers(0, len(words), int(lens.sum()))]
        offsets = np.concatenate([[0], np.cumsum(lens)])
        content = [" ".join(pool[offsets[i]:offsets[i + 1]]) for i in range(n)]
        counters = {c: 0 for c in CATS}
        ids = []
        for c in cats:
            counters[c] += 1
            ids.append(f"{c}_{start + counters[c]}")
        table = pa.table({"id": ids, "category": cats, "content": content, "metadata": [META[c] for c in cats],
                          "doc_id": [f"{start + i:032x}" for i in range(n)], "source": cats,
                          "content_chars": pa.array([len(x) for x in content], pa.int64()),
                          "tokens": pa.array(lens, pa.int64()), "lineage": ["{}"] * n, "assembly": ["bench"] * n,
                          "assembled_at": pa.array([now] * n, pa.timestamp("us", tz="UTC"))}, schema=TELE_DATA.schema)
        write_deltalake(table_uri(cfg, TELE_DATA.name), table, mode="append", partition_by=list(TELE_DATA.partition_by))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    from pipelines.quality.profile import aggregates, table_profile
    from pipelines.quality.suites import DEFAULT_RULES, row_expectations, table_expectations
    from pipelines.quality.validate import run_suites
    from pipelines.spark import SparkConfig, build_session

    work = Path(tempfile.mkdtemp(prefix="bench-gate-"))
    try:
        cfg = lake.LakeConfig(root=str(work / "lake"))
        t = time.perf_counter()
        build_table(cfg, args.rows)
        print(f"table: {args.rows:,} rows written in {time.perf_counter() - t:.0f} s", flush=True)
        spark = build_session(SparkConfig(master=f"local[{args.workers}]", driver_memory="6g", log_level="ERROR"),
                              "bench-gate")
        rules = DEFAULT_RULES[TELE_DATA.name]
        with PeakRSS() as rss:
            t0 = time.perf_counter()
            profile = table_profile(spark, cfg, TELE_DATA, lake.load(cfg, TELE_DATA.name).version())
            t1 = time.perf_counter()
            failed, evaluated, _ = run_suites(work / "docs", TELE_DATA.name, {
                "rows": (profile, row_expectations(TELE_DATA, rules)),
                "table": (aggregates(profile, tuple(rules.categories)), table_expectations(rules))})
            t2 = time.perf_counter()
        result = {"rows": len(profile), "profile_seconds": round(t1 - t0, 1), "suites_seconds": round(t2 - t1, 1),
                  "total_seconds": round(t2 - t0, 1), "rows_per_s": round(len(profile) / (t2 - t0)),
                  "expectations": evaluated, "failed": len(failed), "peak_rss_bytes": rss.peak,
                  "profile_bytes": int(profile.memory_usage(deep=True).sum())}
        print(json.dumps(result), flush=True)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(result, indent=1))
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
