"""Keyword filter throughput: scan alone vs the whole telelake job vs a datatrove pipeline.

    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python benchmarks/keyword_throughput.py --size-gb 1.0 --workers 2

Builds a RefinedWeb-like corpus (or takes --corpus, a folder of Parquet files with a `text`
column) as a bronze Delta table, then measures side by side on the same cores:
  (a) the multi-pattern scan alone, one core, Hyperscan and Aho-Corasick;
  (b) the telelake keyword job: read bronze Parquet → verdicts → Delta commit (Spark local[N]);
  (c) datatrove: ParquetReader → the same filter → ParquetWriter, LocalPipelineExecutor, N workers.
Reports MB/s per core, (b)/(c), and peak RSS of each phase's process tree.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines import lake  # noqa: E402
from pipelines.demo.corpus import load_corpus  # noqa: E402
from pipelines.filters.keywords import Thresholds, decide, scan  # noqa: E402
from pipelines.filters.lexicon import load_lexicon  # noqa: E402
from pipelines.filters.matchers import AhoCorasickMatcher, HyperscanMatcher  # noqa: E402
from pipelines.lake.sink import SinkSpec, write_batches  # noqa: E402
from schemas import bronze_contract  # noqa: E402

LEXICON = ROOT / "conf" / "lexicon" / "telecom_v1.yaml"
COMMON = ("the of and to in is was for on that with as by at from his her it an are were be this which "
          "or had not but also its after first new two their one has have been city team river music film "
          "season school family war album game party county state played world government born church").split()


class PeakRSS:
    """Peak resident memory of this process and all its children, sampled every 0.2 s."""

    def __enter__(self):
        self.peak, self._stop = 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.2)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def build_corpus(lake_cfg, size_bytes: int, seed: int = 0) -> int:
    """bronze.bench: web-like documents, ~8% telecom (sentences from the demo corpus mixed in)."""
    rng = np.random.default_rng(seed)
    corpus = load_corpus()
    telecom = [p["text"] for p in corpus["wikipedia"][:5]] + [p["content"] for p in corpus["refinedweb"][:2]]
    words = np.array(COMMON)
    contract = bronze_contract("bench")
    spec = SinkSpec(table_uri=lake.table_uri(lake_cfg, contract.name), contract=contract, storage_options={})
    written, files, n = 0, [], 0
    now = pa.scalar(0, pa.timestamp("us", tz="UTC")).as_py()
    while written < size_bytes:
        rows = []
        for _ in range(2000):
            length = int(rng.integers(200, 1600))
            text = " ".join(words[rng.integers(0, len(words), length)])
            if rng.random() < 0.08:
                text += " " + telecom[int(rng.integers(0, len(telecom)))]
            n += 1
            rows.append({"doc_id": f"{n:032x}", "source": "bench", "category": "web", "source_id": None,
                         "url": f"https://site{n % 977}.example/{n}", "title": None, "text": text,
                         "text_chars": len(text), "metadata": "{}", "source_file": "synthetic",
                         "source_location": f"row={n}", "ingest_batch": "bench", "ingested_at": now})
            written += len(text)
        files += write_batches(spec, [pa.RecordBatch.from_pylist(rows, schema=contract.schema)])
    lake.commit_files(lake_cfg, contract, files, mode="append", batch=lake.Batch("bench.corpus", 1))
    return written


def bench_scan(lake_cfg, limit_bytes: int) -> dict:
    lex = load_lexicon(LEXICON)
    texts, total = [], 0
    for f in lake.data_files(lake_cfg, "bronze.bench"):
        for t in pq.read_table(f["uri"], columns=["text"]).column("text").to_pylist():
            texts.append(t)
            total += len(t)
            if total >= limit_bytes:
                break
        if total >= limit_bytes:
            break
    out = {}
    for cls, share in ((HyperscanMatcher, 1.0), (AhoCorasickMatcher, 0.05)):
        m = cls(lex)
        sub = texts[: max(1, int(len(texts) * share))]
        nbytes = sum(len(t) for t in sub)
        t0 = time.perf_counter()
        for t in sub:
            m.count(t)
        out[m.name] = nbytes / 1e6 / (time.perf_counter() - t0)
    return out


def bench_job(lake_cfg, workers: int) -> tuple[float, int]:
    from pipelines.filters.keyword_stage import KeywordSpec, run_keywords
    from pipelines.spark import SparkConfig, build_session

    spark = build_session(SparkConfig(master=f"local[{workers}]", driver_memory="4g", log_level="ERROR"), "bench")
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        (s,) = run_keywords(spark, lake_cfg, KeywordSpec(sources=["bench"], lexicon=str(LEXICON)))
        dt = time.perf_counter() - t0
    spark.stop()
    print(f"  job: {s.line()}")
    return dt, mem.peak


def bench_datatrove(lake_cfg, out_dir: Path, workers: int) -> tuple[float, int]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters.base_filter import BaseFilter
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter

    class KeywordFilter(BaseFilter):
        name = "telecom keywords"

        def __init__(self):
            super().__init__()
            self.lex, self.t, self.m = load_lexicon(LEXICON), Thresholds(), None

        def filter(self, doc):
            self.m = self.m or HyperscanMatcher(self.lex)
            verdict, reason = decide(scan(doc.text, doc.metadata.get("url"), self.lex, self.m), "web", self.t)
            return True if verdict == "keep" else (False, reason)

    data = Path(lake.table_uri(lake_cfg, "bronze.bench"))
    n_files = len(list(data.glob("*.parquet")))
    ex = LocalPipelineExecutor(pipeline=[ParquetReader(str(data), text_key="text", id_key="doc_id", glob_pattern="*.parquet"),
                                         KeywordFilter(), ParquetWriter(str(out_dir / "out"))],
                               tasks=n_files, workers=workers, logging_dir=str(out_dir / "logs"))
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        ex.run()
        dt = time.perf_counter() - t0
    return dt, mem.peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", default=None, help="keep the corpus here (default: a temp folder)")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="telelake-bench-"))
    cfg = lake.LakeConfig(root=str(work / "lake"))
    if lake.open_table(cfg, "bronze.bench") is None:
        t0 = time.perf_counter()
        size = build_corpus(cfg, int(args.size_gb * 1e9))
        print(f"corpus: {size / 1e6:,.0f} MB of text in {time.perf_counter() - t0:.0f} s at {work}")
    size = sum(pq.read_table(f["uri"], columns=["text_chars"]).column("text_chars").to_numpy().sum()
               for f in lake.data_files(cfg, "bronze.bench"))
    mb = size / 1e6
    scan_rates = bench_scan(cfg, limit_bytes=int(min(size, 300e6)))
    job_s, job_mem = bench_job(cfg, args.workers)
    shutil.rmtree(work / "dt", ignore_errors=True)
    dt_s, dt_mem = bench_datatrove(cfg, work / "dt", args.workers)
    w = args.workers
    print(f"\n| measure | MB/s per core | wall s | peak RSS GiB |\n|---|---|---|---|")
    for name, rate in scan_rates.items():
        print(f"| (a) scan alone, {name}, 1 core | {rate:,.0f} | | |")
    print(f"| (b) telelake keyword job, local[{w}] | {mb / job_s / w:,.1f} | {job_s:,.1f} | {job_mem / 2**30:.2f} |")
    print(f"| (c) datatrove, {w} workers | {mb / dt_s / w:,.1f} | {dt_s:,.1f} | {dt_mem / 2**30:.2f} |")
    print(f"\ncorpus {mb:,.0f} MB of text; (b)/(c) = {dt_s / job_s:.2f}x; cores {os.cpu_count()}")


if __name__ == "__main__":
    main()
