"""Bronze batch → keyword ledger batch, column at a time.

The text is scanned once per batch (`Matcher.count_batch`); every other column is built with Arrow
and numpy. Python runs per document only for documents with hits (a few percent of a web crawl),
where `decide` needs their evidence; documents without hits are decided once per
(category, Wikipedia URL) pair, since `decide` cannot depend on the length of empty evidence.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.filters.keywords import Evidence, Thresholds, decide, wikipedia_urls
from pipelines.filters.lexicon import Lexicon
from pipelines.filters.matchers import Hits
from schemas.keyword_hits import KEYWORD_HITS, TERM_COUNT


def ledger_batch(batch: pa.RecordBatch, lexicon: Lexicon, matcher, thresholds: Thresholds, *,
                 bronze_version: int, scanned_at, thresholds_json: str | None = None) -> pa.RecordBatch:
    """`batch` has doc_id, source, category, url, text; the result has KEYWORD_HITS' schema."""
    n = batch.num_rows
    text = batch.column("text")
    hits = matcher.count_batch(text)
    text_chars = pc.utf8_length(pc.fill_null(text, "")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    wiki = wikipedia_urls(batch.column("url"))
    terms = np.array([e.term for e in lexicon.entries], dtype=object)
    ambiguous = np.array([e.kind == "ambiguous" for e in lexicon.entries], bool)
    amb_hit = ambiguous[hits.entry]

    strong = _counts_column(hits, ~amb_hit, terms, n)
    amb = _counts_column(hits, amb_hit, terms, n)
    strong_hits = np.bincount(hits.doc[~amb_hit], weights=hits.count[~amb_hit], minlength=n).astype(np.int32)
    amb_hits = np.bincount(hits.doc[amb_hit], weights=hits.count[amb_hit], minlength=n).astype(np.int32)
    distinct = np.bincount(hits.doc, minlength=n).astype(np.int32)
    density = 1000.0 * (strong_hits + amb_hits) / np.maximum(text_chars, 1)

    verdict, reason = _verdicts(batch.column("category"), wiki, hits, terms, ambiguous, text_chars, thresholds)
    const = lambda value, typ: pa.array(np.full(n, value, dtype=object), typ)  # noqa: E731
    columns = {
        "doc_id": batch.column("doc_id"), "source": batch.column("source"),
        "category": batch.column("category"),
        "lexicon_version": const(lexicon.version, pa.string()),
        "bronze_version": pa.array(np.full(n, bronze_version, np.int64)),
        "term_counts": strong, "ambiguous_counts": amb,
        "strong_hits": pa.array(strong_hits), "ambiguous_hits": pa.array(amb_hits),
        "distinct_terms": pa.array(distinct), "text_chars": pa.array(text_chars),
        "density_per_kchar": pa.array(density), "wikipedia_url": pa.array(wiki),
        "verdict": pa.array(verdict, pa.string()), "reason": pa.array(reason, pa.string()),
        "thresholds": const(thresholds_json or thresholds.to_json(), pa.string()),
        "scanned_at": const(scanned_at, KEYWORD_HITS.schema.field("scanned_at").type),
    }
    return pa.RecordBatch.from_arrays([columns[f.name].cast(f.type) for f in KEYWORD_HITS.schema],
                                      schema=KEYWORD_HITS.schema)


def _counts_column(hits: Hits, mask: np.ndarray, terms: np.ndarray, n: int) -> pa.ListArray:
    """list<struct<term, count>> per document, terms in name order."""
    doc, entry, count = hits.doc[mask], hits.entry[mask], hits.count[mask]
    names = terms[entry]
    order = np.lexsort((names.astype(str), doc)) if len(doc) else np.arange(0)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(np.bincount(doc, minlength=n), out=offsets[1:])
    values = pa.StructArray.from_arrays([pa.array(names[order], pa.string()), pa.array(count[order], pa.int32())],
                                        fields=list(TERM_COUNT))
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=pa.list_(TERM_COUNT))


def _verdicts(category, wiki: np.ndarray, hits: Hits, terms: np.ndarray, ambiguous: np.ndarray,
              text_chars: np.ndarray, thresholds: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    encoded = pc.dictionary_encode(category)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    names = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64) * 2 + wiki
    uniq, inverse = np.unique(codes, return_inverse=True)
    decided = [decide(Evidence({}, {}, 1, bool(c % 2)), names[c // 2], thresholds) for c in uniq.tolist()]
    verdict = np.array([v for v, _ in decided], dtype=object)[inverse]
    reason = np.array([r for _, r in decided], dtype=object)[inverse]
    if len(hits.doc):
        categories = category.to_pylist()
        bounds = np.flatnonzero(np.diff(hits.doc)) + 1
        for rows in np.split(np.arange(len(hits.doc)), bounds):
            d = int(hits.doc[rows[0]])
            strong, amb = {}, {}
            for e, c in zip(hits.entry[rows].tolist(), hits.count[rows].tolist()):
                (amb if ambiguous[e] else strong)[terms[e]] = c
            ev = Evidence(strong, amb, int(text_chars[d]), bool(wiki[d]))
            verdict[d], reason[d] = decide(ev, categories[d], thresholds)
    return verdict, reason
