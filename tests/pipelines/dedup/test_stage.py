"""Spark dedup: exact and near copies across sources, the keep rule, the ledger rows."""
from __future__ import annotations

import random

import pyarrow as pa
import pytest

from pipelines.dedup.minhash import MinHashParams
from pipelines.dedup.stage import SIGNATURE_FIELDS, DedupSpec, content_hash, dedup, signature_columns

pytestmark = pytest.mark.spark

VOCAB = [f"w{i}" for i in range(5000)]


def _text(seed: int, n: int = 400) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def _edit(text: str, share: float, seed: int) -> str:
    rng = random.Random(seed)
    words = text.split()
    for i in rng.sample(range(len(words)), int(len(words) * share)):
        words[i] = rng.choice(VOCAB)
    return " ".join(words)


def _frame(spark, docs: list[dict], spec: DedupSpec):
    cols = signature_columns([d["text"] for d in docs], spec.minhash)
    table = pa.table({"doc_id": [d["doc_id"] for d in docs], "source": [d["source"] for d in docs],
                      "category": [d["category"] for d in docs],
                      "priority": pa.array([d.get("priority", 0) for d in docs], pa.int32()),
                      "recency": pa.array([d.get("recency", 0) for d in docs], pa.int64()),
                      "chars": pa.array([len(d["text"]) for d in docs], pa.int64()),
                      **{f.name: c for f, c in zip(SIGNATURE_FIELDS, cols)}})
    return spark.createDataFrame(table.to_pandas())


def test_content_hash_ignores_case_spacing_and_punctuation():
    assert content_hash("The gNB,  schedules\nUEs.") == content_hash("the gnb schedules ues")
    assert content_hash("the gNB schedules UEs") != content_hash("the gNB schedules UE")


def test_dedup_keeps_one_copy_per_cluster_by_the_keep_order(spark):
    article = _text(1)
    spec_a = _text(2)
    docs = [
        {"doc_id": "d01", "source": "wikipedia", "category": "wiki", "text": article, "priority": 0},
        # the web copy of the article, with different case and spacing: exact duplicate, wiki wins
        {"doc_id": "d00", "source": "refinedweb", "category": "web", "text": article.upper().replace(" ", "  "),
         "priority": 1},
        # a web page copying the article with 3% of words changed: near duplicate
        {"doc_id": "d02", "source": "refinedweb", "category": "web", "text": _edit(article, 0.03, 7), "priority": 1},
        # the same clause in two releases: the newer (higher recency) is kept
        {"doc_id": "s17", "source": "standards", "category": "standard", "text": spec_a, "priority": 2,
         "recency": 170000},
        {"doc_id": "s18", "source": "standards", "category": "standard", "text": _edit(spec_a, 0.02, 3),
         "priority": 2, "recency": 180400},
        {"doc_id": "u1", "source": "refinedweb", "category": "web", "text": _text(3), "priority": 1},
        {"doc_id": "u2", "source": "wikipedia", "category": "wiki", "text": _text(4), "priority": 0},
    ]
    spec = DedupSpec(minhash=MinHashParams())
    ledger = {r["doc_id"]: r.asDict() for r in dedup(_frame(spark, docs, spec), spec).collect()}
    assert len(ledger) == len(docs)
    assert {d: (r["verdict"], r["reason"]) for d, r in ledger.items()} == {
        "d01": ("keep", "kept_copy"), "d00": ("drop", "exact_duplicate"), "d02": ("drop", "near_duplicate"),
        "s18": ("keep", "kept_copy"), "s17": ("drop", "near_duplicate"),
        "u1": ("keep", "unique"), "u2": ("keep", "unique")}
    assert {ledger[d]["kept_doc_id"] for d in ("d00", "d01", "d02")} == {"d01"}
    assert ledger["d00"]["kept_source"] == "wikipedia"
    assert ledger["d00"]["cluster_id"] == "d00" and ledger["d00"]["cluster_size"] == 3
    assert ledger["d00"]["similarity"] == 1.0
    assert 0.7 < ledger["d02"]["similarity"] < 1.0
    assert ledger["s17"]["kept_doc_id"] == "s18"
    assert ledger["u1"]["cluster_id"] == "u1" and ledger["u1"]["cluster_size"] == 1


def test_dedup_is_deterministic_and_ties_break_on_doc_id(spark):
    text = _text(9)
    docs = [{"doc_id": f"c{i}", "source": "forum", "category": "web", "text": text} for i in (3, 1, 2)]
    spec = DedupSpec(keep_order=())
    runs = [sorted((r["doc_id"], r["verdict"]) for r in dedup(_frame(spark, docs, spec), spec).collect())
            for _ in range(2)]
    assert runs[0] == runs[1] == [("c1", "keep"), ("c2", "drop"), ("c3", "drop")]


def test_keep_order_names_are_checked():
    with pytest.raises(ValueError, match="keep_order"):
        DedupSpec(keep_order=("-length",))
