"""Keyword job on local Spark: ledger contents, incremental scans, re-decide without re-scan."""
import json

import pyarrow.compute as pc

from jobs.ingest import IngestJobConfig
from jobs.ingest import run as run_ingest
from jobs.keyword_filter import KeywordJobConfig
from jobs.keyword_filter import run as run_keywords
from jobs.keyword_redecide import run as run_redecide
from pipelines import config, lake

DOCS = [
    ("w1", "https://blog.example/5g", "The gNB and the AMF in 5G NR; see 3GPP TS 38.331."),
    ("w2", "https://en.wikipedia.org/wiki/LTE", "LTE is a 4G standard for wireless broadband."),
    ("w3", "https://news.example/run", "He ran to the MAC store after the race."),
    ("w4", "https://shop.example/pans", "Cast iron pans need oil."),
    ("w5", "https://forum.example/ran", "Our RAN team moved the AMF and the SMF to the cloud."),
]


def _setup(tmp_path, lexicon_path, docs):
    raw = tmp_path / "raw"
    raw.mkdir(exist_ok=True)
    n = len(list(raw.iterdir()))
    (raw / f"part{n}.jsonl").write_text("".join(json.dumps({"id": i, "url": u, "text": t}) + "\n" for i, u, t in docs))
    base = {"lake": {"root": str(tmp_path / "lake")}}
    ing = config.from_dict(IngestJobConfig, {**base, "ingest": {"source": "web", "category": "web",
                                                                "format": "jsonl", "paths": [str(raw)]}})
    kw = config.from_dict(KeywordJobConfig, {**base, "keywords": {"sources": ["web"], "lexicon": lexicon_path}})
    return ing, kw


def _ledger(cfg):
    t = lake.read_arrow(cfg.lake, "silver.keyword_hits")
    return {r["doc_id"]: r for r in t.to_pylist()}, t


def test_verdict_ledger_and_incremental_rescan(spark, tmp_path, lexicon_path):
    ing, kw = _setup(tmp_path, lexicon_path, DOCS)
    run_ingest(ing, spark)
    (s,) = run_keywords(kw, spark)
    assert (s.read, s.kept) == (5, 2)
    assert s.dropped == {"wikipedia_url": 1, "ambiguous_only": 1, "no_keyword": 1}
    ledger, _ = _ledger(kw)
    bronze = {r["source_id"]: r["doc_id"] for r in lake.read_arrow(ing.lake, "bronze.web").to_pylist()}
    w1 = ledger[bronze["w1"]]
    assert {t["term"]: t["count"] for t in w1["term_counts"]}["gNB"] == 1
    assert [t["term"] for t in w1["ambiguous_counts"]] == ["AMF", "NR"]  # exact-case acronyms
    assert w1["verdict"] == "keep" and w1["reason"] == "keyword_match" and w1["lexicon_version"] == "telecom-v1"
    assert ledger[bronze["w3"]]["reason"] == "ambiguous_only"
    assert ledger[bronze["w2"]]["wikipedia_url"] and ledger[bronze["w2"]]["reason"] == "wikipedia_url"

    version = lake.load(kw.lake, "silver.keyword_hits").version()
    (again,) = run_keywords(kw, spark)
    assert again.already_committed and again.read == 5
    assert lake.load(kw.lake, "silver.keyword_hits").version() == version

    _setup(tmp_path, lexicon_path, [("w6", "https://x/6", "Massive MIMO beamforming in the n78 band.")])
    run_ingest(ing, spark)
    (inc,) = run_keywords(kw, spark)
    assert (inc.read, inc.kept) == (1, 1)   # only the new bronze file was scanned
    _, table = _ledger(kw)
    assert table.num_rows == 6 and len(set(table.column("doc_id").to_pylist())) == 6


def test_redecide_changes_verdicts_from_stored_evidence(spark, tmp_path, lexicon_path):
    ing, kw = _setup(tmp_path, lexicon_path, DOCS)
    run_ingest(ing, spark)
    run_keywords(kw, spark)
    strict = config.from_dict(KeywordJobConfig, {"lake": {"root": kw.lake.root}, "keywords": {
        "sources": ["web"], "lexicon": lexicon_path, "thresholds": {"min_distinct_terms": 4}}})
    s = run_redecide(strict, spark)
    assert (s.read, s.kept) == (5, 1) and s.dropped["below_min_distinct_terms"] == 1
    ledger, table = _ledger(kw)
    assert table.num_rows == 5
    assert set(pc.unique(table.column("thresholds")).to_pylist()) == {strict.keywords.thresholds.to_json()}
    # the scan evidence is untouched: only verdicts moved
    assert sum(r["strong_hits"] for r in ledger.values()) == sum(
        r["strong_hits"] for r in lake.read_arrow(kw.lake, "silver.keyword_hits", version=0).to_pylist())
    assert run_redecide(strict, spark).already_committed
