"""silver.keyword_hits: the keyword verdict ledger, one row per (document, lexicon version)."""
from __future__ import annotations

import pyarrow as pa

from schemas.contract import TableContract

TERM_COUNT = pa.struct([pa.field("term", pa.string()), pa.field("count", pa.int32())])

KEYWORD_HITS = TableContract(
    name="silver.keyword_hits",
    schema=pa.schema([
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("lexicon_version", pa.string(), nullable=False),
        pa.field("bronze_version", pa.int64(), nullable=False),
        pa.field("term_counts", pa.list_(TERM_COUNT), nullable=False),
        pa.field("ambiguous_counts", pa.list_(TERM_COUNT), nullable=False),
        pa.field("strong_hits", pa.int32(), nullable=False),
        pa.field("ambiguous_hits", pa.int32(), nullable=False),
        pa.field("distinct_terms", pa.int32(), nullable=False),
        pa.field("text_chars", pa.int64(), nullable=False),
        pa.field("density_per_kchar", pa.float64(), nullable=False),
        pa.field("wikipedia_url", pa.bool_(), nullable=False),
        pa.field("verdict", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("thresholds", pa.string(), nullable=False),
        pa.field("scanned_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]),
    key=("doc_id", "source", "lexicon_version"),
    partition_by=("source",),
    description="keyword evidence and verdict per document; verdicts re-decidable from evidence alone",
    stats_strings=("doc_id", "lexicon_version", "verdict", "reason"),
    column_docs={
        "term_counts": "unambiguous lexicon terms found, with counts (case-insensitive, word-bounded)",
        "ambiguous_counts": "ambiguous acronyms (RAN, MAC, …) found with exact case",
        "strong_hits": "sum of term_counts",
        "distinct_terms": "distinct unambiguous terms + distinct ambiguous acronyms",
        "density_per_kchar": "(strong + ambiguous hits) per 1,000 characters of text",
        "wikipedia_url": "the document's URL is a Wikipedia page",
        "verdict": "keep | drop",
        "reason": "keyword_match when kept, else the drop reason (no_keyword, ambiguous_only, …)",
        "thresholds": "JSON of the thresholds that produced the verdict",
    },
)
