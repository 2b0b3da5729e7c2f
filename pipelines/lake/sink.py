"""Task side of a lake write: turn Arrow batches into Parquet files inside the table folder.

Runs inside Spark tasks (mapInArrow). It never touches the Delta log: it returns one record per
file written (path, size, partition values, stats) and the driver commits them in one transaction.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.lake.stats import file_stats
from pipelines.lake.storage import filesystem
from schemas.contract import TableContract

FILE_RECORD_SCHEMA = pa.schema([
    ("table", pa.string()),
    ("path", pa.string()),
    ("size", pa.int64()),
    ("partition_values", pa.string()),
    ("modification_time", pa.int64()),
    ("num_records", pa.int64()),
    ("stats", pa.string()),
])


@dataclass(frozen=True, kw_only=True)
class SinkSpec:
    """Everything a task needs to write files of one table (picklable)."""

    table_uri: str
    contract: TableContract
    storage_options: dict[str, str]
    max_rows_per_file: int = 1_000_000
    max_bytes_per_file: int = 256 << 20
    compression: str = "zstd"


def write_batches(spec: SinkSpec, batches: Iterable[pa.RecordBatch]) -> list[dict]:
    """Write `batches` as Parquet files of the table; return one file record per file."""
    writer = _PartitionedWriter(spec)
    try:
        for batch in batches:
            if batch.num_rows:
                writer.write(spec.contract.conform(batch))
    finally:
        records = writer.close()
    return records


def sink_fn(spec: SinkSpec):
    """A mapInArrow function: write the partition's batches, yield the file records."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        records = write_batches(spec, batches)
        if records:
            yield pa.RecordBatch.from_pylist(records, schema=FILE_RECORD_SCHEMA)

    return run


class _PartitionedWriter:
    """Rolling Parquet writers, one per partition value combination."""

    def __init__(self, spec: SinkSpec) -> None:
        self.spec = spec
        self.fs, self.base = filesystem(spec.table_uri, spec.storage_options)
        self.stats_columns = spec.contract.stats_columns()
        self.open: dict[tuple, _OpenFile] = {}
        self.done: list[dict] = []

    def write(self, table: pa.Table) -> None:
        parts = self.spec.contract.partition_by
        if not parts:
            self._write_part((), table)
            return
        keys = table.select(list(parts)).group_by(list(parts)).aggregate([]).to_pylist()
        for key in keys:
            mask = None
            for col, val in key.items():
                m = pc.is_null(table.column(col)) if val is None else pc.equal(table.column(col), val)
                mask = m if mask is None else pc.and_(mask, m)
            self._write_part(tuple(key.items()), table.filter(mask))

    def _write_part(self, key: tuple, table: pa.Table) -> None:
        table = table.select(self.spec.contract.file_schema.names)
        f = self.open.get(key)
        if f is None:
            f = self.open[key] = _OpenFile(self, key)
        f.write(table)
        if f.rows >= self.spec.max_rows_per_file or f.bytes >= self.spec.max_bytes_per_file:
            self.done.append(f.close())
            del self.open[key]

    def close(self) -> list[dict]:
        for f in self.open.values():
            self.done.append(f.close())
        self.open.clear()
        return self.done


class _OpenFile:
    def __init__(self, owner: _PartitionedWriter, key: tuple) -> None:
        self.owner = owner
        self.partition_values = {c: (None if v is None else str(v)) for c, v in key}
        prefix = "".join(f"{quote(c, safe='')}={quote('__HIVE_DEFAULT_PARTITION__' if v is None else str(v), safe='')}/"
                         for c, v in key)
        self.rel_path = f"{prefix}part-{uuid.uuid4().hex}.{owner.spec.compression}.parquet"
        self.full_path = f"{owner.base}/{self.rel_path}"
        owner.fs.create_dir(self.full_path.rsplit("/", 1)[0], recursive=True)
        self.sink = owner.fs.open_output_stream(self.full_path)
        self.writer = pq.ParquetWriter(self.sink, owner.spec.contract.file_schema,
                                       compression=owner.spec.compression,
                                       write_statistics=self.owner.stats_columns)
        self.tables: list[pa.Table] = []
        self.rows = 0
        self.bytes = 0

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows
        self.bytes += table.nbytes
        # Keep only the stats columns to compute Delta stats at close.
        self.tables.append(table.select(self.owner.stats_columns))

    def close(self) -> dict:
        self.writer.close()
        self.sink.close()
        size = self.owner.fs.get_file_info(self.full_path).size
        stats_table = pa.concat_tables(self.tables) if self.tables else None
        return {
            "table": self.owner.spec.contract.name,
            "path": self.rel_path,
            "size": size,
            "partition_values": json.dumps(self.partition_values),
            "modification_time": int(time.time() * 1000),
            "num_records": self.rows,
            "stats": file_stats(stats_table, self.owner.stats_columns),
        }
