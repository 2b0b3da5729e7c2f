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
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

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
TELECOM_SHARE = 0.05
WIKIPEDIA_URL_SHARE = 0.01


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


def _sentences(rng, n: int) -> list[str]:
    """English-like sentences: words drawn with their frequencies in the Python documentation."""
    import pydoc_data.topics

    words = Counter(w.lower() for w in re.findall(r"[A-Za-z]+", " ".join(pydoc_data.topics.topics.values())))
    vocab = np.array(list(words))
    p = np.array(list(words.values()), float)
    picks = rng.choice(len(vocab), size=n * 16, p=p / p.sum())
    lengths = rng.integers(6, 27, n)
    out, at = [], 0
    for length in lengths.tolist():
        body = " ".join(vocab[picks[at % len(picks):at % len(picks) + length]])
        at += length
        out.append(body[:1].upper() + body[1:] + ".")
    return out


def build_corpus(lake_cfg, size_bytes: int, seed: int = 0) -> int:
    """bronze.bench: web-like documents (log-normal lengths, median ~2,000 characters); 5% carry
    telecom paragraphs from the demo corpus, 1% have a Wikipedia URL."""
    rng = np.random.default_rng(seed)
    corpus = load_corpus()
    telecom = [p["text"] for p in corpus["wikipedia"]] + [p["content"] for p in corpus["refinedweb"]]
    telecom = [t for t in telecom if len(t) > 200]
    pool = _sentences(rng, 200_000)
    contract = bronze_contract("bench")
    spec = SinkSpec(table_uri=lake.table_uri(lake_cfg, contract.name), contract=contract, storage_options={})
    written, files, n = 0, [], 0
    now = pa.scalar(0, pa.timestamp("us", tz="UTC")).as_py()
    with tqdm(total=size_bytes, unit="B", unit_scale=True, desc="corpus") as bar:
        while written < size_bytes:
            rows = []
            lengths = np.minimum(rng.lognormal(np.log(2000), 0.9, 5000), 200_000)
            for chars in lengths.tolist():
                parts = [pool[i] for i in rng.integers(0, len(pool), max(1, int(chars / 110)))]
                if rng.random() < TELECOM_SHARE:
                    parts.insert(int(rng.integers(0, len(parts) + 1)), telecom[int(rng.integers(0, len(telecom)))])
                text = " ".join(parts)
                n += 1
                url = (f"https://en.wikipedia.org/wiki/Page_{n}" if rng.random() < WIKIPEDIA_URL_SHARE
                       else f"https://site{n % 977}.example/{n}")
                rows.append({"doc_id": f"{n:032x}", "source": "bench", "category": "web", "source_id": None,
                             "url": url, "title": None, "text": text, "text_chars": len(text), "metadata": "{}",
                             "source_file": "synthetic", "source_location": f"row={n}", "ingest_batch": "bench",
                             "ingested_at": now})
                written += len(text)
                bar.update(len(text))
            files += write_batches(spec, [pa.RecordBatch.from_pylist(rows, schema=contract.schema)])
    lake.commit_files(lake_cfg, contract, files, mode="append", batch=lake.Batch("bench.corpus", 1))
    return written


def bench_scan(lake_cfg, limit_bytes: int) -> dict:
    """MB/s of text on one core: Hyperscan over whole Arrow batches (the job's path) and one
    document at a time (a per-document framework's path); Aho-Corasick on a 5% sample."""
    lex = load_lexicon(LEXICON)
    batches, total = [], 0
    for f in lake.data_files(lake_cfg, "bronze.bench"):
        for b in pq.ParquetFile(f["uri"]).iter_batches(batch_size=8192, columns=["text"]):
            batches.append(b.column("text"))
            total += b.column("text").nbytes
        if total >= limit_bytes:
            break
    nbytes = sum(pc.sum(pc.binary_length(b)).as_py() for b in batches)
    hs = HyperscanMatcher(lex)
    t0 = time.perf_counter()
    for b in batches:
        hs.count_batch(b)
    out = {"hyperscan, whole batches": nbytes / 1e6 / (time.perf_counter() - t0)}
    texts = [t for b in batches for t in b.to_pylist()]
    for name, m, share in (("hyperscan, per document", hs, 1.0),
                           ("aho_corasick, per document (5% sample)", AhoCorasickMatcher(lex), 0.05)):
        sub = texts[: max(1, int(len(texts) * share))]
        size = sum(len(t.encode()) for t in sub)
        t0 = time.perf_counter()
        for t in sub:
            m.count(t)
        out[name] = size / 1e6 / (time.perf_counter() - t0)
    return out


def bench_job(lake_cfg, workers: int) -> dict:
    """Wall time of the job as spark-submit runs it (session start included, and reported apart),
    then of the same job again in the warm session (the rate once Spark's one-time costs are paid)."""
    from pipelines.filters.keyword_stage import KeywordSpec, run_keywords
    from pipelines.spark import SparkConfig, build_session

    ledger = Path(lake.table_uri(lake_cfg, "silver.keyword_hits"))
    spec = KeywordSpec(sources=["bench"], lexicon=str(LEXICON))
    shutil.rmtree(ledger, ignore_errors=True)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        spark = build_session(SparkConfig(master=f"local[{workers}]", driver_memory="4g", log_level="ERROR"), "bench")
        started = time.perf_counter() - t0
        (s,) = run_keywords(spark, lake_cfg, spec)
        total = time.perf_counter() - t0
    print(f"  job: {s.line()}")
    shutil.rmtree(ledger)
    t0 = time.perf_counter()
    run_keywords(spark, lake_cfg, spec)
    warm = time.perf_counter() - t0
    spark.stop()
    return {"total": total, "start": started, "warm": warm, "peak": mem.peak}


def bench_datatrove(lake_cfg, out_dir: Path, workers: int) -> tuple[float, int]:
    from datatrove.executor import LocalPipelineExecutor

    from pipelines.filters import keyword_stage
    from datatrove.pipeline.filters.base_filter import BaseFilter
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter

    class KeywordFilter(BaseFilter):
        name = "telecom keywords"

        def __init__(self):
            super().__init__()
            self.lex, self.t, self.m = load_lexicon(LEXICON), Thresholds(), None

        def filter(self, doc):
            # the same compiled Hyperscan matcher as the telelake job, cached per worker process
            self.m = self.m or keyword_stage._matcher(self.lex, "hyperscan")
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
    job = bench_job(cfg, args.workers)
    shutil.rmtree(work / "dt", ignore_errors=True)
    dt_s, dt_mem = bench_datatrove(cfg, work / "dt", args.workers)
    w = args.workers
    print("\n| measure | MB/s per core | wall s | peak RSS GiB |\n|---|---|---|---|")
    for name, rate in scan_rates.items():
        print(f"| (a) scan alone, {name}, 1 core | {rate:,.0f} | | |")
    print(f"| (b) telelake keyword job, local[{w}], incl. {job['start']:.1f} s Spark session start "
          f"| {mb / job['total'] / w:,.1f} | {job['total']:,.1f} | {job['peak'] / 2**30:.2f} |")
    print(f"| (b') same job again in the warm session | {mb / job['warm'] / w:,.1f} | {job['warm']:,.1f} | |")
    print(f"| (c) datatrove, {w} workers | {mb / dt_s / w:,.1f} | {dt_s:,.1f} | {dt_mem / 2**30:.2f} |")
    print(f"\ncorpus {mb:,.0f} MB of text; (b)/(c) = {dt_s / job['total']:.2f}x; (b')/(c) = {dt_s / job['warm']:.2f}x; "
          f"cores {os.cpu_count()}")


if __name__ == "__main__":
    main()
