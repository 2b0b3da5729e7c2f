"""Readers: generators over one input file yielding Doc, Reject or Drop records.

They never raise on bad data: a bad record, row group or file tail becomes a Reject with the
reason and its location, and reading goes on where it can.
"""
from __future__ import annotations

from collections.abc import Iterator

from pipelines.ingest.formats import JSONL_FORMATS, PARQUET_FORMATS, FieldMap
from pipelines.ingest.records import Limits, Record


def read_file(fmt: str, path: str, fields: FieldMap, limits: Limits,
              storage_options: dict[str, str]) -> Iterator[Record]:
    if fmt in PARQUET_FORMATS:
        from pipelines.ingest.readers.parquet import read_parquet
        return read_parquet(path, fields, limits, storage_options)
    if fmt in JSONL_FORMATS:
        from pipelines.ingest.readers.jsonl import read_jsonl
        return read_jsonl(path, fields, limits, storage_options)
    if fmt == "warc":
        from pipelines.ingest.readers.warc import read_warc
        return read_warc(path, limits, storage_options)
    raise ValueError(f"unknown format {fmt!r}")
