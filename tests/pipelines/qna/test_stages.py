"""Tele-Eval on local Spark: generation through the result store, every bad output quarantined with
its raw text, the filter chain with the embedded model as answerability judge, dedup and
decontamination against gold.benchmarks, gold.tele_eval with source ids, idempotent reruns."""
import json

import pytest

from pipelines import lake
from pipelines.benchmarks.stage import BenchmarkSource, ImportSpec, run_import
from pipelines.ingest.parse import utc_now
from pipelines.llm.backend import BackendConfig
from pipelines.llm.models import resolve
from pipelines.llm.prompts import Renderer, load_prompt_set
from pipelines.llm.requests import render_request, worker_tokenizer
from pipelines.qna.chunk import ChunkSpec, chunk_spans
from pipelines.qna.filter_stage import Answerability, FilterSpec, run_filter
from pipelines.qna.generate import TASK, GenerateSpec, run_generate
from schemas import LLM_RESULTS, TELE_DATA
from tests.conftest import ROOT
from tests.pipelines.gold.conftest import write_rows

pytestmark = pytest.mark.spark
PROMPTS = str(ROOT / "conf" / "prompts" / "tele_llms_v1.yaml")
BACKEND = BackendConfig(kind="transformers", max_context_tokens=1024)
SPEC = GenerateSpec(prompts=PROMPTS, max_tokens=200, chunk=ChunkSpec(size=600, min_chars=100))

AMF = ("The access and mobility management function (AMF) terminates the NAS signalling of the UE and handles "
       "registration, connection and mobility management in the 5G core network. ")
PILOTS = ("Massive MIMO base stations estimate channels from uplink pilots that are reused across cells, so pilot "
          "contamination limits the achievable rate. ")
DOCS = {  # chunks of at most 600 characters: wiki_1 gives two, arxiv_1 three
    "wiki_1": ("wiki", AMF * 3 + "\n\n" + "The session management function (SMF) sets up PDU sessions and selects the "
                                          "user plane function that anchors them. " * 3),
    "arxiv_1": ("arxiv", "\n\n".join(f"Part {i}. " + PILOTS * 3 for i in range(3))),
    "standard_1": ("standard", "Tiny."),   # shorter than min_chars: recorded, not sent
}

OUTPUTS = {  # the generator's output for each chunk, by source id and chunk index
    ("wiki_1", 0): "\n".join([
        "Question 1: Which 5G core function handles registration and mobility of the UE?",
        "Answer 1: The AMF.",
        "Question 2: In this paper, which function terminates NAS signalling?", "Answer 2: The AMF.",
        "Question 3: Is it so that the access and mobility management function (AMF) terminates the NAS signalling of "
        "the UE and handles registration?", "Answer 3: It is.",
        "Question 4: Which 5G core network function handles UE registration and mobility management?",
        "Answer 4: The AMF.",
        "Question 5: Which 5G core function handles the registration and mobility of the UE?",
        "Answer 5: The AMF handles them."]),
    ("wiki_1", 1): "Question 1: Which function sets up PDU sessions in the 5G core?\nAnswer 1: The SMF.\n"
                   "Question 2: Which function anchors PDU sessions?",                          # truncated
    ("arxiv_1", 0): json.dumps([{"question": f"What limits massive MIMO rates, reason {i}?", "answer": "Pilot "
                                "contamination."} for i in range(9)]),                               # 9 pairs
    ("arxiv_1", 1): "",                                                                            # empty
    ("arxiv_1", 2): "I cannot help with that request.",                                            # not parseable
}


@pytest.fixture
def tele_data(spark, lake_cfg):
    now = utc_now()
    rows = [{"id": i, "category": c, "content": t, "metadata": "{}", "doc_id": f"d_{i}", "source": c,
             "content_chars": len(t), "tokens": len(t.split()), "lineage": "{}", "assembly": "t", "assembled_at": now}
            for i, (c, t) in DOCS.items()]
    write_rows(spark, lake_cfg, TELE_DATA, rows, "tele-data")
    return lake_cfg


def _store_outputs(spark, cfg, spec: GenerateSpec) -> int:
    """Put the OUTPUTS into the result store under the keys the stage will compute: the stage then
    sends nothing to the model and parses exactly these texts."""
    model = resolve(BACKEND.model)
    prompts = load_prompt_set(spec.prompts)
    prompt = prompts.get(spec.prompt)
    renderer = Renderer(worker_tokenizer(model.path), BACKEND.max_context_tokens - spec.max_tokens)
    now, rows = utc_now(), []
    for sid, (_, text) in DOCS.items():
        for i, (a, b) in enumerate(chunk_spans(text, spec.chunk.size)):
            if (sid, i) not in OUTPUTS:
                continue
            req = render_request(renderer, TASK, model, prompts.version, prompt, spec.sampling().to_json(), text[a:b],
                                 f"{sid}:{a}-{b}")
            rows.append({**{k: req[k] for k in ("key", "task", "prompt_name", "params", "prompt_tokens", "truncated")},
                         "model": model.name, "model_revision": model.revision, "prompt_version": prompts.version,
                         "output": json.dumps([OUTPUTS[(sid, i)]]), "error": None, "created_at": now})
    write_rows(spark, cfg, LLM_RESULTS, rows, "stored-outputs")
    return len(rows)


