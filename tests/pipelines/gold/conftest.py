"""A small lake with every input of the gold assembly: real ingest and keyword scan of JSONL files,
judge verdicts and cleaned arXiv rows written under their contracts, a general corpus."""
from __future__ import annotations

import json
import random

import pytest

from pipelines import lake
from pipelines.filters.keyword_stage import KeywordSpec, run_keywords
from pipelines.ingest.parse import utc_now
from pipelines.ingest.stage import IngestSpec, run_ingest
from pipelines.lake.spark_types import spark_schema
from schemas import CLEANED, RELEVANCE, sources_contract

TELECOM = ("the base station schedules uplink and downlink traffic over the radio access network while the "
           "core network handles mobility and session management for 5G user equipment").split()
FILLER = [f"term{i}" for i in range(3000)]


def telecom_text(seed: int, words: int = 120) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(TELECOM) if rng.random() < 0.3 else rng.choice(FILLER) for _ in range(words))


def plain_text(seed: int, words: int = 120) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(FILLER) for _ in range(words))


def write_rows(spark, cfg, contract, rows: list[dict], name: str) -> None:
    df = spark.createDataFrame([tuple(r[f] for f in contract.schema.names) for r in rows], spark_schema(contract.schema))
    lake.write_dataframe(cfg, df, contract, batch=lake.Batch(app_id=f"test.{name}", version=1))


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def judge(spark, cfg, source: str, p_yes: dict[str, float], name: str) -> None:
    """silver.relevance rows as the judge writes them: keep when p_yes >= 0.5."""
    now = utc_now()
    rows = [{"doc_id": d, "source": source, "category": "wiki" if source == "wikipedia" else "web", "model": "m",
             "model_revision": "r", "prompt_version": "p1", "prompt_name": "wiki", "p_yes": p, "threshold": 0.5,
             "verdict": "keep" if p >= 0.5 else "drop", "reason": "llm_yes" if p >= 0.5 else "llm_no",
             "truncated": False, "prompt_tokens": 10, "result_key": d, "judged_at": now} for d, p in p_yes.items()]
    write_rows(spark, cfg, RELEVANCE, rows, name)


@pytest.fixture
def gold_inputs(spark, lake_cfg, tmp_path):
    """Returns the raw folder; the lake holds wikipedia, web, arxiv and slimpajama inputs.

    wiki w1..w6 telecom (w6 judged off-topic), w7 not telecom; web: a copy of w1 (exact, other case),
    a near copy of w2, three telecom pages of its own, one short page; arXiv: two cleaned papers, one
    dropped by cleaning; slimpajama: 200 general documents."""
    raw = tmp_path / "raw"
    wiki = [{"id": f"w{i}", "title": f"Article {i}", "url": f"https://en.wikipedia.org/wiki/A{i}",
             "text": telecom_text(i)} for i in range(1, 7)] + [{"id": "w7", "title": "Bread", "url": "u7",
                                                                   "text": plain_text(7)}]
    near = wiki[1]["text"].split()
    near[5] = near[60] = "changed"
    web = [{"id": "c1", "url": "https://copy.example/a1", "text": wiki[0]["text"].upper()},
           {"id": "c2", "url": "https://copy.example/a2", "text": " ".join(near)},
           *[{"id": f"p{i}", "url": f"https://telco.example/{i}", "text": telecom_text(100 + i)} for i in range(3)],
           {"id": "short", "url": "https://telco.example/short", "text": "5G base station radio access network"}]
    general = [{"text": plain_text(1000 + i, 60), "meta": {"redpajama_set_name": "RedPajamaC4"}} for i in range(200)]
    _jsonl(raw / "wiki" / "part-0.jsonl", wiki)
    _jsonl(raw / "web" / "part-0.jsonl", web)
    _jsonl(raw / "general" / "part-0.jsonl", general)
    for source, category, fmt, folder in (("wikipedia", "wiki", "jsonl", "wiki"), ("webcrawl", "web", "jsonl", "web"),
                                          ("slimpajama", "general", "slimpajama_jsonl", "general")):
        run_ingest(spark, lake_cfg, IngestSpec(source=source, category=category, format=fmt, paths=[str(raw / folder)]))
    run_keywords(spark, lake_cfg, KeywordSpec(sources=["wikipedia", "webcrawl"], lexicon="conf/lexicon/telecom_v1.yaml"))
    docs = {t: lake.read_arrow(lake_cfg, f"bronze.{t}", columns=["doc_id", "source_id"]).to_pylist()
            for t in ("wikipedia", "webcrawl")}
    judge(spark, lake_cfg, "wikipedia", {d["doc_id"]: 0.1 if d["source_id"] == "w6" else 0.9 for d in docs["wikipedia"]},
          "judge-wiki")
    judge(spark, lake_cfg, "webcrawl", {d["doc_id"]: 0.8 for d in docs["webcrawl"]}, "judge-web")
    now = utc_now()
    papers = [("a1", "2401.00001v2", "keep", "clean"), ("a2", "2401.00002", "keep", "clean"),
              ("a3", "2401.00003", "drop", "not_clean:floats")]
    write_rows(spark, lake_cfg, sources_contract("arxiv"), [
        {"doc_id": d, "source": "arxiv", "category": "arxiv", "source_id": aid, "url": None, "title": f"Paper {d}",
         "abstract": "An abstract.", "files": [{"path": "main.tex", "data": b"x"}], "skipped": [], "total_bytes": 1,
         "metadata": "{}", "source_file": f"/raw/{aid}.tar.gz", "source_location": "file", "ingest_batch": "t",
         "ingested_at": now} for d, aid, _, _ in papers], "arxiv-sources")
    texts = {d: f"\\section{{Paper {d}}} " + telecom_text(500 + i, 200) for i, (d, *_) in enumerate(papers)}
    write_rows(spark, lake_cfg, CLEANED, [
        {"doc_id": d, "source": "arxiv", "category": "arxiv", "source_id": aid, "title": f"Paper {d}",
         "text": texts[d], "text_chars": len(texts[d]), "verdict": v, "reason": r,
         "checks": {"comments": 0, "macro_definitions": 0, "unexpanded_macros": 0, "floats": int(v == "drop"),
                    "display_equations_lost": 0}, "cited": [], "bibliography": "[]",
         "metadata": json.dumps({"arxiv_id": aid, "abstract": f"Abstract of {d}.", "title": f"Paper {d}"}),
         "rules_version": "latex-commands-v2", "clean_batch": "t", "cleaned_at": now}
        for d, aid, v, r in papers], "cleaned")
    return raw
