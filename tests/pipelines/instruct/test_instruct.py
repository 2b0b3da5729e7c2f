"""gold.instructions on local Spark: imports with bad records quarantined, MCQ answering from the
benchmark splits, literature tasks from a small citation graph; and the pure literature helpers."""
import json

import pytest

from pipelines import lake
from pipelines.benchmarks.stage import BenchmarkSource, ImportSpec, run_import
from pipelines.ingest.parse import utc_now
from pipelines.instruct import literature as lit
from pipelines.instruct.stage import ImportSource, InstructSpec, LiteratureSpec, McqSpec, run_instruct
from schemas import CLEANED, TELE_DATA
from tests.conftest import ROOT
from tests.pipelines.gold.conftest import write_rows

TEMPLATES = str(ROOT / "conf" / "instruct" / "templates.yaml")
N = 14


def title(i: int) -> str:
    return f"Study number {i} of uplink scheduling in dense cellular networks"


def paper(i: int) -> tuple[dict, dict]:
    """Paper i cites papers i+1 (by title, .bib style) and i+2 (by arXiv id, .bbl style)."""
    a, b = (i % N) + 1, ((i + 1) % N) + 1
    abstract = "" if i == 3 else f"\\begin{{abstract}}\nWe study scheduling {i}. It gains {i} percent.\n\\end{{abstract}}\n"
    body = (f"\\title{{{title(i)}}}\n{abstract}\\section{{Introduction}}\nScheduling matters in dense cells. Earlier work "
            f"\\cite{{k{a}}} shows gains. Another approach \\cite{{k{b},other}} uses learning.\n"
            f"\\section{{Model}}\nThe model has {i} cells.\n")
    bib = [{"key": f"k{a}", "type": "article", "text": title(a)},
           {"key": f"k{b}", "text": f"A. Author, “Some other words,” arXiv:2401.{b:05d}, 2024."},
           {"key": "other", "text": "B. Writer, A Paper Outside the Corpus Entirely, IEEE, 2020."}]
    meta = {"Arxiv_id": f"2401.{i:05d}", "Title": title(i), "Abstract": None if i == 3 else
            (f"We study scheduling {i}." if i == 4 else f"We study scheduling {i}. It gains {i} percent.")}
    gold = {"id": f"arxiv_{i}", "category": "arxiv", "content": body, "metadata": json.dumps(meta),
            "doc_id": f"d{i}", "source": "arxiv", "content_chars": len(body), "tokens": 10, "lineage": "{}",
            "assembly": "t", "assembled_at": utc_now()}
    cleaned = {"doc_id": f"d{i}", "source": "arxiv", "category": "arxiv", "source_id": f"2401.{i:05d}",
               "title": title(i), "text": body, "text_chars": len(body), "verdict": "keep", "reason": "clean",
               "checks": {k: 0 for k in ("comments", "macro_definitions", "unexpanded_macros", "floats",
                                         "display_equations_lost")},
               "cited": [f"k{a}", f"k{b}", "other"], "bibliography": json.dumps(bib), "metadata": "{}",
               "rules_version": "v", "clean_batch": "t", "cleaned_at": utc_now()}
    return gold, cleaned


@pytest.fixture
def corpus(spark, lake_cfg, tmp_path):
    rows = [paper(i) for i in range(1, N + 1)]
    write_rows(spark, lake_cfg, TELE_DATA, [g for g, _ in rows], "gold")
    write_rows(spark, lake_cfg, CLEANED, [c for _, c in rows], "cleaned")
    items = {f"question {i}": {"question": f"Which scheduler suits traffic class number {i}?", "option 1": "PF",
                               "option 2": "RR", "option 3": f"EDF-{i}", "answer": "option 3: EDF-" + str(i),
                               "category": "Research overview"} for i in range(60)}
    (tmp_path / "q.json").write_text(json.dumps(items))
    run_import(spark, lake_cfg, ImportSpec(sources=[BenchmarkSource(category="teleqna", format="teleqna_json",
                                                                    paths=[str(tmp_path / "q.json")])]))
    (tmp_path / "alpaca.json").write_text(json.dumps([
        {"instruction": "Define SINR.", "input": "", "output": "Signal to interference plus noise ratio."},
        {"instruction": "Convert to dB.", "input": "100", "output": "20 dB"},
        {"instruction": "", "input": "", "output": "nothing asked"},
        {"instruction": "Missing its output."}]))
    (tmp_path / "oi.jsonl").write_text("\n".join([
        json.dumps({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is a UE?"},
                                 {"role": "assistant", "content": "User equipment."}]}),
        json.dumps({"prompt": "Name an RAT.", "response": "NR"}),
        "{broken",
        json.dumps({"prompt": "Number?", "response": 5})]) + "\n")
    return tmp_path


