"""Exact and near-duplicate removal in Spark, with a deterministic keep rule.

1. Signatures, in the tasks that read the text (`signature_batch`): sha256 of the normalized words
   (exact key), MinHash signature, LSH band keys. The text never enters the JVM.
2. Exact copies: rows sharing a content hash; the best copy by the keep order represents them.
3. Near copies: representatives sharing any LSH band key are candidate pairs (each bucket as a star
   around its smallest doc_id); only buckets of two or more leave Spark, so the driver holds edges
   between duplicates, never the corpus. Union-find joins them into clusters.
4. Each cluster (exact copies of every member included) keeps its first document by `keep_order`
   then doc_id; the others are dropped as exact_duplicate (same content hash as the kept copy) or
   near_duplicate, with the MinHash similarity to the kept copy.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipelines.dedup.minhash import MinHashParams, WordHashes, band_keys, clusters, normalize, signature

log = logging.getLogger(__name__)

KEEP_FIELDS = ("priority", "recency", "chars", "score")


@dataclass(frozen=True, kw_only=True)
class DedupSpec:
    minhash: MinHashParams = field(default_factory=MinHashParams)
    keep_order: tuple[str, ...] = ("priority", "-recency", "-chars")
    """Which copy a cluster keeps: fields of KEEP_FIELDS, '-' for descending, then doc_id. priority is
    the position of the document's source in the assembly conf (list Wikipedia before the web so the
    article wins over its web copy); recency is the 3GPP version (the newer release wins); score is
    a stage's own quality score (Tele-Eval questions: the answerability P(Yes)). The frame given to
    `dedup` carries the fields its keep_order names."""

    def __post_init__(self) -> None:
        bad = [f for f in self.keep_order if f.lstrip("-") not in KEEP_FIELDS]
        if bad:
            raise ValueError(f"dedup keep_order {bad}: fields must be {list(KEEP_FIELDS)}, '-' for descending")

    def to_json(self) -> str:
        return json.dumps({**asdict(self.minhash), "keep_order": list(self.keep_order)}, sort_keys=True)


SIGNATURE_FIELDS = [
    pa.field("content_hash", pa.string(), nullable=False),
    pa.field("bands", pa.list_(pa.binary()), nullable=False),
    pa.field("sig", pa.list_(pa.int32()), nullable=False),
]


def content_hash(text: str, words: list[str] | None = None) -> str:
    """sha256 (32 hex) of the normalized words: case, accents, punctuation and spacing do not count."""
    return hashlib.sha256(" ".join(normalize(text) if words is None else words).encode()).hexdigest()[:32]


def signature_columns(texts: list[str], params: MinHashParams) -> list[pa.Array]:
    """content_hash, bands, sig for each text (the arrays of SIGNATURE_FIELDS)."""
    coeffs = params.coefficients()
    cache = WordHashes()
    hashes, bands, sigs = [], [], []
    for text in texts:
        words = normalize(text)
        hashes.append(content_hash(text, words))
        sig = signature(text, params, coeffs, words=words, cache=cache)
        bands.append(band_keys(sig, params))
        sigs.append(sig.astype(np.uint32).view(np.int32))
    flat = np.concatenate(sigs) if sigs else np.zeros(0, np.int32)
    offsets = pa.array(np.arange(0, len(texts) + 1, dtype=np.int32) * params.num_hashes)
    return [pa.array(hashes, pa.string()), pa.array(bands, pa.list_(pa.binary())),
            pa.ListArray.from_arrays(offsets, pa.array(flat, pa.int32()))]


def dedup(sigs: DataFrame, spec: DedupSpec) -> DataFrame:
    """Ledger rows (doc_id, source, category, content_hash, cluster_id, cluster_size, kept_doc_id,
    kept_source, verdict, reason, similarity) for `sigs`: doc_id, source, category, priority,
    recency, chars, content_hash, bands, sig. `sigs` should be persisted by the caller."""
    spark = sigs.sparkSession
    order = _order(spec.keep_order)
    exact = Window.partitionBy("content_hash")
    ranked = (sigs.withColumn("_exact_n", F.count(F.lit(1)).over(exact))
              .withColumn("_exact_rank", F.row_number().over(exact.orderBy(*order))))
    reps = ranked.where(F.col("_exact_rank") == 1)
    buckets = (reps.select("doc_id", F.explode("bands").alias("band"))
               .groupBy("band").agg(F.min("doc_id").alias("root"), F.collect_set("doc_id").alias("members"))
               .where(F.size("members") > 1))
    edges = (buckets.select("root", F.explode("members").alias("doc_id"))
             .where(F.col("doc_id") != F.col("root")).distinct().collect())
    roots = clusters([(r["root"], r["doc_id"]) for r in edges])
    log.info("dedup: %s candidate pairs among exact representatives, %s documents in near-duplicate clusters",
             f"{len(edges):,}", f"{len(roots):,}")
    near = spark.createDataFrame([(d, r) for d, r in roots.items()] or [("", "")], "rep string, near_root string")
    rep_of = reps.select("content_hash", F.col("doc_id").alias("rep"))
    linked = (ranked.join(rep_of, "content_hash").join(F.broadcast(near), "rep", "left")
              .withColumn("_cluster", F.coalesce("near_root", "rep")))
    singles = linked.where((F.col("_exact_n") == 1) & F.col("near_root").isNull())
    members = linked.where((F.col("_exact_n") > 1) | F.col("near_root").isNotNull())
    cluster = Window.partitionBy("_cluster")
    first = Window.partitionBy("_cluster").orderBy(*order).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    members = (members
               .withColumn("cluster_id", F.min("doc_id").over(cluster))
               .withColumn("cluster_size", F.count(F.lit(1)).over(cluster))
               .withColumn("_rank", F.row_number().over(cluster.orderBy(*order)))
               .withColumn("kept_doc_id", F.first("doc_id").over(first))
               .withColumn("kept_source", F.first("source").over(first))
               .withColumn("_kept_hash", F.first("content_hash").over(first))
               .withColumn("_kept_sig", F.first("sig").over(first)))
    same = F.aggregate(F.zip_with("sig", "_kept_sig", lambda a, b: F.when(a == b, 1).otherwise(0)), F.lit(0),
                       lambda acc, x: acc + x)
    members = members.select(
        "doc_id", "source", "category", "content_hash", "cluster_id", "cluster_size", "kept_doc_id", "kept_source",
        F.when(F.col("_rank") == 1, "keep").otherwise("drop").alias("verdict"),
        F.when(F.col("_rank") == 1, "kept_copy")
         .when(F.col("content_hash") == F.col("_kept_hash"), "exact_duplicate")
         .otherwise("near_duplicate").alias("reason"),
        F.when(F.col("content_hash") == F.col("_kept_hash"), F.lit(1.0))
         .otherwise(same / F.lit(float(spec.minhash.num_hashes))).alias("similarity"))
    singles = singles.select(
        "doc_id", "source", "category", "content_hash", F.col("doc_id").alias("cluster_id"),
        F.lit(1).cast("long").alias("cluster_size"), F.col("doc_id").alias("kept_doc_id"),
        F.col("source").alias("kept_source"), F.lit("keep").alias("verdict"), F.lit("unique").alias("reason"),
        F.lit(1.0).alias("similarity"))
    return singles.unionByName(members)


def _order(keep_order: tuple[str, ...]) -> list[Column]:
    cols = [F.col(f[1:]).desc_nulls_last() if f.startswith("-") else F.col(f).asc_nulls_last() for f in keep_order]
    return [*cols, F.col("doc_id").asc()]
