"""Blend, order and packing plans: pure functions on literal inputs."""
import numpy as np
import pyarrow as pa
import pytest

from pipelines.tokenize import plan


def meta(tables: dict[str, list[int]]) -> pa.Table:
    rows = [(t, f"{t}-{i}", plan.doc_key(7, t, f"{t}-{i}"), n, t) for t, lens in tables.items() for i, n in enumerate(lens)]
    return pa.table({c: [r[k] for r in rows] for k, c in enumerate(["table", "doc_id", "key", "n_tokens", "blend"])})


def test_a_share_is_met_by_cycling_a_small_source_and_every_anchor_document_comes_once():
    b = plan.blend(meta({"tele": [100] * 19, "replay": [10] * 4}), {"tele": None, "replay": 0.05})
    e = b.entries.to_pylist()
    tele = [r for r in e if r["table"] == "tele"]
    assert sorted(r["doc_id"] for r in tele) == sorted(f"tele-{i}" for i in range(19)) and {r["copy"] for r in tele} == {0}
    # 1,900 anchor tokens → 100 replay tokens: two passes over the 4 documents and 2 of a third (copy 2)
    replay = [r for r in e if r["table"] == "replay"]
    assert len(replay) == 10 and max(r["copy"] for r in replay) == 2
    assert b.groups["replay"]["share"] == pytest.approx(0.05, abs=0.001)
    assert len({(r["doc_id"], r["copy"]) for r in e}) == len(e)  # a repeat is a new copy, never the same entry twice


def test_a_share_smaller_than_the_source_takes_its_first_documents_in_key_order():
    m = meta({"tele": [100] * 10, "replay": [50] * 40})
    b = plan.blend(m, {"tele": None, "replay": 0.1})
    replay = [r["doc_id"] for r in b.entries.to_pylist() if r["table"] == "replay"]
    by_key = [d for _, d in sorted((plan.doc_key(7, "replay", f"replay-{i}"), f"replay-{i}") for i in range(40))]
    assert sorted(replay) == sorted(by_key[:3])  # 1,000 / 0.9 × 0.1 = 111 tokens: 3 documents of 50


def test_the_order_depends_on_the_documents_not_on_the_input_order():
    m = meta({"tele": list(range(5, 45)), "replay": [30] * 6})
    shuffled = m.take(np.random.default_rng(3).permutation(m.num_rows))
    w = {"tele": None, "replay": 0.1}
    assert plan.blend(m, w).entries.equals(plan.blend(shuffled, w).entries)


@pytest.mark.parametrize("weights, match", [({"a": None, "b": 1.2}, "lie in"), ({"a": None, "b": 0.6, "c": 0.5}, "sum to"),
                                            ({"a": 0.5, "b": 0.4}, "must sum to 1")])
def test_impossible_blends_are_refused(weights, match):
    with pytest.raises(plan.BlendError, match=match):
        plan.blend(meta({"a": [10], "b": [10], "c": [10]}), weights)


def test_a_blend_key_without_tokens_is_refused():
    with pytest.raises(plan.BlendError, match="no training tokens"):
        plan.blend(meta({"a": [10]}), {"a": None, "missing": 0.1})


def test_stream_packing_splits_documents_at_sequence_ends():
    offsets = plan.pack_offsets(np.array([5, 12, 3]), 8, "stream")
    assert offsets.tolist() == [0, 5, 17] and plan.sequences_needed(offsets, np.array([5, 12, 3]), 8) == 3
    assert plan.pieces(5, 12, 8) == [(0, 5, 0, 3), (1, 0, 3, 11), (2, 0, 11, 12)]


def test_whole_packing_never_splits_and_puts_each_example_where_it_fits_best():
    lengths = np.array([6, 5, 2, 3, 8, 1])
    offsets = plan.pack_offsets(lengths, 8, "whole")
    spans = [(o // 8, o % 8, o % 8 + n) for o, n in zip(offsets.tolist(), lengths.tolist(), strict=True)]
    assert all(end <= 8 for _, _, end in spans)
    assert spans == [(0, 0, 6), (1, 0, 5), (0, 6, 8), (1, 5, 8), (2, 0, 8), (3, 0, 1)]
    # best fit, not first fit: 2 goes where 2 are free (not 3), so 3 still fits; first fit opens a third
    assert (plan.pack_offsets(np.array([5, 6, 2, 3]), 8, "whole") // 8).tolist() == [0, 1, 1, 0]
    with pytest.raises(ValueError, match="does not fit"):
        plan.pack_offsets(np.array([9]), 8, "whole")


def test_best_fit_packs_random_lengths_densely_and_deterministically():
    lengths = np.random.default_rng(0).integers(20, 900, 3000)
    offsets = plan.pack_offsets(lengths, 2048, "whole")
    ends = offsets % 2048 + lengths
    assert (ends <= 2048).all() and np.array_equal(offsets, plan.pack_offsets(lengths, 2048, "whole"))
    seqs = offsets // 2048
    used = np.bincount(seqs, weights=lengths)  # no two examples overlap: each sequence's sum fits
    assert (used <= 2048).all() and len(np.unique(offsets)) == len(offsets)
    assert plan.sequences_needed(offsets, lengths, 2048) <= 1.01 * np.ceil(lengths.sum() / 2048)  # ≤ 1% over the bound


def test_held_out_share_and_keys_are_seeded():
    ids = [f"d{i}" for i in range(20_000)]
    share = sum(plan.held_out(1, "t", d, 0.1) for d in ids) / len(ids)
    assert 0.09 < share < 0.11
    assert plan.doc_key(1, "t", "d1") == plan.doc_key(1, "t", "d1") != plan.doc_key(2, "t", "d1")
