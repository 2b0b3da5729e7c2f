"""Import benchmark files into gold.benchmarks (+ quarantine.rejected): one idempotent batch.

    files (conf benchmarks.sources) ─ Spark task per file: read, validate, normalize, split ─▶ items | rejects
    items sharing an item_id: the first copy stays, later identical copies are rejected as
    duplicate_item; copies that disagree on the answer are all rejected as conflicting_duplicates
    gold.benchmarks is rewritten whole (ids and splits are stable); rejects are appended once

A batch is named by the input files and the conf: rerunning it is a no-op; a run killed between
its two commits finishes the second on the rerun.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import Window
from pyspark.sql import functions as F

from pipelines import lake
from pipelines.benchmarks.items import ItemRules, check_item
from pipelines.benchmarks.readers import Format, read_items
from pipelines.benchmarks.split import SplitSpec, assign
from pipelines.ingest.inputs import fingerprint, list_source_inputs
from pipelines.ingest.parse import utc_now
from pipelines.ingest.records import Reject, reject_id
from pipelines.lake.spark_types import spark_schema
from pipelines.quarantine import quarantine_rows, reject_id_column
from pipelines.summary import JobSummary
from schemas import REJECTED
from schemas.benchmarks import BENCHMARKS

log = logging.getLogger(__name__)
JOB = "benchmarks"
IMPORT_VERSION = "mcq-v1"
"""Part of every batch name: bump it when reading or validation changes, so a re-import re-reads."""


@dataclass(frozen=True, kw_only=True)
class BenchmarkSource:
    category: str
    """Benchmark category (GSMA ot-full config name): the unit of splits and adapters."""
    format: Format
    paths: list[str]
    """Files or folders (a folder: every file of the format's extensions below it)."""
    source: str | None = None
    """Upstream name and version recorded on each item, e.g. TeleQnA@d7ee5e3 (default: the category)."""
    difficulty: str | None = None
    """Difficulty of every item of these files (ORAN-Bench-13K: fin_E easy, fin_M medium, fin_H hard)."""

    def __post_init__(self) -> None:
        if not self.category.replace("_", "").isalnum() or not self.category.islower():
            raise ValueError(f"benchmark category {self.category!r} must be lower-case letters, digits and '_'")


@dataclass(frozen=True, kw_only=True)
class ImportSpec:
    sources: list[BenchmarkSource]
    split: SplitSpec = field(default_factory=SplitSpec)
    items: ItemRules = field(default_factory=ItemRules)


@dataclass
class ImportResult:
    summaries: list[JobSummary]
    splits: dict[str, dict[str, int]]
    """category → split → items."""
    majority: dict[str, dict[str, float]]
    """category → split → share of the most common answer position (the majority-class baseline)."""
    tables: dict[str, int]
    already_committed: bool = False

    def split_table(self):
        """A rich table: items per split, the majority-class baseline beside each."""
        from rich.table import Table

        t = Table(title="gold.benchmarks: items per split (majority-class baseline: share of the commonest answer)")
        for col in ("category", "train", "val", "test"):
            t.add_column(col, justify="left" if col == "category" else "right")
        for cat, counts in self.splits.items():
            t.add_row(cat, *(f"{counts.get(s, 0):,} ({100 * self.majority[cat].get(s, 0):.1f}%)"
                             for s in ("train", "val", "test")))
        return t


PARSED = pa.schema([
    ("kind", pa.string()), ("category", pa.string()), ("source", pa.string()), ("source_file", pa.string()),
    ("source_location", pa.string()), ("ordinal", pa.int64()), ("item_id", pa.string()), ("subject", pa.string()),
    ("difficulty", pa.string()), ("question", pa.string()), ("choices", pa.list_(pa.string())),
    ("answer", pa.int32()), ("explanation", pa.string()), ("split", pa.string()), ("question_key", pa.string()),
    ("repairs", pa.list_(pa.string())), ("reject_id", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
    ("raw", pa.binary()), ("raw_bytes", pa.int64()),
])


def parse_file(src: BenchmarkSource, path: str, split: SplitSpec, rules: ItemRules,
               storage_options: dict[str, str]) -> list[dict]:
    """PARSED rows (kind item | reject) of one file. Pure apart from reading it; never raises."""
    base = {f: None for f in PARSED.names} | {"category": src.category, "source": src.source or src.category,
                                              "source_file": path}
    rows = []
    try:
        for raw in read_items(src.format, path, storage_options):
            out = raw if isinstance(raw, Reject) else check_item(raw, src.category, rules)
            if isinstance(out, Reject):
                rows.append(base | {"kind": "reject", "source_location": out.location, "ordinal": out.ordinal,
                                    "reject_id": reject_id(JOB, path, out.location), "reason": out.reason,
                                    "detail": out.detail, "raw": out.raw, "raw_bytes": out.raw_bytes})
                continue
            rows.append(base | out | {"kind": "item", "source_location": raw.location, "ordinal": raw.ordinal,
                                      "difficulty": out["difficulty"] or src.difficulty,
                                      "split": assign(split, src.category, out["question_key"]),
                                      "raw": raw.raw, "raw_bytes": len(raw.raw)})
    except Exception as exc:  # an unreadable file is quarantined, never lost or fatal
        rows.append(base | {"kind": "reject", "source_location": "file", "ordinal": -1,
                            "reject_id": reject_id(JOB, path, "file"), "reason": "unreadable_file",
                            "detail": f"{type(exc).__name__}: {exc}"[:2000], "raw": b"", "raw_bytes": 0})
    return rows


def _parse_fn(spec: ImportSpec, storage_options: dict[str, str]):
    def run(batches):
        for b in batches:
            for i, path in zip(b.column("source").to_pylist(), b.column("path").to_pylist()):
                rows = parse_file(spec.sources[i], path, spec.split, spec.items, storage_options)
                if rows:
                    yield pa.RecordBatch.from_pylist(rows, schema=PARSED)
    return run


def run_import(spark, cfg: lake.LakeConfig, spec: ImportSpec, config_json: str = "{}") -> ImportResult:
    if not spec.sources:
        raise ValueError("benchmarks.sources is empty: name at least one benchmark file")
    units, files = list_source_inputs([(s.paths, "parquet" if s.format == "gsma_parquet" else "jsonl")
                                       for s in spec.sources], cfg.storage_options)
    fp = fingerprint(files, IMPORT_VERSION, repr(spec))
    batch = lake.Batch(app_id=f"telelake.{JOB}.{fp}", version=1)
    done = _previous(cfg, batch)
    if done is not None:
        return done
    log.info("benchmarks: %d files of %d sources, batch %s", len(units), len(spec.sources), batch.app_id)
    paths = spark.sparkContext.parallelize(units, max(1, len(units)))
    parsed = (spark.createDataFrame(paths, "source int, path string")
              .mapInArrow(_parse_fn(spec, dict(cfg.storage_options)), spark_schema(PARSED)))
    # copies of one item: identical ones keep the first; copies disagreeing on the answer all go
    copies = Window.partitionBy("item_id")
    first = copies.orderBy("source_file", "ordinal")
    answer_text = F.element_at("choices", F.col("answer") + 1)
    rows = (parsed.withColumn("_n", F.when(F.col("kind") == "item", F.row_number().over(first)))
            .withColumn("_answers", F.when(F.col("kind") == "item", F.size(F.collect_set(answer_text).over(copies))))
            .withColumn("reason", F.when(F.col("_answers") > 1, "conflicting_duplicates")
                        .when(F.col("_n") > 1, "duplicate_item").otherwise(F.col("reason")))
            .withColumn("detail", F.when(F.col("_answers") > 1, F.concat(F.lit("copies of "), "item_id",
                                                                          F.lit(" name different answers")))
                        .when(F.col("_n") > 1, F.concat(F.lit("same question and options as an earlier copy of "),
                                                        "item_id")).otherwise(F.col("detail")))
            .withColumn("kind", F.when(F.col("reason").isin("conflicting_duplicates", "duplicate_item"), "reject")
                        .otherwise(F.col("kind")))
            .withColumn("reject_id", F.coalesce("reject_id", reject_id_column(JOB)))
            .persist(StorageLevel.MEMORY_AND_DISK))
    try:
        summaries: dict[str, JobSummary] = {}
        for r in rows.groupBy("category", "kind", "reason").count().collect():
            s = summaries.setdefault(r["category"], JobSummary(job=JOB, source=r["category"]))
            s.read += r["count"]
            if r["kind"] == "item":
                s.kept += r["count"]
            else:
                s.rejected[r["reason"]] += r["count"]
        for s in summaries.values():
            s.check()
        items = rows.where(F.col("kind") == "item")
        splits, majority = _split_stats(items)
        now = utc_now()
        tag = batch.app_id.rsplit(".", 1)[1]
        gold = items.select(*[c for c in BENCHMARKS.schema.names if c not in ("import_batch", "imported_at")],
                            F.lit(tag).alias("import_batch"), F.lit(now).alias("imported_at"))
        rejects = quarantine_rows(spark, cfg, rows.where(F.col("kind") == "reject"), job=JOB, source=F.col("category"),
                                  batch=tag, now=now)
        meta = {"telelake.job": JOB, "telelake.config": config_json,
                "telelake.summaries": json.dumps([json.loads(s.to_json()) for s in summaries.values()]),
                "telelake.splits": json.dumps(splits), "telelake.majority": json.dumps(majority)}
        g = lake.write_dataframe(cfg, gold, BENCHMARKS, batch=batch, mode="overwrite", metadata=meta)
        q = lake.write_dataframe(cfg, rejects, REJECTED, batch=batch, metadata=meta)
    finally:
        rows.unpersist()
    tables = {g.table: g.version, q.table: q.version}
    for s in summaries.values():
        s.tables = tables
    return ImportResult(sorted(summaries.values(), key=lambda s: s.source), splits, majority, tables)


def _split_stats(items) -> tuple[dict, dict]:
    counts: dict[str, dict[str, int]] = {}
    positions: dict[tuple[str, str], Counter] = {}
    for r in items.groupBy("category", "split", "answer").count().collect():
        counts.setdefault(r["category"], Counter())[r["split"]] += r["count"]
        positions.setdefault((r["category"], r["split"]), Counter())[r["answer"]] += r["count"]
    majority = {}
    for (cat, split), c in positions.items():
        majority.setdefault(cat, {})[split] = round(max(c.values()) / sum(c.values()), 4)
    return ({c: dict(sorted(v.items())) for c, v in sorted(counts.items())},
            {c: dict(sorted(v.items())) for c, v in sorted(majority.items())})


def _previous(cfg: lake.LakeConfig, batch: lake.Batch) -> ImportResult | None:
    """The result stored with a batch whose two commits are both done."""
    q = lake.committed_version(cfg, REJECTED.name, batch)
    entry = lake.batch_commit(cfg, BENCHMARKS.name, batch) if q is not None else None
    if entry is None:
        return None
    summaries = sorted((JobSummary.from_json(json.dumps(s)) for s in json.loads(entry["telelake.summaries"])),
                       key=lambda s: s.source)
    tables = {BENCHMARKS.name: entry["version"], REJECTED.name: q}
    for s in summaries:
        s.already_committed, s.tables = True, tables
    return ImportResult(summaries, json.loads(entry["telelake.splits"]), json.loads(entry["telelake.majority"]),
                        tables, already_committed=True)
