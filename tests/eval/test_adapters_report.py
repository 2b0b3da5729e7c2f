"""The adapter report from per-item MCQ results on disk: the gain over zero-shot, and the adapter against
the majority baseline's constant answer (how often each model names it, wins and losses, the paired
difference), so a report tells an adapter that learned the answer-position prior from one that knows more."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval import adapters
from eval.calls import safe_name
from eval.mcq import ITEM_SCHEMA

# 10 unseen items: option 1 (index 0) is the answer of 7, option 2 of 3.
ANSWERS = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]


def _write(eval_dir, model, choices, answers=ANSWERS):
    rows = [{"item_id": f"i{n}", "category": "srsranbench", "split": "test", "answer": a,
             "greedy_text": None if c is None else str(c + 1), "greedy_choice": c, "sample_choices": None,
             "majority_choice": None, "loglik_choice": None, "pass_at_1": c == a, "maj_at_k": None,
             "failure": "no_choice_found" if c is None else None}
            for n, (a, c) in enumerate(zip(answers, choices))]
    path = eval_dir / safe_name(model) / "mcq_generate.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=ITEM_SCHEMA), path)


def _rows(tmp_path, zero, adapter, answers=ANSWERS):
    _write(tmp_path / "eval", "zero-shot", zero, answers)
    _write(tmp_path / "eval", "lora-srsranbench", adapter, answers)
    return adapters.category_rows(tmp_path / "eval", "zero-shot", {"srsranbench": "lora-srsranbench"}, None,
                                  {"srsranbench": 19_593_064}, resamples=500)


def test_an_adapter_that_only_learned_the_prior_ties_the_baseline(tmp_path):
    zero = [0, None, None, 2, 0, None, 3, 1, None, 2]  # often no option at all
    [row] = _rows(tmp_path, zero, [0] * 10)  # always option 1
    assert row.baseline == 0.7 and row.adapter.pass_at_1 == 0.7 and row.zero_shot.pass_at_1 == pytest.approx(0.3)
    assert row.gain_points == pytest.approx(40.0) and row.goal_met is False  # +40 over zero-shot, not over the prior
    assert row.goal_text == "**not met**"
    p = row.prior
    assert (p.option, p.adapter_picks, p.zero_shot_picks) == (0, 1.0, 0.2)
    assert (p.wins, p.losses, p.diff_points, p.diff_low, p.diff_high) == (0, 0, 0.0, 0.0, 0.0)


def test_an_adapter_that_trades_sure_items_for_fewer_wins_shows_as_a_net_loss(tmp_path):
    # option 2 named on 4 items: right on 2 of the 3 option-2 items, wrong on 2 option-1 items
    adapter = [0, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    [row] = _rows(tmp_path, [None] * 10, adapter)
    assert row.adapter.pass_at_1 == pytest.approx(0.7) and row.baseline == 0.7
    p = row.prior
    assert (p.wins, p.losses, p.adapter_picks) == (2, 2, 0.6) and p.diff_points == pytest.approx(0.0)
    adapter = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]  # right on all three option-2 items, one option-1 item lost
    row = _rows(tmp_path / "b", [None] * 10, adapter)[0]
    assert (row.prior.wins, row.prior.losses) == (3, 1) and row.prior.diff_points == pytest.approx(20.0)
    assert row.prior.diff_low <= 20.0 <= row.prior.diff_high and 0 <= row.prior.p_value <= 1
    assert row.goal_met is True  # above the baseline and ≥ 10 points over zero-shot (0 here)
    # but by 2 items in 10: the interval of adapter − baseline reaches below zero
    assert row.prior.diff_low <= 0 and row.beats_baseline_significantly is False
    assert row.goal_text == f"met, not significantly above the baseline (p {row.prior.p_value:.2f})"


def test_the_goal_is_met_outright_only_when_the_margin_over_the_baseline_holds(tmp_path):
    # 100 items, answer option 1 on 70: the adapter is right on 25 of the 30 others and loses 2 option-1 items
    answers = [0] * 70 + [1] * 30
    adapter = [0] * 68 + [1] * 2 + [1] * 25 + [0] * 5
    [row] = _rows(tmp_path, [None] * 100, adapter, answers)
    assert (row.prior.wins, row.prior.losses) == (25, 2) and row.prior.diff_points == pytest.approx(23.0)
    assert row.prior.diff_low > 0 and row.beats_baseline_significantly is True and row.goal_text == "met"
    path = adapters.write_report(tmp_path / "out", [row], k=4, title="t", notes=[])
    assert "| 19.59 | met |" in path.read_text()
    [stored] = json.loads((tmp_path / "out" / "adapters.json").read_text())
    assert stored["goal_met"] is True and stored["beats_baseline_significantly"] is True


def test_the_report_shows_the_comparison_with_the_constant_answer(tmp_path):
    rows = _rows(tmp_path, [0, None, None, 2, 0, None, 3, 1, None, 2], [0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    path = adapters.write_report(tmp_path / "out", rows, k=4, title="t", notes=[])
    text = path.read_text()
    assert "| srsranbench | unseen | adapter | option 1 | 20.0 | 60.0 | 3 | 1 | +20.0 (" in text
    [stored] = json.loads((tmp_path / "out" / "adapters.json").read_text())
    assert stored["prior"]["option"] == 0 and stored["prior"]["wins"] == 3 and stored["goal_met"] is True


def test_the_rank_table_sets_each_rank_against_zero_shot_and_the_baseline_on_the_same_items(tmp_path):
    _write(tmp_path / "eval", "zero-shot", [0, None, None, 2, 0, None, 3, 1, None, 2])  # 3 of 10
    _write(tmp_path / "eval", "lora-r4", [0] * 10)  # the prior: 7 of 10
    _write(tmp_path / "eval", "lora-r16", [0, 0, 0, 0, 0, 0, 1, 1, 1, 1])  # 9 of 10
    runs = {16: adapters.RankRun("lora-r16", 32.0, 19_593_064, 4_884_480, best_step=24, best_val=0.0712,
                                 tokens_per_s=141.5),
            4: adapters.RankRun("lora-r4", 8.0, 4_912_000, 1_221_120)}
    rows = adapters.rank_rows(tmp_path / "eval", "zero-shot", runs, "srsranbench", "test", resamples=300)
    assert [r.rank for r in rows] == [4, 16]
    r4, r16 = rows
    assert (r4.pass_at_1, r4.baseline, r4.gain_points, r4.prior.diff_points) == (0.7, 0.7, pytest.approx(40.0), 0.0)
    assert r16.pass_at_1 == pytest.approx(0.9) and r16.gain_points == pytest.approx(60.0)
    assert (r16.prior.wins, r16.prior.losses) == (3, 1) and r16.prior.diff_points == pytest.approx(20.0)
    path = adapters.write_rank_report(tmp_path / "out", rows, category="srsranbench", split="test", k=4, notes=[])
    text = path.read_text()
    assert "zero-shot backbone scores 30.0 Pass@1" in text and "(option 1 on every item) scores 70.0" in text
    assert "| 4 | 8 | 4.91 | 1,221,120 | – | – | 70.0 | – | +40.0 (" in text
    assert "| 16 | 32 | 19.59 | 4,884,480 | 0.0712 (24) | 142 | 90.0 | – | +60.0 (" in text
    assert (tmp_path / "out" / "rank_ablation.png").is_file()
    stored = json.loads((tmp_path / "out" / "rank_ablation.json").read_text())
    assert [s["rank"] for s in stored] == [4, 16] and stored[1]["prior"]["wins"] == 3
    _write(tmp_path / "other", "lora-r8", [0] * 10)
    _write(tmp_path / "other", "zero-shot", [0] * 5, answers=ANSWERS[:5])  # on half the items only
    with pytest.raises(ValueError, match="zero-shot was not evaluated on 5 of srsranbench/test"):
        adapters.rank_rows(tmp_path / "other", "zero-shot", {8: adapters.RankRun("lora-r8", 16.0, 1, 1)},
                           "srsranbench", "test")


def test_merged_adapters_are_scored_on_the_same_items_beside_the_others(tmp_path):
    _write(tmp_path / "eval", "zero-shot", [None] * 10)
    _write(tmp_path / "eval", "lora-srsranbench", [0] * 10)  # 7 of 10
    _write(tmp_path / "eval", "merged-ties", [0, 0, 0, 0, 0, 2, 2, 1, 1, 1])  # 8 of 10
    _write(tmp_path / "eval", "merged-dare_ties", [0] * 4, answers=ANSWERS[:4])  # not all of the items
    [row] = adapters.category_rows(tmp_path / "eval", "zero-shot", {"srsranbench": "lora-srsranbench"}, None,
                                   {"srsranbench": 19_593_064}, resamples=200,
                                   merged={"TIES merge": "merged-ties", "DARE-TIES merge": "merged-dare_ties"})
    assert list(row.merged) == ["TIES merge"] and row.merged["TIES merge"].pass_at_1 == pytest.approx(0.8)
    text = adapters.write_report(tmp_path / "out", [row], k=4, title="t", notes=[]).read_text()
    assert "| monolithic Maj@4 | TIES merge Pass@1 | TIES merge Maj@4 | adapter MB |" in text
    assert "| – | – | 80.0 | – | 19.59 |" in text
    [stored] = json.loads((tmp_path / "out" / "adapters.json").read_text())
    assert stored["merged"] == {"TIES merge": {"pass_at_1": 0.8, "maj_at_k": None}}


def test_a_merged_adapter_that_carries_another_categorys_prior_shows_against_the_constant(tmp_path):
    # the category's adapter names option 1 (the constant, 7 of 10); the merge names option 3, which
    # another category's adapter favoured: it names the constant on 2 items and loses 5 of them
    _write(tmp_path / "eval", "zero-shot", [None] * 10)
    _write(tmp_path / "eval", "lora-srsranbench", [0] * 10)
    _write(tmp_path / "eval", "merged-ties", [0, 0, 2, 2, 2, 2, 2, 1, 2, 2])
    _write(tmp_path / "eval", "lora-all", [0] * 9 + [1])
    [row] = adapters.category_rows(tmp_path / "eval", "zero-shot", {"srsranbench": "lora-srsranbench"}, "lora-all",
                                   {"srsranbench": 19_593_064}, resamples=200, merged={"TIES merge": "merged-ties"})
    assert list(row.other_priors) == ["monolithic", "TIES merge"]
    ties = row.other_priors["TIES merge"]
    assert (ties.option, ties.adapter_picks, ties.wins, ties.losses) == (0, 0.2, 1, 5)
    assert ties.diff_points == pytest.approx(-40.0) and ties.diff_low <= -40.0 <= ties.diff_high
    mono = row.other_priors["monolithic"]
    assert (mono.adapter_picks, mono.wins, mono.losses, mono.diff_points) == (0.9, 1, 0, pytest.approx(10.0))
    assert row.prior.adapter_picks == 1.0 and row.goal_met is False  # the category adapter's row is unchanged
    text = adapters.write_report(tmp_path / "out", [row], k=4, title="t", notes=[]).read_text()
    assert "| srsranbench | unseen | adapter | option 1 | 0.0 | 100.0 | 0 | 0 | +0.0 (" in text
    assert "| srsranbench | unseen | monolithic | option 1 | 0.0 | 90.0 | 1 | 0 | +10.0 (" in text
    assert "| srsranbench | unseen | TIES merge | option 1 | 0.0 | 20.0 | 1 | 5 | -40.0 (" in text
    [stored] = json.loads((tmp_path / "out" / "adapters.json").read_text())
    assert stored["other_priors"]["TIES merge"]["losses"] == 5
