"""Parquet reader (Wikipedia dumps, RefinedWeb, any table with a text column), per row group."""
from __future__ import annotations

from collections.abc import Iterator

import pyarrow.parquet as pq

from pipelines.ingest.formats import FieldMap
from pipelines.ingest.readers.common import to_doc
from pipelines.ingest.records import Limits, Record, Reject
from pipelines.lake.storage import filesystem


def read_parquet(path: str, fields: FieldMap, limits: Limits,
                 storage_options: dict[str, str]) -> Iterator[Record]:
    fs, inner = filesystem(path, storage_options)
    try:
        fh = fs.open_input_file(inner)
        pf = pq.ParquetFile(fh)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for corrupt or truncated files
        size = fs.get_file_info(inner).size or 0
        yield Reject("corrupt_parquet", f"cannot open as Parquet: {exc}", "file", 0, b"", size)
        return
    try:
        if fields.text not in pf.schema_arrow.names:
            yield Reject("missing_field", f"column {fields.text!r} not in the file; it has "
                         f"{pf.schema_arrow.names}", "file", 0, b"", pf.metadata.num_rows)
            return
        ordinal = 0
        for rg in range(pf.num_row_groups):
            rows_in_group = pf.metadata.row_group(rg).num_rows
            try:
                rows = pf.read_row_group(rg).to_pylist()
            except Exception as exc:
                yield Reject("corrupt_row_group", f"row group {rg} ({rows_in_group} rows) unreadable: {exc}",
                             f"row_group={rg}", ordinal, b"", rows_in_group)
                ordinal += rows_in_group
                continue
            for i, row in enumerate(rows):
                yield to_doc(row, fields, f"row_group={rg},row={i}", ordinal, b"", limits)
                ordinal += 1
    finally:
        fh.close()