def test_generation_parses_every_output_and_quarantines_what_it_cannot_use(spark, tele_data):
    cfg = tele_data
    assert _store_outputs(spark, cfg, SPEC) == 5
    r = run_generate(spark, cfg, SPEC, BACKEND)
    s = r.summary
    assert r.model_calls == 0                                    # every result came from the store
    assert s.read == 6 and s.kept == 3 and dict(s.dropped) == {"chunk_too_short": 1}
    assert dict(s.rejected) == {"empty_output": 1, "unparseable_output": 1}
    assert r.pairs == 5 + 1 + 5 and r.pair_problems == {"truncated_pair": 1, "extra_pair": 4}
    pairs = lake.read_arrow(cfg, "silver.qna_pairs").to_pylist()
    nine = [p for p in pairs if p["source_id"] == "arxiv_1"]
    assert len(nine) == 5 and {tuple(p["parse_notes"]) for p in nine} == {("extra_pairs:4",)}
    assert {p["parse_format"] for p in nine} == {"json"}
    cut = [p for p in pairs if p["question"].startswith("Which function sets up")]
    assert cut[0]["parse_notes"] == ["truncated", "fewer_pairs:1"] and cut[0]["source_id"] == "wiki_1"
    rejects = lake.read_arrow(cfg, "quarantine.rejected").to_pylist()
    by_reason = {}
    for x in rejects:
        by_reason.setdefault(x["reason"], []).append(x)
    assert by_reason["unparseable_output"][0]["raw"] == b"I cannot help with that request."
    assert by_reason["truncated_pair"][0]["raw"] == b"Question 2: Which function anchors PDU sessions?"
    assert all(x["job"] == "qna_generate" and x["source_location"].startswith("chunk=") for x in rejects)
    chunks = lake.read_arrow(cfg, "silver.qna_chunks").to_pylist()
    text = DOCS["wiki_1"][1]
    assert all(c["text"] == text[c["char_start"]:c["char_end"]] for c in chunks if c["source_id"] == "wiki_1")

    again = run_generate(spark, cfg, SPEC, BACKEND)
    assert again.summary.already_committed and again.pairs == r.pairs
    assert len(lake.read_arrow(cfg, "quarantine.rejected")) == len(rejects)


@pytest.mark.slow
def test_filter_chain_ledger_gold_and_report(spark, tele_data, tmp_path):
    cfg = tele_data
    _store_outputs(spark, cfg, SPEC)
    run_generate(spark, cfg, SPEC, BACKEND)
    bench = tmp_path / "teleqna.json"
    bench.write_text(json.dumps({"question 0": {
        "question": "Which 5G core network function handles UE registration and mobility management?",
        "option 1": "AMF", "option 2": "SMF", "answer": "option 1: AMF", "category": "Standards overview"}}))
    run_import(spark, cfg, ImportSpec(sources=[BenchmarkSource(category="teleqna", format="teleqna_json",
                                                               paths=[str(bench)])]))
    spec = FilterSpec(generation_prompts=PROMPTS, regex=str(ROOT / "conf" / "qna" / "filters.yaml"),
                      report=str(tmp_path / "report"), answerability=Answerability(prompts=PROMPTS, threshold=0.0))
    r = run_filter(spark, cfg, spec, BACKEND)
    ledger = {x["pair_id"]: x for x in lake.read_arrow(cfg, "silver.qna_verdicts").to_pylist()}
    pairs = {p["question"]: p["pair_id"] for p in lake.read_arrow(cfg, "silver.qna_pairs").to_pylist()}

    def verdict(q_start: str) -> tuple[str, str]:
        (pid,) = [p for q, p in pairs.items() if q.startswith(q_start)]
        return ledger[pid]["stage"], ledger[pid]["reason"]

    assert verdict("In this paper") == ("regex", "in_this_paper")
    assert verdict("Is it so that the access") == ("form", "copies_passage")
    assert verdict("Which 5G core network function handles UE registration") == ("decontamination", "benchmark_overlap")
    # two near-identical questions: one stays, the other is a near duplicate of it
    a = verdict("Which 5G core function handles registration and mobility of the UE")
    b = verdict("Which 5G core function handles the registration")
    assert sorted([a[0], b[0]]) == ["dedup", "kept"] and "near_duplicate" in (a[1], b[1])
    s = r.summary
    assert s.read == len(ledger) == 11 and s.read == s.kept + s.n_dropped + s.n_rejected
    assert r.funnel["generated"] == 11 and r.funnel["decontamination"] == s.kept
    assert all(x["p_answerable"] is not None for x in ledger.values() if x["stage"] in ("kept", "dedup"))
    gold = lake.read_arrow(cfg, "gold.tele_eval").to_pylist()
    assert len(gold) == s.kept and {g["ID"] for g in gold} <= {"wiki_1", "arxiv_1"}
    assert all(g["chunk_id"].startswith(g["ID"] + ":") for g in gold)
    for name in ("report.md", "funnel.png", "filters.png", "p_answerable.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert "in_this_paper" in (tmp_path / "report" / "report.md").read_text()

    again = run_filter(spark, cfg, spec, BACKEND)
    assert again.summary.already_committed and again.funnel == r.funnel
    stricter = run_filter(spark, cfg, FilterSpec(**{**spec.__dict__, "answerability": Answerability(
        prompts=PROMPTS, threshold=0.99)}), BACKEND)
    assert stricter.model_calls == 0 and stricter.summary.kept < s.kept   # new threshold, judgements from the store
