"""quarantine.rejected: every record a job could not accept, with the reason and where it was."""
from __future__ import annotations

import pyarrow as pa

from schemas.contract import TableContract

REJECTED = TableContract(
    name="quarantine.rejected",
    schema=pa.schema([
        pa.field("reject_id", pa.string(), nullable=False),
        pa.field("job", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("batch", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_location", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("raw", pa.binary()),
        pa.field("raw_bytes", pa.int64(), nullable=False),
        pa.field("raw_truncated", pa.bool_(), nullable=False),
        pa.field("rejected_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]),
    key=("reject_id",),
    partition_by=("job",),
    description="records refused by a job: reason, detail, source file and location, raw bytes (capped)",
    stats_strings=("reject_id", "source", "batch", "reason"),
    column_docs={
        "reject_id": "sha256 (32 hex) of job, source file and location: a rerun rejects the same id",
        "reason": "stable snake_case reason, e.g. malformed_json, invalid_utf8, document_too_large",
        "detail": "human-readable detail: the parser's message, the size found, the limit",
        "raw": "the record's raw bytes, cut at the job's max_raw_bytes (see raw_truncated)",
        "raw_bytes": "full size of the raw record in bytes (0 when unknown)",
    },
)
