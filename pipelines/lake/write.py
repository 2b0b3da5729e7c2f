"""Write a Spark DataFrame to a lake table: tasks write Parquet, the driver commits once."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import to_arrow_schema

from pipelines import failpoints
from pipelines.lake.commit import Batch, CommitResult, WriteMode, commit_files, committed_version
from pipelines.lake.read import data_files, planned_read, project_schema
from pipelines.lake.sink import FILE_RECORD_SCHEMA, SinkSpec, sink_fn, write_batches
from pipelines.lake.spark_types import spark_schema
from pipelines.lake.storage import LakeConfig, table_uri
from schemas import contract_for
from schemas.contract import SchemaMismatchError, TableContract, check_compatible

log = logging.getLogger(__name__)


def sink_spec(cfg: LakeConfig, contract: TableContract) -> SinkSpec:
    return SinkSpec(table_uri=table_uri(cfg, contract.name), contract=contract,
                    storage_options=dict(cfg.storage_options))


def write_dataframe(cfg: LakeConfig, df: DataFrame, contract: TableContract, *, batch: Batch,
                    mode: WriteMode = "append", metadata: dict[str, str] | None = None) -> CommitResult:
    """Write `df` to the table of `contract` as one idempotent batch.

    A batch already committed returns at once (skipped=True) without running any Spark work.
    The failpoints `lake.before_commit` / `lake.after_commit` let tests kill the job around it.
    """
    done = _already(cfg, contract, batch)
    if done is not None:
        return done
    check_dataframe(df, contract)
    files_df = df.mapInArrow(sink_fn(sink_spec(cfg, contract)), spark_schema(FILE_RECORD_SCHEMA))
    return _commit(cfg, contract, [r.asDict() for r in files_df.collect()], batch, mode, metadata)


def map_write(spark, cfg: LakeConfig, source: str, fn: Callable[[pa.RecordBatch], pa.RecordBatch],
              contract: TableContract, *, batch: Batch, columns: list[str] | None = None,
              files: list[dict] | None = None, mode: WriteMode = "append",
              metadata: dict[str, str] | None = None, **at) -> CommitResult:
    """Table `source` → `fn` per Arrow batch → table of `contract`, read, transformed and written in
    the same Spark task (nothing crosses into the JVM but file records), one idempotent commit.

    For row-wise stages whose output needs no shuffle: the keyword ledger writes ~100 bytes per
    document it reads ~3 KB of text for. `files` restricts the read (records from `data_files`).
    """
    done = _already(cfg, contract, batch)
    if done is not None:
        return done
    files = data_files(cfg, source, **at) if files is None else files
    frame, read = planned_read(spark, cfg, files, project_schema(contract_for(source).schema, columns))
    spec = sink_spec(cfg, contract)

    def run(tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        records = write_batches(spec, (fn(b) for b in read(tasks)))
        if records:
            yield pa.RecordBatch.from_pylist(records, schema=FILE_RECORD_SCHEMA)

    files_df = frame.mapInArrow(run, spark_schema(FILE_RECORD_SCHEMA))
    return _commit(cfg, contract, [r.asDict() for r in files_df.collect()], batch, mode, metadata)


def _already(cfg: LakeConfig, contract: TableContract, batch: Batch) -> CommitResult | None:
    done = committed_version(cfg, contract.name, batch)
    if done is None:
        return None
    log.info("%s: batch %s v%d already committed at version %d; skipping",
             contract.name, batch.app_id, batch.version, done)
    return CommitResult(contract.name, done, 0, 0, skipped=True)


def _commit(cfg: LakeConfig, contract: TableContract, files: list[dict], batch: Batch, mode: WriteMode,
            metadata: dict[str, str] | None) -> CommitResult:
    failpoints.hit("lake.before_commit")
    result = commit_files(cfg, contract, files, mode=mode, batch=batch, metadata=metadata)
    failpoints.hit("lake.after_commit")
    log.info("%s: version %d (%s rows in %d files%s)", contract.name, result.version,
             f"{result.rows:,}", result.files, ", batch already committed" if result.skipped else "")
    return result


def check_dataframe(df: DataFrame, contract: TableContract) -> None:
    """Fail before launching tasks if `df` cannot be written under the contract."""
    problems = check_compatible(to_arrow_schema(df.schema, timezone="UTC"), contract.schema)
    if problems:
        raise SchemaMismatchError(f"DataFrame does not match the contract of {contract.name} "
                                  f"(schemas/): " + "; ".join(problems))
