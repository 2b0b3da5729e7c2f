"""Keyword stage: bronze.<source> → silver.keyword_hits, incremental per bronze version.

Batch identity: app id `telelake.keywords.<source>.<lexicon version>`, batch version = the bronze
version scanned. A rerun at the same bronze version is a no-op; a later run scans only the data
files added to bronze since the last scanned version.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import functions as F

from pipelines import lake
from pipelines.filters.keywords import Evidence, Thresholds, decide
from pipelines.filters.ledger import ledger_batch
from pipelines.filters.lexicon import Lexicon, load_lexicon
from pipelines.filters.matchers import build_matcher
from pipelines.ingest.parse import utc_now
from pipelines.summary import JobSummary
from schemas import KEYWORD_HITS

log = logging.getLogger(__name__)
JOB = "keywords"
SCAN_COLUMNS = ["doc_id", "source", "category", "url", "text"]


@dataclass(frozen=True, kw_only=True)
class KeywordSpec:
    sources: list[str]
    """Bronze sources to scan (tables bronze.<source>)."""
    lexicon: str = "conf/lexicon/telecom_v1.yaml"
    matcher: Literal["auto", "hyperscan", "aho_corasick"] = "auto"
    thresholds: Thresholds = field(default_factory=Thresholds)


_MATCHERS: dict[tuple[str, str], object] = {}


def _matcher(lexicon: Lexicon, kind: str):
    """One compiled matcher per Python worker process and lexicon."""
    key = (lexicon.digest, kind)
    if key not in _MATCHERS:
        _MATCHERS[key] = build_matcher(lexicon, kind)
    return _MATCHERS[key]


def ledger_fn(lexicon: Lexicon, kind: str, thresholds: Thresholds, bronze_version: int,
              scanned_at) -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    """Per-batch transform: bronze rows (with text) → ledger rows (without it)."""
    t_json = thresholds.to_json()

    def fn(batch: pa.RecordBatch) -> pa.RecordBatch:
        return ledger_batch(batch, lexicon, _matcher(lexicon, kind), thresholds,
                            bronze_version=bronze_version, scanned_at=scanned_at, thresholds_json=t_json)

    return fn


def run_keywords(spark, cfg: lake.LakeConfig, spec: KeywordSpec, config_json: str = "{}") -> list[JobSummary]:
    lexicon = load_lexicon(spec.lexicon)
    return [_scan_source(spark, cfg, spec, lexicon, source, config_json) for source in spec.sources]


def _scan_source(spark, cfg, spec: KeywordSpec, lexicon: Lexicon, source: str, config_json: str) -> JobSummary:
    bronze_name = f"bronze.{source}"
    bronze_version = lake.load(cfg, bronze_name).version()
    batch = lake.Batch(app_id=f"telelake.{JOB}.{source}.{lexicon.version}", version=bronze_version)
    ledger = lake.open_table(cfg, KEYWORD_HITS.name)
    previous = ledger.transaction_version(batch.app_id) if ledger is not None else None
    already = previous is not None and previous >= bronze_version
    if not already:
        files = lake.data_files(cfg, bronze_name, version=bronze_version)
        if previous is not None:
            seen = {f["uri"] for f in lake.data_files(cfg, bronze_name, version=previous)}
            files = [f for f in files if f["uri"] not in seen]
        log.info("keywords %s: scanning %d data files of bronze v%d (lexicon %s, %d entries)",
                 source, len(files), bronze_version, lexicon.version, len(lexicon.entries))
        fn = ledger_fn(lexicon, spec.matcher, spec.thresholds, bronze_version, utc_now())
        metadata = {"telelake.job": JOB, "telelake.config": config_json}
        if not _has_rows(cfg, ledger, source):
            # First scan of this source: read, scan and write the ledger in the same tasks.
            lake.map_write(spark, cfg, bronze_name, fn, KEYWORD_HITS, batch=batch, columns=SCAN_COLUMNS,
                           files=files, metadata=metadata)
        else:
            # Never two ledger rows for one document and lexicon version.
            rows = lake.map_table(spark, cfg, bronze_name, fn, KEYWORD_HITS.schema, columns=SCAN_COLUMNS,
                                  files=files)
            done = (lake.read_spark(spark, cfg, KEYWORD_HITS.name, columns=["doc_id", "source", "lexicon_version"])
                    .where((F.col("source") == source) & (F.col("lexicon_version") == lexicon.version))
                    .select("doc_id"))
            lake.write_dataframe(cfg, rows.join(done, "doc_id", "left_anti"), KEYWORD_HITS, batch=batch,
                                 metadata=metadata)
    summary = batch_summary(cfg, source, lexicon.version, bronze_version)
    summary.already_committed = already
    return summary


def _has_rows(cfg: lake.LakeConfig, ledger, source: str) -> bool:
    """Whether the ledger holds any file of this source's partition (a metadata-only check)."""
    if ledger is None:
        return False
    return any(json.loads(f["partition_values"]).get("source") == source
               for f in lake.data_files(cfg, KEYWORD_HITS.name))


