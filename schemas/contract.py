"""TableContract: one table's Arrow schema, key, partitioning and description, in one place.

Writers cast and check against it, readers use it to type empty results, and (later) the
data-quality suites derive their expectations from it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

Zone = Literal["bronze", "silver", "gold", "quarantine"]

# Columns whose values are small enough to carry min/max statistics in the Delta log.
_STATS_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean,
                pa.types.is_timestamp, pa.types.is_date)


class SchemaMismatchError(ValueError):
    """Data or an existing table does not match the contract it is written under."""


@dataclass(frozen=True, kw_only=True)
class TableContract:
    """What a table holds. `name` is `zone.table`, e.g. `bronze.wikipedia`."""

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    description: str
    partition_by: tuple[str, ...] = ()
    # String columns short enough for min/max stats (ids, reasons); text never gets stats.
    stats_strings: tuple[str, ...] = ()
    column_docs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = set(self.schema.names)
        for col in (*self.key, *self.partition_by, *self.stats_strings, *self.column_docs):
            if col not in names:
                raise ValueError(f"contract {self.name}: column {col!r} is not in its schema {sorted(names)}")

    @property
    def zone(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def file_schema(self) -> pa.Schema:
        """Schema of the Parquet files: Delta keeps partition values in the log, not the files."""
        return pa.schema([f for f in self.schema if f.name not in self.partition_by])

    def stats_columns(self) -> list[str]:
        """Columns that get numRecords/min/max/nullCount stats in the Delta log."""
        cols = []
        for f in self.file_schema:
            if any(check(f.type) for check in _STATS_TYPES) or f.name in self.stats_strings:
                cols.append(f.name)
        return cols

    def conform(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        """Return `batch` as a table with exactly the contract's columns, order and types.

        A missing or extra column, or a type that cannot be cast safely, raises
        SchemaMismatchError naming the column.
        """
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        problems = check_compatible(table.schema, self.schema)
        if problems:
            raise SchemaMismatchError(
                f"data does not match the contract of {self.name} (schemas/): " + "; ".join(problems)
                + ". Fix the producing stage or change the contract in schemas/.")
        columns = [table.column(f.name).cast(f.type) if table.schema.field(f.name).type != f.type
                   else table.column(f.name) for f in self.schema]
        nulls = [f.name for f, c in zip(self.schema, columns) if not f.nullable and c.null_count]
        if nulls:
            raise SchemaMismatchError(f"data for {self.name} has nulls in non-nullable columns {nulls}")
        return pa.Table.from_arrays(columns, schema=self.schema)


def check_compatible(actual: pa.Schema, expected: pa.Schema) -> list[str]:
    """List the differences that prevent `actual` from being written as `expected`."""
    problems = []
    for f in expected:
        idx = actual.get_field_index(f.name)
        if idx < 0:
            problems.append(f"column {f.name!r} ({f.type}) is missing")
            continue
        got = actual.field(idx).type
        if got != f.type and not _safely_castable(got, f.type):
            problems.append(f"column {f.name!r} is {got}, expected {f.type}")
    extra = [n for n in actual.names if n not in expected.names]
    if extra:
        problems.append(f"unexpected columns {extra}")
    return problems


def _safely_castable(got: pa.DataType, want: pa.DataType) -> bool:
    if pa.types.is_null(got):
        return True
    if pa.types.is_timestamp(got) and pa.types.is_timestamp(want):
        # Spark hands timestamps over in the session time zone; the instant is the same.
        return got.tz is not None and want.tz is not None
    if (pa.types.is_string(got) or pa.types.is_large_string(got)) and pa.types.is_string(want):
        return True
    if pa.types.is_integer(got) and pa.types.is_integer(want):
        return want.bit_width >= got.bit_width
    if pa.types.is_floating(got) and pa.types.is_floating(want):
        return want.bit_width >= got.bit_width
    if (pa.types.is_list(got) or pa.types.is_large_list(got)) and pa.types.is_list(want):
        return got.value_type == want.value_type or _safely_castable(got.value_type, want.value_type)
    if pa.types.is_struct(got) and pa.types.is_struct(want):
        return not check_compatible(pa.schema(list(got)), pa.schema(list(want)))
    return False
