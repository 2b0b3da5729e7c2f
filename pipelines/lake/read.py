"""Read a lake table (latest, a version, or as of a timestamp) into pyarrow, DuckDB, Polars or Spark."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from pipelines.lake.storage import LakeConfig, filesystem, table_uri
from schemas import contract_for
from schemas.contract import TableContract

if TYPE_CHECKING:
    from deltalake import DeltaTable

BatchFn = Callable[[pa.RecordBatch], pa.RecordBatch | None]


class TableNotFoundError(LookupError):
    """The table (or the requested version of it) does not exist."""


def load(cfg: LakeConfig, name: str, *, version: int | None = None,
         timestamp: dt.datetime | str | None = None) -> DeltaTable:
    """The Delta table `name` at its latest version, at `version`, or as of `timestamp`."""
    from deltalake import DeltaTable  # here, not at import: reading a release's files needs no delta-rs

    uri = table_uri(cfg, name)
    storage = cfg.storage_options or None
    if not DeltaTable.is_deltatable(uri, storage_options=storage):
        raise TableNotFoundError(f"no Delta table {name} at {uri}; run the job that writes it "
                                 f"(e.g. `telelake ingest` for bronze tables) or check lake.root")
    table = DeltaTable(uri, storage_options=storage)
    if version is not None and timestamp is not None:
        raise ValueError("give a version or a timestamp, not both")
    try:
        if version is not None:
            table.load_as_version(version)
        elif timestamp is not None:
            table.load_as_version(timestamp)
    except Exception as exc:  # delta-rs raises its own error types for missing versions
        raise TableNotFoundError(f"{name}: cannot load version {version or timestamp}: {exc}") from exc
    return table


def dataset(cfg: LakeConfig, name: str, **at) -> pads.Dataset:
    """A pyarrow Dataset of the table version (lazy; partition columns included).

    Built from the version's file list with partition values as the only per-file expressions.
    delta-rs's own `to_pyarrow_dataset` turns a column without file statistics into
    `col >= null`, so a filter on such a column (most strings here: stats are kept for small
    columns only) silently matched nothing."""
    table = load(cfg, name, **at)
    files = data_files(cfg, name, **at)
    schema = pa.schema(table.schema().to_arrow())
    schema = pa.schema([pa.field(f.name, plain_type(f.type), f.nullable) for f in schema])
    if not files:
        return pads.dataset(pa.table({f.name: pa.array([], f.type) for f in schema}, schema=schema))
    fs, _ = filesystem(files[0]["uri"], cfg.storage_options)
    paths = [filesystem(f["uri"], cfg.storage_options)[1] for f in files]
    partitions = [partition_expression(schema, json.loads(f["partition_values"])) for f in files]
    return pads.FileSystemDataset.from_paths(paths, schema=schema, format=pads.ParquetFileFormat(),
                                             filesystem=fs, partitions=partitions)


def plain_type(typ: pa.DataType) -> pa.DataType:
    """delta-rs reports Arrow view/large types for some columns; the files hold plain ones."""
    if pa.types.is_string_view(typ) or pa.types.is_large_string(typ):
        return pa.string()
    if pa.types.is_binary_view(typ) or pa.types.is_large_binary(typ):
        return pa.binary()
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_list_view(typ):
        return pa.list_(pa.field(typ.value_field.name, plain_type(typ.value_type), typ.value_field.nullable))
    if pa.types.is_struct(typ):
        return pa.struct([pa.field(f.name, plain_type(f.type), f.nullable) for f in typ])
    return typ


def partition_expression(schema: pa.Schema, values: dict) -> pads.Expression:
    expr = pads.scalar(True)
    for col, value in values.items():
        field = pads.field(col)
        cond = field.is_null() if value is None else field == pa.scalar(value).cast(schema.field(col).type)
        expr = expr & cond
    return expr


def read_arrow(cfg: LakeConfig, name: str, *, columns: list[str] | None = None, **at) -> pa.Table:
    return dataset(cfg, name, **at).to_table(columns=columns)


def read_duckdb(cfg: LakeConfig, name: str, con=None, **at):
    """A DuckDB relation over the table; `con` defaults to a new in-memory connection."""
    import duckdb

    con = con or duckdb.connect()
    return con.from_arrow(dataset(cfg, name, **at))


def read_polars(cfg: LakeConfig, name: str, **at):
    """A Polars LazyFrame over the table."""
    import polars as pl

    return pl.scan_pyarrow_dataset(dataset(cfg, name, **at))


def data_files(cfg: LakeConfig, name: str, *, where: dict[str, str] | None = None, **at) -> list[dict]:
    """One record per data file of the table version: uri, partition values (as strings), size.
    `where` keeps the files of one partition, e.g. {"source": "wikipedia"}."""
    table = load(cfg, name, **at)
    base = table_uri(cfg, name)
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    files = []
    for a in actions:
        parts = {k.removeprefix("partition."): v for k, v in a.items() if k.startswith("partition.")}
        if where and any(parts.get(k) != v for k, v in where.items()):
            continue
        files.append({"uri": f"{base}/{unquote(a['path'])}", "partition_values": json.dumps(parts),
                      "num_records": a.get("num_records") or 0, "size": a.get("size_bytes") or 0})
    return sorted(files, key=lambda f: f["uri"])


def read_spark(spark, cfg: LakeConfig, name: str, *, columns: list[str] | None = None,
               contract: TableContract | None = None, files: list[dict] | None = None, **at):
    """A Spark DataFrame over the table version; one task per data file.

    Tasks read the Parquet files with pyarrow, so local folders and object stores take the same
    path and no Delta jars are needed. With the delta-spark connector on the classpath, the
    connector reads instead. `files` (records from `data_files`) restricts the read to those files.
    """
    from pipelines.spark import has_delta_connector

    contract = contract or contract_for(name)
    if has_delta_connector(spark) and files is None:
        reader = spark.read.format("delta")
        if at.get("version") is not None:
            reader = reader.option("versionAsOf", at["version"])
        if at.get("timestamp") is not None:
            reader = reader.option("timestampAsOf", str(at["timestamp"]))
        df = reader.load(table_uri(cfg, name))
        return df.select(*columns) if columns else df
    return map_table(spark, cfg, name, None, project_schema(contract.schema, columns), contract=contract,
                     columns=columns, files=files, **at)


def map_table(spark, cfg: LakeConfig, name: str, fn: BatchFn | None, out_schema: pa.Schema, *,
              contract: TableContract | None = None, columns: list[str] | None = None,
              files: list[dict] | None = None, batch_rows: int = 8192, **at):
    """Read the table in Spark tasks and apply `fn` to each Arrow batch inside the same task.

    The fused form keeps big columns (text) out of the JVM when a stage only needs a summary of
    them: a keyword scan reads the text in Python and hands Spark only its small ledger rows.
    `files` (records from `data_files`) restricts the read to those files, for incremental stages.
    """
    contract = contract or contract_for(name)
    files = data_files(cfg, name, **at) if files is None else files
    frame, read = planned_read(spark, cfg, files, project_schema(contract.schema, columns), batch_rows)

    def run(tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in read(tasks):
            out = batch if fn is None else fn(batch)
            if out is not None and out.num_rows:
                yield out

    from pipelines.lake.spark_types import spark_schema

    return frame.mapInArrow(run, spark_schema(out_schema))


def plan_tasks(files: list[dict], parallelism: int, target_bytes: int = 128 << 20) -> list[list[dict]]:
    """Group data files into Spark tasks: at least two tasks per core (so a slow task does not idle
    the others), no task much above `target_bytes`, largest files first onto the lightest task.

    Each Python task costs tens of milliseconds to start; one per small file would dominate."""
    if not files:
        return []
    total = sum(f.get("size") or 0 for f in files)
    n = min(len(files), max(2 * parallelism, -(-total // target_bytes)))
    bins: list[tuple[int, int, list[dict]]] = [(0, i, []) for i in range(n)]
    for f in sorted(files, key=lambda f: (-(f.get("size") or 0), f["uri"])):
        load_, i, members = min(bins)
        members.append(f)
        bins[i] = (load_ + (f.get("size") or 0), i, members)
        bins.sort(key=lambda b: b[1])
    return [sorted(members, key=lambda f: f["uri"]) for _, _, members in bins if members]


def planned_read(spark, cfg: LakeConfig, files: list[dict], schema: pa.Schema, batch_rows: int = 8192):
    """Plan `files` into tasks (`plan_tasks`) and return (frame, read): `frame` has one row and one
    partition per task, `read` is the task-side function (for mapInArrow) that turns the task's
    rows into the Arrow batches of its files. The plan travels to the workers as a broadcast."""
    tasks = [[(f["uri"], f["partition_values"]) for f in t]
             for t in plan_tasks(files, spark.sparkContext.defaultParallelism)]
    plan = spark.sparkContext.broadcast(tasks)
    frame = spark.range(0, len(tasks), 1, max(1, len(tasks)))
    storage = dict(cfg.storage_options)

    def read(task_ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for ids in task_ids:
            for task in ids.column("id").to_pylist():
                for uri, partition_values in plan.value[task]:
                    yield from _read_file(uri, json.loads(partition_values), schema, storage, batch_rows)

    return frame, read


def project_schema(schema: pa.Schema, columns: list[str] | None) -> pa.Schema:
    if not columns:
        return schema
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise KeyError(f"columns {missing} not in table; it has {schema.names}")
    return pa.schema([schema.field(c) for c in columns])


def _read_file(uri: str, partition_values: dict, schema: pa.Schema, storage: dict,
               batch_rows: int) -> Iterator[pa.RecordBatch]:
    fs, path = filesystem(uri, storage)
    file_cols = [n for n in schema.names if n not in partition_values]
    with fs.open_input_file(path) as fh:
        pf = pq.ParquetFile(fh)
        for batch in pf.iter_batches(batch_size=batch_rows, columns=file_cols):
            arrays = []
            for field in schema:
                if field.name in partition_values:
                    raw = pa.array([partition_values[field.name]] * batch.num_rows, pa.string())
                    arrays.append(raw.cast(field.type))
                else:
                    arrays.append(batch.column(field.name).cast(field.type))
            yield pa.RecordBatch.from_arrays(arrays, schema=schema.remove_metadata())
