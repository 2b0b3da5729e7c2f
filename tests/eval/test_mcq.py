"""MCQ benchmarks: choice extraction and voting on literal answers, and the stage on a real release
(generate with Pass@1 / Maj@k, log-likelihood choice scoring) with per-group counts and baselines."""
import json

import pyarrow.parquet as pq
import pytest

from eval.calls import LakeCalls
from eval import choice

OPTIONS = ["AMF", "SMF", "UPF", "5G NR", "5G NR-U"]


@pytest.mark.parametrize("answer, expected", [
    ("3", 2), ("Option 2", 1), ("The answer is (a).", 0), ("Answer: 4)", 3), ("C. UPF", 2),
    ("A UPF is the user-plane function", 2),  # "A" is an article here, the text names option 3
    ("It is the SMF that allocates the address", 1), ("I think 5G NR-U", 4), ("option 9", None),
    ("", None), ("no idea", None), ("AMF or SMF", None)])
def test_the_named_option_is_extracted_or_none(answer, expected):
    assert choice.extract(answer, OPTIONS) == expected


def test_majority_vote_ignores_unreadable_samples_and_breaks_ties_by_first_reached():
    assert choice.majority([1, None, 2, 2, 1]) == 1 and choice.majority([None, None]) is None
    assert choice.majority([3, None, 3, 0]) == 3
    assert choice.majority_baseline([0, 0, 1, 2]) == 0.5


@pytest.mark.spark
def test_the_stage_scores_seen_and_unseen_per_category_with_baselines(spark, lake_cfg, tmp_path):
    from eval.calls import EvalInputError
    from eval.mcq import McqSpec, evaluate
    from eval.subjects import Subject
    from pipelines.release.create import ReleaseSpec, create_release
    from tests.eval.conftest import write_benchmarks
    from tests.pipelines.release.test_release import gold_rows, write_gold

    write_gold(spark, lake_cfg, gold_rows(1, 4), "g")
    write_benchmarks(spark, lake_cfg, per_split=3)
    create_release(spark, lake_cfg, "r1", ReleaseSpec())
    subjects = [Subject(name="embedded", path="embedded:smollm2-135m-instruct")]
    out = tmp_path / "res"
    (gen,) = evaluate(LakeCalls(spark, lake_cfg), lake_cfg, McqSpec(release="r1", k=2, max_new_tokens=6), subjects, out)
    groups = {(g.category, g.split): g for g in gen.groups}
    assert set(groups) == {("teleqna", "train"), ("teleqna", "test"), ("all", "train"), ("all", "test")}
    assert all(g.items == 3 for k, g in groups.items()) and groups[("teleqna", "train")].baseline == pytest.approx(2 / 3)
    rows = pq.read_table(out / "embedded" / "mcq_generate.parquet").to_pylist()
    assert len(rows) == 6 and all(len(r["sample_choices"]) == 2 for r in rows)
    for r in rows:
        assert r["pass_at_1"] == (r["greedy_choice"] == r["answer"])
        assert (r["failure"] == "no_choice_found") == (r["greedy_choice"] is None)
    t = groups[("teleqna", "test")]
    assert t.pass_at_1 == sum(r["pass_at_1"] for r in rows if r["split"] == "test") / 3
    (ll,) = evaluate(LakeCalls(spark, lake_cfg), lake_cfg, McqSpec(release="r1", mode="loglik"), subjects, out)
    rows = pq.read_table(out / "embedded" / "mcq_loglik.parquet").to_pylist()
    assert all(r["loglik_choice"] is not None and r["failure"] is None for r in rows)
    assert json.loads((out / "embedded" / "mcq_loglik.json").read_text())["mode"] == "loglik"
    with pytest.raises(EvalInputError, match="oranbench/train.*empty split"):
        evaluate(LakeCalls(spark, lake_cfg), lake_cfg, McqSpec(release="r1", categories=["teleqna", "oranbench"]), subjects, out)
