"""bronze.<source>: raw documents as ingested, one table per source, with provenance."""
from __future__ import annotations

import pyarrow as pa

from schemas.contract import TableContract

CATEGORIES = ("wiki", "web", "arxiv", "standard", "general", "other")
"""Tele-Data's four, general-purpose replay data (SlimPajama-style), and other."""

DOCUMENT_SCHEMA = pa.schema([
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("category", pa.string(), nullable=False),
    pa.field("source_id", pa.string()),
    pa.field("url", pa.string()),
    pa.field("title", pa.string()),
    pa.field("text", pa.string(), nullable=False),
    pa.field("text_chars", pa.int64(), nullable=False),
    pa.field("metadata", pa.string(), nullable=False),
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("source_location", pa.string(), nullable=False),
    pa.field("ingest_batch", pa.string(), nullable=False),
    pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
])

DOCUMENT_COLUMN_DOCS = {
    "doc_id": "sha256 (32 hex) of source + NUL + normalized text; stable across re-ingests",
    "source": "source name from the ingest conf, e.g. wikipedia, refinedweb",
    "category": f"one of {', '.join(CATEGORIES)}; becomes the Tele-Data category",
    "source_id": "the record's own id in its source, if it has one",
    "text": "the document text, unmodified apart from UTF-8 decoding",
    "text_chars": "len(text) in characters",
    "metadata": "JSON object with every other field the source carried (dump, timestamp, …)",
    "source_file": "the input file the record came from",
    "source_location": "where in that file: row=, line=, or offset= (bytes)",
    "ingest_batch": "id of the ingest batch (fingerprint of its input files)",
}


def check_source_name(source: str) -> None:
    """Source names become table names: lower-case letters, digits and '_'."""
    if not source.replace("_", "").isalnum() or not source.islower():
        raise ValueError(f"source name {source!r} must be lower-case letters, digits and '_'")


def bronze_contract(source: str) -> TableContract:
    """Contract of bronze.<source>. Every source shares the document schema."""
    check_source_name(source)
    if source.endswith("_sources"):
        raise ValueError(f"source name {source!r}: names ending in '_sources' are kept for raw source-file "
                         "tables (arXiv, 3GPP; schemas/sources.py)")
    return TableContract(
        name=f"bronze.{source}",
        schema=DOCUMENT_SCHEMA,
        key=("doc_id",),
        description=f"raw documents of source {source!r} with provenance, one row per unique text",
        stats_strings=("doc_id", "source", "category", "ingest_batch"),
        column_docs=DOCUMENT_COLUMN_DOCS,
    )
