"""Rows for quarantine.rejected from a stage's reject rows: one shape for every job."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines import lake
from schemas import REJECTED


def reject_id_column(job: str) -> Column:
    """The Spark form of `ingest.records.reject_id`: sha256 of job, source_file and source_location."""
    return F.sha2(F.concat_ws("\x00", F.lit(job), "source_file", "source_location"), 256).substr(1, 32)


def quarantine_rows(spark, cfg: lake.LakeConfig, rejects: DataFrame, *, job: str, source: str | Column, batch: str,
                    now) -> DataFrame:
    """REJECTED rows from `rejects` (reject_id, source_file, source_location, reason, detail and, when
    the stage kept them, raw and raw_bytes), without the reject ids quarantine already holds: a
    rerun rejects the same record once."""
    cols = set(rejects.columns)
    raw = F.col("raw") if "raw" in cols else F.lit(None).cast("binary")
    raw_bytes = F.coalesce(F.col("raw_bytes"), F.lit(0)).cast("long") if "raw_bytes" in cols else F.lit(0).cast("long")
    out = rejects.dropDuplicates(["reject_id"]).select(
        "reject_id", F.lit(job).alias("job"), (F.lit(source) if isinstance(source, str) else source).alias("source"),
        F.lit(batch).alias("batch"), "source_file", "source_location", "reason",
        F.coalesce(F.col("detail"), F.lit("")).alias("detail"), raw.alias("raw"), raw_bytes.alias("raw_bytes"),
        (F.coalesce(F.length(raw), F.lit(0)) < raw_bytes).alias("raw_truncated"), F.lit(now).alias("rejected_at"))
    if lake.open_table(cfg, REJECTED.name) is None:
        return out
    return out.join(lake.read_spark(spark, cfg, REJECTED.name, columns=["reject_id"]), "reject_id", "left_anti")
