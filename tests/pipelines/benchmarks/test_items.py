"""MCQ item validation and the split rule: literal items, asserting the reason or the repair."""
import orjson
import pytest

from pipelines.benchmarks.items import ItemRules, check_item, item_id
from pipelines.benchmarks.readers import RawItem, _oran, _teleqna
from pipelines.benchmarks.split import SplitSpec, assign
from pipelines.ingest.records import Reject

RULES = ItemRules()
Q = "Which interface connects the O-DU to the near-RT RIC?"


def raw(question=Q, choices=("E2", "A1", "O1", "F1"), answer=1, one_based=True, answer_text=None):
    return RawItem(question=question, choices=list(choices) if choices is not None else None, answer=answer,
                   location="line=1", ordinal=1, raw=b"{}", one_based=one_based, answer_text=answer_text)


def test_a_valid_item_gets_a_0_based_answer_and_a_stable_id():
    item = check_item(raw(answer="1"), "oranbench", RULES)
    assert item["answer"] == 0 and item["choices"] == ["E2", "A1", "O1", "F1"] and item["repairs"] == []
    assert item["item_id"] == item_id("oranbench", Q, ["E2", "A1", "O1", "F1"]) == \
        check_item(raw(question=Q.upper() + "  ", answer=1), "oranbench", RULES)["item_id"]
    assert check_item(raw(answer=2, one_based=False), "teletables", RULES)["answer"] == 2


@pytest.mark.parametrize("item, reason", [
    (raw(choices=None), "no_options"),
    (raw(choices=[]), "no_options"),
    (raw(choices=["E2"]), "too_few_options"),
    (raw(choices=[f"o{i}" for i in range(12)]), "too_many_options"),
    (raw(choices=["E2", "", "O1"]), "empty_option"),
    (raw(choices=["E2", "e2 ", "O1"]), "duplicate_options"),
    (raw(answer=5), "answer_out_of_range"),
    (raw(answer=0), "answer_out_of_range"),
    (raw(answer=4, one_based=False), "answer_out_of_range"),
    (raw(answer="B"), "answer_not_an_index"),
    (raw(answer=None), "answer_not_an_index"),
    (raw(question=""), "missing_question"),
    (raw(question=None), "missing_question"),
    (raw(question="Research Papers"), "question_too_short"),
    (raw(answer=1, answer_text="Something else entirely"), "answer_text_mismatch"),
])
def test_bad_items_are_refused_with_a_reason(item, reason):
    out = check_item(item, "oranbench", RULES)
    assert isinstance(out, Reject) and out.reason == reason and out.location == "line=1"


def test_options_that_differ_only_by_a_symbol_are_distinct():
    item = check_item(raw(choices=["a < b + c", "a > b + c", "a = b + c"]), "oranbench", RULES)
    assert not isinstance(item, Reject) and len(set(item["choices"])) == 3


def test_repairs_are_recorded():
    numbered = check_item(raw(choices=["1. E2", "2. A1", "3. O1"]), "oranbench", RULES)
    assert numbered["choices"] == ["E2", "A1", "O1"] and numbered["repairs"] == ["option_prefix_removed"]
    # the text names option 2 exactly while the index says 1: the text wins
    moved = check_item(raw(answer=1, answer_text="A1"), "teleqna", RULES)
    assert moved["answer"] == 1 and moved["repairs"] == ["answer_index_from_text"]
    near = check_item(raw(choices=["Vehicle-to-infrastructure (V2I)", "V2V"], answer=1,
                          answer_text="Vehicle-to-infrastructure(V2I)"), "teleqna", RULES)
    assert near["answer"] == 0 and near["repairs"] == ["answer_text_near_match"]


def test_teleqna_reader_reads_options_in_order_and_refuses_gaps():
    data = orjson.dumps({
        "question 0": {"question": Q, "option 2": "A1", "option 1": "E2", "answer": "option 1: E2",
                       "explanation": "E2 links the RIC", "category": "Standards overview"},
        "question 1": {"question": Q, "option 1": "E2", "option 3": "O1", "answer": "option 1: E2"},
        "question 2": "not an object",
    })
    first, gap, bad = list(_teleqna(data))
    assert first.choices == ["E2", "A1"] and first.answer == 1 and first.answer_text == "E2"
    assert first.subject == "Standards overview" and first.location == "key=question 0"
    assert (gap.reason, bad.reason) == ("option_gap", "wrong_shape")
    (whole,) = _teleqna(b'{"question 0": ')
    assert whole.reason == "malformed_json" and whole.location == "file"


def test_oran_reader_reads_lines_or_one_array_and_quarantines_broken_lines():
    lines = b'["Q one two three?", ["1. a", "2. b"], "1"]\n\n{broken\n["only two", []]\n'
    good, broken, shape = list(_oran(lines))
    assert good.answer == "1" and good.location == "line=1"
    assert (broken.reason, broken.location) == ("malformed_json", "line=3")
    assert shape.reason == "wrong_shape"
    (arr,) = _oran(b'[["Q one two three?", ["a", "b"], "2"]]')
    assert arr.location == "index=0" and arr.answer == "2"


def test_split_is_seeded_stable_and_near_its_fractions():
    spec = SplitSpec(seed=42)
    keys = [f"q{i}" for i in range(5000)]
    splits = [assign(spec, "teleqna", k) for k in keys]
    share = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert abs(share["train"] - 0.6) < 0.03 and abs(share["val"] - 0.2) < 0.03 and abs(share["test"] - 0.2) < 0.03
    assert splits == [assign(spec, "teleqna", k) for k in keys]  # depends on nothing but the item
    assert splits != [assign(SplitSpec(seed=7), "teleqna", k) for k in keys]
    with pytest.raises(ValueError, match="fractions"):
        SplitSpec(train=0.9, val=0.2)