def batch_summary(cfg, source: str, lexicon_version: str, bronze_version: int) -> JobSummary:
    """Counts of the ledger rows one batch wrote, read back from the committed table."""
    summary = JobSummary(job=JOB, source=source)
    flt = ((pc.field("source") == source) & (pc.field("lexicon_version") == lexicon_version)
           & (pc.field("bronze_version") == bronze_version))
    version = lake.load(cfg, KEYWORD_HITS.name).version()
    _count_verdicts(cfg, version, flt, summary)
    return summary.check()


def _count_verdicts(cfg, version: int, flt, summary: JobSummary) -> None:
    ds = lake.dataset(cfg, KEYWORD_HITS.name, version=version)
    summary.count_verdicts(ds.to_table(columns=["verdict", "reason"], filter=flt))  # keep | drop
    summary.tables = {KEYWORD_HITS.name: version}


def redecide_fn(lexicon_version: str, thresholds: Thresholds) -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    """Per-batch transform over ledger rows: new verdicts from stored evidence, no text needed."""
    t_json = thresholds.to_json()

    def fn(batch: pa.RecordBatch) -> pa.RecordBatch:
        rows = batch.to_pylist()
        for r in rows:
            if r["lexicon_version"] != lexicon_version:
                continue
            ev = Evidence({t["term"]: t["count"] for t in r["term_counts"]},
                          {t["term"]: t["count"] for t in r["ambiguous_counts"]},
                          r["text_chars"], r["wikipedia_url"])
            r["verdict"], r["reason"] = decide(ev, r["category"], thresholds)
            r["thresholds"] = t_json
        return pa.RecordBatch.from_pylist(rows, schema=KEYWORD_HITS.schema)

    return fn


def run_redecide(spark, cfg: lake.LakeConfig, spec: KeywordSpec, config_json: str = "{}") -> JobSummary:
    """Re-apply `spec.thresholds` to every ledger row of the lexicon version: a new table version."""
    lexicon = load_lexicon(spec.lexicon)
    table = lake.load(cfg, KEYWORD_HITS.name)
    digest = spec.thresholds.to_json()
    batch = lake.Batch(app_id=f"telelake.{JOB}.redecide.{lexicon.version}.{_short_hash(digest)}",
                       version=table.version())
    latest = table.history(1)[0]
    if latest.get("telelake.app_id") == batch.app_id:  # these thresholds are what the table holds
        result = lake.CommitResult(KEYWORD_HITS.name, table.version(), 0, 0, skipped=True)
    else:
        rows = lake.map_table(spark, cfg, KEYWORD_HITS.name, redecide_fn(lexicon.version, spec.thresholds),
                              KEYWORD_HITS.schema)
        result = lake.write_dataframe(cfg, rows, KEYWORD_HITS, batch=batch, mode="overwrite",
                                      metadata={"telelake.job": f"{JOB}.redecide", "telelake.config": config_json})
    summary = JobSummary(job=f"{JOB}.redecide", source=lexicon.version, already_committed=result.skipped)
    _count_verdicts(cfg, result.version, pc.field("lexicon_version") == lexicon.version, summary)
    return summary.check()


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
