"""The Spark task of an ingest: read input files, emit one row per record (doc, reject or drop)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pyarrow as pa

from pipelines.ingest.formats import FieldMap
from pipelines.ingest.readers import read_file
from pipelines.ingest.records import Doc, Drop, Limits, Reject, doc_id, reject_id
from schemas.documents import CATEGORIES

JOB = "ingest"

PARSED_SCHEMA = pa.schema([
    ("kind", pa.string()),            # doc | reject | drop
    ("source_file", pa.string()),
    ("source_location", pa.string()),
    ("ordinal", pa.int64()),
    ("doc_id", pa.string()),
    ("category", pa.string()),
    ("source_id", pa.string()),
    ("url", pa.string()),
    ("title", pa.string()),
    ("text", pa.string()),
    ("text_chars", pa.int64()),
    ("metadata", pa.string()),
    ("reject_id", pa.string()),
    ("reason", pa.string()),
    ("detail", pa.string()),
    ("raw", pa.binary()),
    ("raw_bytes", pa.int64()),
    ("raw_truncated", pa.bool_()),
])

# Flush an output batch at this many text bytes, so 50 MB documents do not pile up in memory.
FLUSH_BYTES = 64 << 20
FLUSH_ROWS = 4096


@dataclass(frozen=True, kw_only=True)
class ParseSpec:
    source: str
    category: str
    format: str
    fields: FieldMap
    limits: Limits
    storage_options: dict[str, str]


def parse_fn(spec: ParseSpec):
    """mapInArrow function over a DataFrame of input paths (column `path`)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for unit_batch in batches:
            for path in unit_batch.column("path").to_pylist():
                yield from parse_file(spec, path)

    return run


def parse_file(spec: ParseSpec, path: str) -> Iterator[pa.RecordBatch]:
    rows: list[dict] = []
    size = 0
    try:
        records = read_file(spec.format, path, spec.fields, spec.limits, spec.storage_options)
        for rec in records:
            row = _row(spec, path, rec)
            rows.append(row)
            size += row["text_chars"] or 0
            size += len(row["raw"] or b"")
            if size >= FLUSH_BYTES or len(rows) >= FLUSH_ROWS:
                yield pa.RecordBatch.from_pylist(rows, schema=PARSED_SCHEMA)
                rows, size = [], 0
    except Exception as exc:  # a reader bug or an I/O failure must not lose the file silently
        rows.append(_row(spec, path, Reject("unreadable_file", f"{type(exc).__name__}: {exc}",
                                            "file", -1)))
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=PARSED_SCHEMA)


def _row(spec: ParseSpec, path: str, rec) -> dict:
    base = {"source_file": path, "source_location": rec.location, "ordinal": rec.ordinal,
            "doc_id": None, "category": None, "source_id": None, "url": None, "title": None,
            "text": None, "text_chars": None, "metadata": None, "reject_id": None, "reason": None,
            "detail": None, "raw": None, "raw_bytes": None, "raw_truncated": None}
    if isinstance(rec, Doc):
        category = rec.category or spec.category
        if category not in CATEGORIES:
            rec = Reject("invalid_category", f"category {category!r} is not one of {list(CATEGORIES)}",
                         rec.location, rec.ordinal, rec.text[:4096].encode(), len(rec.text))
            return _row(spec, path, rec)
        return {**base, "kind": "doc", "doc_id": doc_id(spec.source, rec.text), "category": category,
                "source_id": rec.source_id, "url": rec.url, "title": rec.title, "text": rec.text,
                "text_chars": len(rec.text),
                "metadata": orjson.dumps(rec.metadata, default=str, option=orjson.OPT_SORT_KEYS).decode()}
    if isinstance(rec, Drop):
        return {**base, "kind": "drop", "reason": rec.reason}
    return {**base, "kind": "reject", "reject_id": reject_id(JOB, path, rec.location),
            "reason": rec.reason, "detail": rec.detail, "raw": rec.raw, "raw_bytes": rec.raw_bytes,
            "raw_truncated": len(rec.raw) < rec.raw_bytes}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
