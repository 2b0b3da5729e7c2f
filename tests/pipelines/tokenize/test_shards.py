"""Shards from a real release: every token of every document lands once, in a seeded order that does
not depend on Spark's parallelism; a damaged release is refused; a rerun reuses the set."""
import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from pipelines.release.ops import read_release
from pipelines.release.store import ReleaseError
from pipelines.tokenize import encode
from pipelines.tokenize.stage import ShardError, ShardSpec, build_shards
from schemas.shards import PAD_DOC
from tests.pipelines.tokenize.conftest import make_release
from training.data import IGNORE, PackedShards

pytestmark = pytest.mark.spark
CPT = ShardSpec(seq_len=128, seqs_per_shard=16)


def pieces_by_doc(folder, split) -> dict[str, list[int]]:
    """Reassemble every document from the shards: ref → tokens, in sequence order."""
    out: dict[str, list[int]] = {}
    data = PackedShards(folder, split)
    for f in sorted(data.manifest["splits"][split]["shards"], key=lambda f: f["first_seq"]):
        t = pa.ipc.open_file(pa.memory_map(str(folder / f["path"]))).read_all().to_pylist()
        for row in t:
            at = 0
            assert sum(row["segments"]) == len(row["input_ids"]) == 128
            for n, ref in zip(row["segments"], row["doc_ids"], strict=True):
                if ref != PAD_DOC:
                    out.setdefault(ref, []).extend(row["input_ids"][at:at + n])
                at += n
    return out


def test_cpt_shards_hold_every_document_once_and_the_replay_share(spark, lake_cfg, tokenizer_dir):
    make_release(spark, lake_cfg)
    s = build_shards(spark, lake_cfg, "r1", tokenizer_dir, CPT)
    m = s.manifest
    assert s.built and m["release"]["name"] == "r1" and m["tokenizer"]["sha256"] == encode.inspect_tokenizer(tokenizer_dir).sha256
    (replay, tele) = s.summaries
    assert (tele.source, tele.read, tele.kept) == ("gold.tele_data", 46, 46)
    assert replay.read == 8 and replay.kept + replay.dropped["not_sampled"] == 8
    assert m["blend"]["gold.general_replay"]["share"] == pytest.approx(0.05, abs=0.02)
    train, val = pieces_by_doc(s.folder, "train"), pieces_by_doc(s.folder, "val")
    docs = {r["id"]: r["content"] for r in read_release(lake_cfg, "r1", "gold.tele_data", ["id", "content"]).to_pylist()}
    tele_train = {k.split(":", 1)[1].rsplit("#", 1)[0] for k in train if k.startswith("gold.tele_data:")}
    tele_val = {k.split(":", 1)[1].rsplit("#", 1)[0] for k in val if k.startswith("gold.tele_data:")}
    assert tele_train | tele_val == set(docs) and not tele_train & tele_val and 1 <= len(tele_val) <= 12
    eos = m["tokenizer"]["eos_id"]
    for ref, ids in train.items():  # exact tokens of the document, then EOS
        table, rest = ref.split(":", 1)
        if table == "gold.tele_data":
            doc = rest.rsplit("#", 1)[0]
            assert ids == encode.encode_documents(tokenizer_dir, [docs[doc]], eos)[0].tolist()
    waste = m["splits"]["train"]["padding_waste"]
    assert waste < 128 / (m["splits"]["train"]["sequences"] * 128) + 1e-9  # only the last sequence is padded


def test_the_shards_do_not_depend_on_sparks_parallelism_and_a_rerun_reuses_them(spark, lake_cfg, tokenizer_dir, tmp_path):
    make_release(spark, lake_cfg)
    a = build_shards(spark, lake_cfg, "r1", tokenizer_dir, CPT)
    digests = {f["path"]: f["sha256"] for s in a.manifest["splits"].values() for f in s["shards"]}
    again = build_shards(None, lake_cfg, "r1", tokenizer_dir, CPT)  # reused: needs no Spark
    assert not again.built and again.folder == a.folder
    old = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "7")
    try:
        b = build_shards(spark, lake_cfg, "r1", tokenizer_dir, ShardSpec(**{**CPT.__dict__, "root": str(tmp_path / "other")}))
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", old)
    assert b.built and {f["path"]: f["sha256"] for s in b.manifest["splits"].values() for f in s["shards"]} == digests


def test_a_damaged_release_is_refused_before_any_work(spark, lake_cfg, tokenizer_dir, tmp_path):
    make_release(spark, lake_cfg)
    manifest = json.loads((tmp_path / "lake" / "_telelake" / "releases" / "r1" / "manifest.json").read_text())
    victim = tmp_path / "lake" / "gold" / "tele_data" / manifest["tables"]["gold.tele_data"]["files"][0]["path"]
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ReleaseError, match="(?s)failed verification.*changed"):
        build_shards(spark, lake_cfg, "r1", tokenizer_dir, CPT)
    assert not (tmp_path / "lake" / "_telelake" / "shards").exists()