def spec(tmp, **lit_kw) -> InstructSpec:
    return InstructSpec(imports=[ImportSource(source="alpaca", format="alpaca", paths=[str(tmp / "alpaca.json")]),
                                 ImportSource(source="open_instruct", format="open_instruct", paths=[str(tmp / "oi.jsonl")])],
                        mcq=McqSpec(), literature=LiteratureSpec(**lit_kw), templates=TEMPLATES)


@pytest.mark.spark
def test_build_every_task_with_accounting_and_quarantine(spark, lake_cfg, corpus):
    r = run_instruct(spark, lake_cfg, spec(corpus))
    by = {s.source: s for s in r.summaries}
    assert all(s.read == s.kept + s.n_dropped + s.n_rejected for s in r.summaries)
    assert (by["alpaca"].kept, dict(by["alpaca"].rejected)) == (2, {"empty_instruction": 1, "missing_field": 1})
    assert (by["open_instruct"].kept, dict(by["open_instruct"].rejected)) == (2, {"malformed_json": 1, "wrong_type": 1})
    assert by["title_generation"].kept == N - 1 and dict(by["title_generation"].dropped) == {"no_abstract": 1}
    assert dict(by["abstract_completion"].dropped) == {"no_abstract": 1, "one_sentence_abstract": 1}
    assert by["intro_to_abstract"].kept == N - 1
    assert r.edges == 2 * N                                     # every paper cites two others; "other" is outside
    assert by["citation_link"].read == 2 * N and by["citation_sentence"].kept == 2 * N
    rows = lake.read_arrow(lake_cfg, "gold.instructions").to_pylist()
    links = [x for x in rows if x["task"] == "citation_link"]
    # one negative per edge; two edges of a paper may draw the same negative, which is then one example
    assert sum(x["output"] == "Yes" for x in links) == 2 * N and 1.5 * N <= sum(x["output"] == "No" for x in links) <= 2 * N
    cited = {(f"arxiv_{i}", f"arxiv_{(i % N) + 1}") for i in range(1, N + 1)} | \
            {(f"arxiv_{i}", f"arxiv_{((i + 1) % N) + 1}") for i in range(1, N + 1)}
    assert all((tuple(x["source_ids"]) in cited) == (x["output"] == "Yes") for x in links)
    rec = [x for x in rows if x["task"] == "citation_recommendation"]
    assert len(rec) == 2 * N and all(len(x["source_ids"]) == 12 for x in rec)   # citing + cited + 10 negatives
    for x in rec:
        n, answer = x["output"].split(". ", 1)
        assert x["input"].split("Candidates:\n")[1].splitlines()[int(n) - 1] == f"{n}. {answer}"
        assert answer == title(int(x["source_ids"][1].split("_")[1]))
    sentence = next(x for x in rows if x["task"] == "citation_sentence" and x["source_ids"] == ["arxiv_1", "arxiv_2"])
    assert sentence["output"] == "Earlier work [citation] shows gains."
    mcq = [x for x in rows if x["task"] == "mcq_answering"]
    assert mcq and {x["split"] for x in mcq} <= {"train", "val"} and all(x["output"].startswith("3. EDF-") for x in mcq)
    assert {x["split"] for x in rows if x["task"] == "title_generation"} <= {"train", "test"}
    system = next(x for x in rows if x["task"] == "open_instruct" and x["output"] == "User equipment.")
    assert system["instruction"] == "Be brief.\n\nWhat is a UE?"
    rejects = {(x["reason"], x["source_location"]) for x in lake.read_arrow(lake_cfg, "quarantine.rejected").to_pylist()
               if x["job"] == "instruct"}
    assert ("malformed_json", "line=3") in rejects and ("missing_field", "index=3") in rejects

    again = run_instruct(spark, lake_cfg, spec(corpus))
    assert again.already_committed and again.rows == r.rows
    small = run_instruct(spark, lake_cfg, spec(corpus, recommendation_negatives=N))
    assert dict({s.source: s for s in small.summaries}["citation_recommendation"].dropped) == \
        {"too_few_negatives": 2 * N}


def test_literature_helpers():
    head, tail = lit.split_abstract("First part is here. Second part is here.")
    assert (head, tail) == ("First part is here.", "Second part is here.")
    assert lit.split_abstract("Only one sentence") is None
    ids, keys = lit.entry_candidates('J. Doe, "Beam Training for Large Surfaces," in Proc. ICC, arXiv:2402.01234v2.')
    assert ids == ["2402.01234"] and "beam training for large surfaces" in keys
    assert lit.introduction_of("\\section{Intro}x\\section{Introduction}Body text. More.\\section{Model}y", 100) == \
        "Body text. More."
    assert lit.citing_sentences("A longer claim \\cite{a,b}. Another one \\cite{c} here.", "b") == \
        ["A longer claim [citation]."]
    pool = [f"p{i}" for i in range(100)]
    picked = lit.pick_negatives("seed", pool, {"p1", "p2"}, 10)
    assert len(set(picked)) == 10 and not {"p1", "p2"} & set(picked) and picked == lit.pick_negatives("seed", pool,
                                                                                                      {"p1", "p2"}, 10)
