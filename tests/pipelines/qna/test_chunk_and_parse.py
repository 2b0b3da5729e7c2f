"""Chunking on paragraph boundaries and parsing of model outputs, on literal inputs."""
import json

import pytest

from pipelines.qna.chunk import ChunkSpec, chunk_spans
from pipelines.qna.parse import few_shot_questions, parse_pairs

PARA = "The gNB schedules uplink and downlink resources for every UE in its cells. " * 4


def test_chunks_cut_on_paragraphs_balance_and_keep_exact_offsets():
    text = "\n\n".join(f"{i}: {PARA}" for i in range(40))   # ~12,500 characters
    spans = chunk_spans(text, 5000)
    assert len(spans) == 3                                  # ceil(12.5k / 5k)
    assert all(b - a <= 5000 for a, b in spans)
    assert max(b - a for a, b in spans) - min(b - a for a, b in spans) < 800   # about equal
    for a, b in spans:
        assert text[a:b] == text[a:b].strip()
        assert text[a:b].split(":")[0].isdigit()            # each chunk starts at a paragraph
    joined = "".join(text[a:b] for a, b in spans)
    assert joined.replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


def test_a_paragraph_longer_than_a_chunk_is_cut_at_sentences_then_spaces():
    text = PARA * 30                                        # one paragraph, no line break
    spans = chunk_spans(text, 2000)
    assert all(b - a <= 2000 for a, b in spans)
    assert all(text[a:b].endswith(".") for a, b in spans[:-1])
    word = "x" * 5000
    assert chunk_spans(word, 2000) == [(0, 2000), (2000, 4000), (4000, 5000)]   # no space at all
    assert chunk_spans("  \n ", 2000) == [] and chunk_spans("short", 2000) == [(0, 5)]
    with pytest.raises(ValueError, match="min_chars"):
        ChunkSpec(size=1000, min_chars=2000)


def test_text_form_with_bold_inline_and_extra_lines():
    out = parse_pairs("Here are the questions:\n**Question 1:** What is the AMF?\n**Answer 1:** The access and "
                      "mobility function.\nExplanation: it handles registration.\nQ2: What is the SMF? A2: Session "
                      "management.", expected=2)
    assert out.pairs == [("What is the AMF?", "The access and mobility function."),
                         ("What is the SMF?", "Session management.")]
    assert out.format == "text" and out.notes == [] and out.problems == []


def test_json_form_and_structured_output():
    data = [{"question": f"What is term {i}?", "answer": f"Meaning {i}"} for i in range(5)]
    out = parse_pairs("```json\n" + json.dumps(data) + "\n```")
    assert out.format == "json" and len(out.pairs) == 5 and out.notes == []
    wrapped = parse_pairs(json.dumps({"pairs": data[:2]}), expected=2)
    assert wrapped.pairs[1] == ("What is term 1?", "Meaning 1")
    numbered = parse_pairs(json.dumps({"Question 1": "What is X?", "Answer 1": "Y"}), expected=1)
    assert numbered.pairs == [("What is X?", "Y")]


@pytest.mark.parametrize("output, reason", [
    ("", "empty_output"),
    ("   \n", "empty_output"),
    (None, "empty_output"),
    ("I am sorry, I cannot write questions about this passage.", "unparseable_output"),
    ("<html>500</html>", "unparseable_output"),
])
def test_outputs_with_no_pair_are_one_problem_with_the_raw_text(output, reason):
    out = parse_pairs(output)
    assert out.pairs == [] and [p.reason for p in out.problems] == [reason]
    assert out.problems[0].raw == (output or "").strip() or reason == "empty_output"


def test_three_or_nine_pairs_and_truncation_are_recorded_not_dropped():
    three = "\n".join(f"Question {i}: What is item {i}?\nAnswer {i}: Item {i}." for i in range(1, 4))
    out = parse_pairs(three)
    assert len(out.pairs) == 3 and out.notes == ["fewer_pairs:3"] and out.problems == []
    nine = "\n".join(f"Question {i}: What is item {i}?\nAnswer {i}: Item {i}." for i in range(1, 10))
    out = parse_pairs(nine)
    assert len(out.pairs) == 5 and out.notes == ["extra_pairs:4"]
    assert [p.reason for p in out.problems] == ["extra_pair"] * 4 and "item 9" in out.problems[-1].raw
    cut = parse_pairs(three + "\nQuestion 4: What is the last one")
    assert len(cut.pairs) == 3 and "truncated" in cut.notes
    assert [(p.reason, p.raw) for p in cut.problems] == [("truncated_pair", "Question 4: What is the last one")]
    cut_json = parse_pairs('[{"question": "What is A?", "answer": "A."}, {"question": "What is B?", "ans')
    assert cut_json.format == "json_repaired" and cut_json.pairs == [("What is A?", "A.")]
    assert [p.reason for p in cut_json.problems] == ["truncated_pair"]


def test_broken_pairs_are_problems():
    out = parse_pairs("Answer 1: dangling\nQuestion 2: What is X?\nQuestion 3: What is Y?\nAnswer 3: Y.\n"
                      'Question 4: What is Z?\nAnswer 4: ""')
    assert out.pairs == [("What is Y?", "Y.")]
    assert [p.reason for p in out.problems] == ["orphan_answer", "unanswered_question", "incomplete_pair"]


def test_few_shot_questions_of_both_prompt_forms():
    from pipelines.llm.prompts import load_prompt_set
    from tests.conftest import ROOT

    for name in ("tele_llms_v1", "telelake_v1"):
        template = load_prompt_set(ROOT / "conf" / "prompts" / f"{name}.yaml").get("qna_generation").template
        assert few_shot_questions(template) == ["What frequency band does Bluetooth use?",
                                                "Which pairs of wires are used in 10/100Base-T?",
                                                "What is a Heterogeneous Network?"]
