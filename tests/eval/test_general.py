"""General skills: lm-evaluation-harness's prompt and scoring definitions on literal items, bad data
files named by line, and the stage on the bundled samples with the embedded model."""
import json

import pytest

from eval.calls import LakeCalls
from eval import general
from eval.calls import EvalInputError


def test_prompts_follow_the_harness_definitions():
    item = {"question": "What is 7 x 8? ", "subject": "elementary_mathematics", "choices": ["54", "56", "58", "64"],
            "answer": 1}
    assert general.mmlu_prompt(item) == ("The following are multiple choice questions (with answers) about elementary "
                                         "mathematics.\n\nWhat is 7 x 8?\nA. 54\nB. 56\nC. 58\nD. 64\nAnswer:")
    query, endings = general.hellaswag_prompt({"activity_label": "Making tea", "ctx_a": "A man boils water.",
                                               "ctx_b": "he", "endings": ["pours it [title] over tea.", "sings."]})
    assert query == "Making tea: A man boils water. He" and endings == [" pours it. over tea.", " sings."]
    assert general.gsm8k_prompt({"question": "How many?"}) == "Question: How many?\nAnswer:"


def test_mmlu_letters_come_from_one_forward_with_the_continuations_log_likelihood(backend):
    tok = backend.tokenizer()
    letters = general.letter_tokens(tok)
    assert set(letters) == set("ABCD") and all(tok.decode([i]) == f" {x}" for x, i in letters.items())
    prompt = general.mmlu_prompt({"question": "Which node handles mobility?", "subject": "networks",
                                  "choices": ["AMF", "UPF", "SMF", "NRF"], "answer": 0})
    one = backend.next_token_logprobs([prompt], [letters[x] for x in "ABCD"])[0]
    each = backend.continuation_logprob([prompt] * 4, [f" {x}" for x in "ABCD"])
    assert one == pytest.approx(each, abs=1e-4)


@pytest.mark.parametrize("text, strict, expected", [
    ("so 3 * 4 = 12 apples.\n#### 12", True, "12"), ("#### 1,234", True, "1234"), ("The answer is 42.", True, None),
    ("The answer is 42.", False, "42"), ("It costs $10.", False, "10"), ("no number", False, None)])
def test_gsm8k_answers_are_read_strictly_then_flexibly(text, strict, expected):
    assert general.gsm8k_number(text, strict=strict) == expected


def test_bad_data_files_are_refused_with_file_and_line(tmp_path):
    bad = tmp_path / "mmlu.jsonl"
    bad.write_text('{"question": "q", "choices": ["a", "b"], "answer": 0}\n{"question": "q2"}\n')
    with pytest.raises(EvalInputError, match=r"mmlu.jsonl:2: mmlu item lacks \['choices', 'answer'\]"):
        general.read_task("mmlu", str(bad), general.GeneralSpec())
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(EvalInputError, match="holds no items"):
        general.read_task("gsm8k", str(tmp_path / "empty.jsonl"), general.GeneralSpec())
    with pytest.raises(EvalInputError, match="known"):
        general.read_task("arc", str(bad), general.GeneralSpec())


@pytest.mark.spark
def test_the_stage_scores_the_bundled_samples_and_records_settings(spark, lake_cfg, tmp_path):
    import pyarrow.parquet as pq

    from eval.subjects import Subject

    (s,) = general.evaluate(LakeCalls(spark, lake_cfg), lake_cfg, general.GeneralSpec(max_new_tokens=48),
                            [Subject(name="embedded", path="embedded:smollm2-135m-instruct")], tmp_path)
    assert s.items == {"mmlu": 4, "hellaswag": 3, "gsm8k": 3} and all(0 <= v <= 1 for v in s.scores.values())
    rows = pq.read_table(tmp_path / "embedded" / "general.parquet").to_pylist()
    assert len(rows) == 10 and all(r["reference"] is not None for r in rows if r["failure"] is None)
    mmlu = [r for r in rows if r["task"] == "mmlu"]
    assert s.scores["mmlu"] == sum(r["prediction"] == r["reference"] for r in mmlu) / 4
    saved = json.loads((tmp_path / "embedded" / "general.json").read_text())
    assert saved["settings"]["shots"] == 0 and "lm-evaluation-harness" in saved["settings"]["definitions"]
