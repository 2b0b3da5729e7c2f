"""Generation metrics: BLEU / ROUGE-L / BERTScore on literal pairs, the paired bootstrap, and the stage
on a real release (instructions' test split) with two models, the judge's RAGAS-style metrics and the
comparison of the second model against the first."""
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from eval.calls import LakeCalls
from eval import bootstrap, textmetrics


def test_lexical_metrics_rank_a_close_answer_above_an_unrelated_one():
    ref = ["The AMF handles registration and mobility management."] * 2
    pred = ["The AMF handles registration and mobility.", "Bananas are yellow."]
    for n in textmetrics.BLEU_ORDERS:
        b = textmetrics.bleu(pred, ref, n)
        assert b[0] > b[1] and 0 <= b[1] <= b[0] <= 100
    r = textmetrics.rouge_l(pred, ref)
    assert r[0] == pytest.approx(2 * 6 / (6 + 7) , abs=0.02) and r[1] == 0.0
    assert textmetrics.bleu(["same words here"], ["same words here"], 4)[0] == pytest.approx(100.0)
    score, signature = textmetrics.corpus_bleu(pred, ref)
    assert 0 < score < 100 and "nrefs:1" in signature
    with pytest.raises(ValueError, match="2 predictions against 1"):
        textmetrics.rouge_l(pred, ref[:1])


def test_bertscore_with_the_local_minilm():
    from eval.embed import embedder_folder

    b = textmetrics.BertScore(str(embedder_folder("embedded:all-minilm-l6-v2")), 6)
    s = b(["The AMF handles registration.", "Bananas are yellow."], ["The AMF handles registration and mobility."] * 2)
    assert s["f1"][0] > s["f1"][1] and s["precision"][0] > 0.8
    # a shorter answer whose every token is in the reference: precision above recall; identical: all 1
    assert s["precision"][0] > s["recall"][0]
    same = b(["The AMF handles registration."], ["The AMF handles registration."])
    assert same["precision"][0] == pytest.approx(1.0, abs=1e-5) and same["f1"][0] == pytest.approx(1.0, abs=1e-5)
    empty = b([""], ["The AMF."])
    assert empty["f1"][0] == 0.0 and b([], [])["f1"].size == 0
    with pytest.raises(ValueError, match="layer 9 is outside"):
        textmetrics.BertScore(str(embedder_folder("embedded:all-minilm-l6-v2")), 9)


def test_paired_bootstrap_finds_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    a = rng.normal(0.5, 0.1, 200)
    better = bootstrap.paired(a, a + 0.05 + rng.normal(0, 0.01, 200), seed=1)
    assert better.significant and better.diff.low > 0 and better.p_value < 0.01
    same = bootstrap.paired(a, a.copy(), seed=1)
    assert not same.significant and same.p_value == 1.0 and same.diff.mean == 0
    noise = bootstrap.paired(a, a + rng.normal(0, 0.1, 200), seed=1)
    assert noise.diff.low < 0 < noise.diff.high
    ci = bootstrap.confidence_interval(a, seed=2)
    assert ci.low < a.mean() < ci.high
    with pytest.raises(ValueError, match="same items"):
        bootstrap.paired([1.0], [1.0, 2.0])


def test_statements_split_answers_into_judged_units():
    assert textmetrics.statements("The AMF registers UEs. It handles mobility!\nIt is in the core; ok") == [
        "The AMF registers UEs.", "It handles mobility!", "It is in the core;"]


@pytest.mark.spark
def test_the_stage_scores_two_models_with_the_judge_and_compares_them(spark, lake_cfg, tmp_path):
    from eval.generation import GenerationSpec, evaluate
    from eval.subjects import Subject
    from pipelines.release.create import ReleaseSpec, create_release
    from schemas import INSTRUCTIONS
    from tests.eval.test_tele_eval import _tiny
    from tests.pipelines.gold.conftest import write_rows
    from tests.pipelines.release.test_release import gold_rows, write_gold
    from tests.pipelines.tokenize.conftest import instruction_rows

    write_gold(spark, lake_cfg, gold_rows(1, 4), "g")
    write_rows(spark, lake_cfg, INSTRUCTIONS, instruction_rows(30), "i")
    create_release(spark, lake_cfg, "r1", ReleaseSpec())
    subjects = [Subject(name="embedded", path="embedded:smollm2-135m-instruct"),
                Subject(name="tiny", path=str(_tiny(tmp_path / "tiny")))]
    spec = GenerationSpec(release="r1", limit=3, max_new_tokens=16, max_statements=2, resamples=200)
    out = tmp_path / "res"
    first, second = evaluate(LakeCalls(spark, lake_cfg), lake_cfg, spec, subjects, out)
    rows = pq.read_table(out / "embedded" / "generation.parquet").to_pylist()
    assert len(rows) == first.items == 3 and {r["reference"] for r in rows} <= {f"Title number {i}" for i in range(30)}
    answered = [r for r in rows if r["prediction"] is not None]
    assert first.counts["rouge_l"] == len(answered) == 3 and all(0 <= r["rouge_l"] <= 1 for r in rows)
    assert first.counts["faithfulness"] == sum(r["faithfulness"] is not None for r in rows)
    assert all(r["answer_correctness"] is None or 0 <= r["answer_correctness"] <= 1 for r in rows)
    assert first.against_first is None and set(second.against_first) >= {"rouge_l", "bleu4", "bertscore_f1"}
    assert all(v["n"] <= 3 and 0 <= v["p_value"] <= 1 for v in second.against_first.values())
    assert json.loads((out / "tiny" / "generation.json").read_text())["items"] == 3
