"""Ingest stage: raw files → bronze.<source> (+ quarantine.rejected), one idempotent batch."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pipelines import lake
from pipelines.ingest.formats import PRESETS, FieldMap, Format
from pipelines.ingest.inputs import fingerprint, list_inputs
from pipelines.ingest.parse import JOB, PARSED_SCHEMA, ParseSpec, parse_fn, utc_now
from pipelines.ingest.records import Limits
from pipelines.lake.spark_types import spark_schema
from pipelines.summary import JobSummary
from schemas import REJECTED, TableContract, bronze_contract

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class IngestSpec:
    """What to ingest: a named source, its format and input paths."""

    source: str
    """Source name; the bronze table is bronze.<source>."""
    category: str
    """Tele-Data category of the source's documents: wiki | web | arxiv | standard, general (replay data) or other."""
    format: Format
    paths: list[str]
    """Files, folders (searched recursively) or local glob patterns."""
    fields: FieldMap | None = None
    """Field mapping; defaults to the format's preset (see pipelines/ingest/formats.py)."""
    limits: Limits = field(default_factory=Limits)


def batch_for(spec: IngestSpec, files) -> lake.Batch:
    fields = spec.fields or PRESETS[spec.format]
    fp = fingerprint(files, spec.source, spec.category, spec.format, json.dumps(fields.__dict__))
    return lake.Batch(app_id=f"telelake.ingest.{spec.source}.{fp}", version=1)


def run_ingest(spark, cfg: lake.LakeConfig, spec: IngestSpec, config_json: str = "{}") -> JobSummary:
    files = list_inputs(spec.paths, spec.format, cfg.storage_options)
    batch = batch_for(spec, files)
    bronze = bronze_contract(spec.source)
    done = previous_summary(cfg, bronze.name, batch)
    if finished(cfg, done, batch):
        return done
    log.info("ingest %s: %d files (%s bytes), batch %s", spec.source, len(files),
             f"{sum(f.size for f in files):,}", batch.app_id)

    parse = ParseSpec(source=spec.source, category=spec.category, format=spec.format,
                      fields=spec.fields or PRESETS[spec.format], limits=spec.limits,
                      storage_options=dict(cfg.storage_options))
    paths = spark.sparkContext.parallelize([(f.path,) for f in files], len(files))
    parsed = (spark.createDataFrame(paths, "path string")
              .mapInArrow(parse_fn(parse), spark_schema(PARSED_SCHEMA))
              .persist(StorageLevel.MEMORY_AND_DISK))
    doc_columns = ["doc_id", F.lit(spec.source).alias("source"), "category", "source_id", "url", "title", "text",
                   "text_chars", "metadata", "source_file", "source_location"]
    try:
        return write_parsed(spark, cfg, JOB, spec.source, bronze, batch, parsed, doc_columns, config_json,
                            bronze_summary=done)
    finally:
        parsed.unpersist()


def write_parsed(spark, cfg, job: str, source: str, bronze: TableContract, batch: lake.Batch, parsed: DataFrame,
                 doc_columns: list, config_json: str, bronze_summary: JobSummary | None) -> JobSummary:
    """Commit the parsed rows (kind doc | drop | reject): bronze, then quarantine. If a killed run
    already committed bronze, the summary stored with that commit stands and only the quarantine
    commit is finished. `doc_columns` are the bronze columns taken from the doc rows, before
    ingest_batch and ingested_at."""
    summary = JobSummary(job=job, source=source)
    for row in parsed.groupBy("kind", "reason").count().collect():
        summary.read += row["count"]
        if row["kind"] == "drop":
            summary.dropped[row["reason"]] += row["count"]
        elif row["kind"] == "reject":
            summary.rejected[row["reason"]] += row["count"]
    now = utc_now()
    docs = _first_copies(parsed.where(F.col("kind") == "doc"))
    docs = anti_join_existing(spark, cfg, docs, bronze.name, "doc_id")
    docs = docs.select(*doc_columns, F.lit(batch.app_id.rsplit(".", 1)[1]).alias("ingest_batch"),
                       F.lit(now).alias("ingested_at"))
    rejects = parsed.where(F.col("kind") == "reject").dropDuplicates(["reject_id"])
    rejects = anti_join_existing(spark, cfg, rejects, REJECTED.name, "reject_id")
    rejects = rejects.select(
        "reject_id", F.lit(job).alias("job"), F.lit(source).alias("source"),
        F.lit(batch.app_id.rsplit(".", 1)[1]).alias("batch"), "source_file", "source_location",
        "reason", "detail", "raw", "raw_bytes", "raw_truncated", F.lit(now).alias("rejected_at"))

    if bronze_summary is not None:
        meta = {"telelake.job": job, "telelake.summary": bronze_summary.to_json(), "telelake.config": config_json}
        r = lake.write_dataframe(cfg, rejects, REJECTED, batch=batch, metadata=meta)
        bronze_summary.already_committed = False
        bronze_summary.tables[r.table] = r.version
        return bronze_summary.check()
    # Count kept docs before writing so the summary can ride along in both commits' metadata.
    docs = docs.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        summary.kept = docs.count()
        n_docs = summary.read - summary.n_dropped - summary.n_rejected
        if n_docs > summary.kept:
            summary.dropped["duplicate_doc_id"] += n_docs - summary.kept
        meta = {"telelake.job": job, "telelake.summary": summary.to_json(), "telelake.config": config_json}
        b = lake.write_dataframe(cfg, docs, bronze, batch=batch, metadata=meta)
        r = lake.write_dataframe(cfg, rejects, REJECTED, batch=batch, metadata=meta)
    finally:
        docs.unpersist()
    summary.tables = {b.table: b.version, r.table: r.version}
    return summary.check()


def _first_copies(docs: DataFrame) -> DataFrame:
    """One row per doc_id: the first copy by (source_file, ordinal), so reruns pick the same one."""
    w = Window.partitionBy("doc_id").orderBy("source_file", "ordinal")
    return docs.withColumn("_n", F.row_number().over(w)).where(F.col("_n") == 1).drop("_n")


def anti_join_existing(spark, cfg, df: DataFrame, table: str, key: str) -> DataFrame:
    if lake.open_table(cfg, table) is None:
        return df
    existing = lake.read_spark(spark, cfg, table, columns=[key])
    return df.join(existing, key, "left_anti")


def finished(cfg, done: JobSummary | None, batch: lake.Batch) -> bool:
    """Whether a batch whose first table holds `done` (from previous_summary) also committed its
    quarantine rows; then `done` gains the quarantine version and the job has nothing left to do."""
    if done is None:
        return False
    version = lake.committed_version(cfg, REJECTED.name, batch)
    if version is None:
        return False
    done.tables[REJECTED.name] = version
    return True


def previous_summary(cfg, table: str, batch: lake.Batch) -> JobSummary | None:
    """The summary stored with an already committed batch, marked already_committed."""
    version = lake.committed_version(cfg, table, batch)
    if version is None:
        return None
    entry = lake.batch_commit(cfg, table, batch)
    if entry is not None and "telelake.summary" in entry:
        s = JobSummary.from_json(entry["telelake.summary"])
        s.already_committed = True
        s.tables = {table: entry["version"]}
        return s
    raise RuntimeError(f"{table}: batch {batch.app_id} is committed but its commit carries no summary")