def test_a_blend_naming_an_unreleased_table_says_what_the_release_holds(spark, lake_cfg, tokenizer_dir):
    make_release(spark, lake_cfg, replay=0)
    with pytest.raises(ShardError, match=r"gold.general_replay.*holds \['gold.instructions', 'gold.tele_data'\]"):
        build_shards(spark, lake_cfg, "r1", tokenizer_dir, CPT)


def test_sft_shards_mask_everything_but_the_answer(spark, lake_cfg, tokenizer_dir):
    make_release(spark, lake_cfg)
    s = build_shards(spark, lake_cfg, "r1", tokenizer_dir, ShardSpec(mode="sft", blend={"gold.instructions": None},
                                                                      seq_len=256, seqs_per_shard=8))
    (summary,) = s.summaries
    # inputs of 48 words (every fifth example) do not fit 256 tokens: dropped, counted, never split
    assert summary.read == 30 and summary.kept == 21
    assert summary.dropped == Counter({"test_split": 3, "longer_than_context": 6})
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    answers = []
    data = PackedShards(s.folder, "train")
    for i in range(len(data)):
        x = data.sample(i)
        target = x["labels"] != IGNORE
        # every target run is one answer: "Title number N" and the end-of-turn token
        edges = np.flatnonzero(np.diff(np.concatenate([[0], target.astype(int), [0]])))
        answers += [tok.decode(x["input_ids"][a:b]) for a, b in zip(edges[::2], edges[1::2], strict=True)]
        assert (x["position_ids"][target] > 0).all()
    assert len(answers) == 18 and all(a.startswith("Title number ") and a.endswith("<|im_end|>") for a in answers)
    assert s.manifest["splits"]["val"]["entries"] == 3 and s.manifest["loss_mask"] is True


def test_sft_shards_without_answer_only_masking_train_on_the_prompt_too(spark, lake_cfg, tokenizer_dir):
    make_release(spark, lake_cfg)
    spec = dict(mode="sft", blend={"gold.instructions": None}, seq_len=256, seqs_per_shard=8)
    masked = build_shards(spark, lake_cfg, "r1", tokenizer_dir, ShardSpec(**spec))
    whole = build_shards(spark, lake_cfg, "r1", tokenizer_dir, ShardSpec(**spec, answer_only=False))
    assert whole.folder != masked.folder and whole.manifest["answer_only"] is False
    a, b = PackedShards(masked.folder, "train"), PackedShards(whole.folder, "train")
    assert len(a) == len(b)
    for i in range(len(a)):
        x, y = a.sample(i), b.sample(i)
        assert (x["input_ids"] == y["input_ids"]).all()
        segs, padded = b.segments(i)
        # every token but each example's first (and the padding) is a target: prompt and answer alike
        assert (y["labels"] != IGNORE).sum() == segs.sum() - len(segs) - (segs[-1] - 1 if padded else 0)
        assert ((x["labels"] != IGNORE) <= (y["labels"] != IGNORE)).all()
        assert (x["labels"] != IGNORE).sum() < (y["labels"] != IGNORE).sum()


def test_a_task_and_category_blend_key_trains_on_that_subset_only(spark, lake_cfg, tokenizer_dir):
    make_release(spark, lake_cfg)
    one = ShardSpec(mode="sft", blend={"gold.instructions:mcq_answering/literature": None}, seq_len=256,
                    seqs_per_shard=8)
    s = build_shards(spark, lake_cfg, "r1", tokenizer_dir, one)
    (summary,) = s.summaries
    # mcq_answering is every third of the 30 examples (10): 1 in val, 1 in test, 2 too long, 6 train
    assert summary.kept == 7
    assert summary.dropped == Counter({"not_in_blend": 20, "test_split": 1, "longer_than_context": 2})
    assert s.manifest["splits"]["val"]["entries"] == 1
    with pytest.raises(ShardError, match=r"no training documents .* under blend .*mcq_answering/teleqna"):
        build_shards(spark, lake_cfg, "r1", tokenizer_dir,
                     ShardSpec(mode="sft", blend={"gold.instructions:mcq_answering/teleqna": None}, seq_len=256))


def test_blend_keys_prefer_the_most_specific_group():
    from pipelines.tokenize import plan

    w = {"t": None, "t:task": 0.2, "t:task/cat": 0.1}
    assert plan.blend_key(w, "t", "task/cat", "task") == "t:task/cat"
    assert plan.blend_key(w, "t", "task/other", "task") == "t:task"
    assert plan.blend_key(w, "t", "x/y", "x") == "t" and plan.blend_key({"u": None}, "t", "x") is None
