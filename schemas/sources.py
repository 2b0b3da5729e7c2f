"""bronze.<source>_sources (raw source files: arXiv archives, 3GPP Word files) and silver.cleaned."""
from __future__ import annotations

import pyarrow as pa

from schemas.contract import TableContract
from schemas.documents import CATEGORIES, DOCUMENT_SCHEMA, check_source_name

TS = pa.timestamp("us", tz="UTC")
SOURCES_SUFFIX = "_sources"
FILE_TYPE = pa.struct([pa.field("path", pa.string(), nullable=False), pa.field("data", pa.binary(), nullable=False)])

_DOC = {f.name: f for f in DOCUMENT_SCHEMA}
# The document columns (same types), with the source files in place of the text.
SOURCE_SCHEMA = pa.schema([
    *(_DOC[n] for n in ("doc_id", "source", "category")),
    _DOC["source_id"].with_nullable(False),
    _DOC["url"], _DOC["title"],
    pa.field("abstract", pa.string()),
    pa.field("files", pa.list_(FILE_TYPE), nullable=False),
    pa.field("skipped", pa.list_(pa.string()), nullable=False),
    pa.field("total_bytes", pa.int64(), nullable=False),
    *(_DOC[n] for n in ("metadata", "source_file", "source_location", "ingest_batch", "ingested_at")),
])


def sources_table(source: str) -> str:
    return f"bronze.{source}{SOURCES_SUFFIX}"


def sources_contract(source: str) -> TableContract:
    """Contract of bronze.<source>_sources: one row per arXiv source or Word document, files kept."""
    check_source_name(source)
    return TableContract(
        name=sources_table(source),
        schema=SOURCE_SCHEMA,
        key=("doc_id",),
        description=f"raw source files of {source!r} (LaTeX and bibliography files of an arXiv source, or one "
                    "3GPP .doc/.docx) with listing metadata and provenance; cleaned into silver.cleaned",
        stats_strings=("doc_id", "source", "category", "source_id", "ingest_batch"),
        column_docs={
            "doc_id": "sha256 (32 hex) of source + every (path, bytes) of the source's files",
            "source_id": "arXiv id (2411.01234) or 3GPP spec (TS 38.331)",
            "title": "from the metadata listing (arXiv) or the file name (3GPP; the cover page is read when cleaning)",
            "abstract": "from the metadata listing (arXiv); null otherwise",
            "files": "text files of an arXiv source (.tex, .bbl, .bib, .sty, …) or the one Word file of a spec",
            "skipped": "files not kept, with why (figures and other binaries, links to missing files)",
            "total_bytes": "bytes of the kept files",
            "metadata": "JSON: listing fields (arXiv: id, title, abstract, categories) or file-name metadata (3GPP)",
            "source_location": "'file' or 'member=<name>' for a document inside a .zip",
        },
    )


CHECKS_TYPE = pa.struct([pa.field(n, pa.int64(), nullable=False) for n in (
    "comments", "macro_definitions", "unexpanded_macros", "floats", "display_equations_lost")])

CLEANED = TableContract(
    name="silver.cleaned",
    schema=pa.schema([
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("text", pa.string(), nullable=False),
        pa.field("text_chars", pa.int64(), nullable=False),
        pa.field("verdict", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("checks", CHECKS_TYPE, nullable=False),
        pa.field("cited", pa.list_(pa.string()), nullable=False),
        pa.field("bibliography", pa.string(), nullable=False),
        pa.field("metadata", pa.string(), nullable=False),
        pa.field("rules_version", pa.string(), nullable=False),
        pa.field("clean_batch", pa.string(), nullable=False),
        pa.field("cleaned_at", TS, nullable=False),
    ]),
    key=("doc_id", "rules_version"),
    partition_by=("category",),
    description="cleaned LaTeX of arXiv sources and 3GPP specifications, one row per document and rules "
                "version, with the quality checks and a keep/drop verdict",
    stats_strings=("doc_id", "source", "source_id", "verdict", "reason", "rules_version"),
    column_docs={
        "category": f"one of {', '.join(CATEGORIES)} (arxiv or standard here)",
        "text": "clean LaTeX: title, abstract, headings, text and all math; no preamble, floats, comments or macros",
        "verdict": "keep | drop (dropped rows stay, with the reason, so a rule change can be re-decided)",
        "reason": "clean, or what failed: not_clean:<check>,…, too_short",
        "checks": "counts after cleaning: comments, macro definitions, unexpanded author macros, floats, "
                  "display equations lost; all 0 for a clean document",
        "cited": "citation keys in order of first use",
        "bibliography": "JSON list of {key, text} from .bbl / thebibliography, else {key, type, text} from .bib",
        "metadata": "JSON: bronze metadata plus the cleaning record (main file, includes, missing files, "
                    "cycles, macros expanded, floats removed, sections removed, warnings; 3GPP: spec, "
                    "version, release, date, title)",
        "rules_version": "versions of conf/latex/commands.yaml (and conf/standards/cleaning.yaml) used",
    },
)
