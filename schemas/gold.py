"""gold.tele_data (the Tele-Data corpus in the paper's layout), gold.general_replay, the id registry
and the dedup ledger silver.dedup."""
from __future__ import annotations

import pyarrow as pa

from schemas.contract import TableContract

TS = pa.timestamp("us", tz="UTC")

TELE_DATA_CATEGORIES = ("arxiv", "standard", "wiki", "web")
"""Tele-Data's categories (paper §III-E)."""
GENERAL_CATEGORY = "general"
"""General-purpose replay data (SlimPajama in the paper, §VII: 5% of the training mix)."""

PUBLIC_METADATA_KEYS = {
    "arxiv": ("Arxiv_id", "Title", "Abstract"),
    "standard": ("Series", "Release", "File_name"),
    "wiki": ("Title", "Url"),
    "web": ("Url",),
    GENERAL_CATEGORY: ("Set",),
}
"""Keys of the public `metadata` object per category (paper Appendix B); every row carries all of them."""

PUBLIC_COLUMNS = ("id", "category", "content", "metadata")
"""The public Tele-Data layout, in order: what `telelake release export` writes."""

GOLD_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("category", pa.string(), nullable=False),
    pa.field("content", pa.string(), nullable=False),
    pa.field("metadata", pa.string(), nullable=False),
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("content_chars", pa.int64(), nullable=False),
    pa.field("tokens", pa.int64(), nullable=False),
    pa.field("lineage", pa.string(), nullable=False),
    pa.field("assembly", pa.string(), nullable=False),
    pa.field("assembled_at", TS, nullable=False),
])

GOLD_DOCS = {
    "id": "category + '_' + number, e.g. wiki_132; a document keeps its id in every later assembly "
          "(gold.tele_data_ids), new documents get new numbers",
    "category": "arxiv | standard | wiki | web (general in gold.general_replay)",
    "content": "the main text: cleaned LaTeX for arxiv and standard, the page text for wiki and web",
    "metadata": "JSON object with the public keys of the category: arxiv Arxiv_id, Title, Abstract; standard "
                "Series, Release, File_name; wiki Title, Url; web Url; general Set",
    "doc_id": "the document's id in bronze/silver (sha256 of source and text or source files)",
    "content_chars": "len(content)",
    "tokens": "tokens of content under the assembly's tokenizer (conf assemble.tokenizer)",
    "lineage": "JSON: source table and version, source file and location, the verdict of every stage that "
               "admitted it (keyword, relevance, cleaning) and its dedup cluster",
    "assembly": "id of the assembly batch that wrote the row (fingerprint of inputs and conf)",
}


def _gold(name: str, description: str) -> TableContract:
    return TableContract(name=name, schema=GOLD_SCHEMA, key=("id",), partition_by=("category",),
                         description=description, stats_strings=("id", "doc_id", "source", "assembly"),
                         column_docs=GOLD_DOCS)


TELE_DATA = _gold("gold.tele_data", "the Tele-Data corpus: telecom documents that passed every stage, "
                  "deduplicated, in the paper's layout (id, category, content, metadata) plus lineage")
GENERAL_REPLAY = _gold("gold.general_replay", "general-purpose documents mixed into training releases "
                       "(a configured share of the tokens) against catastrophic forgetting")

TELE_DATA_IDS = TableContract(
    name="gold.tele_data_ids",
    schema=pa.schema([
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("number", pa.int64(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("assembly", pa.string(), nullable=False),
        pa.field("assigned_at", TS, nullable=False),
    ]),
    key=("doc_id",),
    description="append-only registry of public ids: a document's id never changes, numbers are never reused",
    stats_strings=("doc_id", "category", "id", "assembly"),
    column_docs={"number": "the id's number within its category, from 1, in order of assignment "
                           "(doc_id order within one assembly)"},
)

DEDUP = TableContract(
    name="silver.dedup",
    schema=pa.schema([
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False),
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("cluster_size", pa.int64(), nullable=False),
        pa.field("kept_doc_id", pa.string(), nullable=False),
        pa.field("kept_source", pa.string(), nullable=False),
        pa.field("verdict", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("similarity", pa.float64(), nullable=False),
        pa.field("params", pa.string(), nullable=False),
        pa.field("assembly", pa.string(), nullable=False),
        pa.field("deduped_at", TS, nullable=False),
    ]),
    key=("doc_id", "assembly"),
    partition_by=("category",),
    description="dedup ledger: one row per candidate document of an assembly, its duplicate cluster and "
                "which copy the cluster kept",
    stats_strings=("doc_id", "source", "cluster_id", "kept_doc_id", "verdict", "reason", "assembly"),
    column_docs={
        "content_hash": "sha256 (32 hex) of the normalized words of the content (exact-duplicate key)",
        "cluster_id": "smallest doc_id of the cluster (exact copies and MinHash LSH candidates, joined); "
                      "the document's own doc_id when it has no duplicate",
        "kept_doc_id": "the copy the cluster keeps (conf dedup.keep_order, then doc_id)",
        "verdict": "keep | drop",
        "reason": "unique | kept_copy | exact_duplicate | near_duplicate",
        "similarity": "estimated Jaccard similarity (MinHash) to the kept copy; 1.0 for exact copies and the kept copy",
        "params": "JSON of the MinHash parameters (n-gram, bands, rows, seed) and the keep order",
    },
)
