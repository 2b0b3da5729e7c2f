"""Distillation inside the trainer on real shards and tiny models: vanilla KD on the fly is zero when
the teacher is the student and falls in a short run; the cached top-k matches the teacher; DSKD trains
a student against a teacher with another tokenizer; vanilla KD refuses that pair."""
import math
from dataclasses import replace

import pytest
import torch

from pipelines.llm.models import ModelSpec
from training.config import DistillSpec, LoraSpec
from training.kd import KDError, KDSpec
from training.trainer import Trainer
from tests.training.test_trainer import run, spec

pytestmark = pytest.mark.spark


def _tiny(folder, tokenizer_dir, vocab, seed, hidden=64):
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.export import copy_tokenizer

    torch.manual_seed(seed)
    LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                 max_position_embeddings=512, tie_word_embeddings=True, eos_token_id=2,
                                 pad_token_id=0, bos_token_id=1)).save_pretrained(folder)
    copy_tokenizer(tokenizer_dir, folder)
    return str(folder)


@pytest.fixture(scope="module")
def other_teacher(tiny_model, tmp_path_factory):
    """Same tokenizer as the student, other (wider) weights."""
    return _tiny(tmp_path_factory.mktemp("teacher"), tiny_model, 49152, seed=7, hidden=96)


def kd(teacher, **kw):
    return DistillSpec(teacher=ModelSpec(path=teacher), loss=KDSpec(temperature=2.0, rate=kw.pop("rate", 1.0)), **kw)


def test_vanilla_kd_is_zero_against_itself_and_falls_toward_another_teacher(tiny_model, other_teacher, cpt_shards,
                                                                              tmp_path):
    same = Trainer(spec(max_steps=1, kd=kd(tiny_model)), tiny_model, cpt_shards, tmp_path / "same")
    record = same.train_step()
    assert abs(record["kd"]) < 1e-5 and record["loss"] > 1  # the student is its own teacher: nothing to learn

    t = run(spec(max_steps=6, kd=kd(other_teacher, rate=0.9), lora=LoraSpec(r=8, alpha=16), zero="zero0.yaml"),
            tiny_model, cpt_shards, tmp_path / "other")
    kds = [r["kd"] for r in t.state.history]
    assert all(math.isfinite(x) for x in kds) and kds[-1] < kds[0]
    assert "distillation: vanilla" in t.describe()[-1]


def test_the_cached_top_k_is_the_teachers_and_trains_like_on_the_fly(tiny_model, other_teacher, cpt_shards, tmp_path):
    from training.data import IGNORE
    from training.distill import labelled_rows, teacher_logits

    t = run(spec(max_steps=3, kd=kd(other_teacher, teacher_logits="cached", cache_top_k=16)), tiny_model, cpt_shards,
            tmp_path)
    assert t.distiller.teacher is None and t.distiller.cache.k == 16  # training read the cache alone
    kds = [r["kd"] for r in t.state.history]
    assert all(math.isfinite(x) and x > 0 for x in kds) and kds[-1] < kds[0]
    from training.distill import load_teacher

    teacher = load_teacher(other_teacher, torch.device("cpu"), bf16=False)
    b = t.train_data.batch([0, 5])
    labels = torch.nn.functional.pad(b["labels"][:, 1:], (0, 1), value=IGNORE)
    want = torch.log_softmax(teacher_logits(teacher, b, labelled_rows(labels), torch.device("cpu")), -1).topk(16, -1)
    ids, logp = t.distiller.cache.rows([0, 5])
    assert len(labelled_rows(labels)) == ids.shape[0]
    assert (ids == want.indices).float().mean() > 0.99  # float16 ties may swap neighbours
    assert torch.allclose(logp, want.values, atol=2e-2)
    # a second run on the same shards reuses the cache; another k is refused, not silently mixed
    again = Trainer(spec(max_steps=1, kd=kd(other_teacher, teacher_logits="cached", cache_top_k=16)), tiny_model,
                    cpt_shards, tmp_path)
    assert again.distiller.cache.ids.shape == t.distiller.cache.ids.shape
    with pytest.raises(KDError, match="delete the folder"):
        Trainer(spec(max_steps=1, kd=kd(other_teacher, teacher_logits="cached", cache_top_k=8)), tiny_model,
                cpt_shards, tmp_path)


@pytest.fixture(scope="module")
def foreign_teacher(tmp_path_factory):
    """A tiny Llama over another vocabulary: the WordPiece tokenizer of the embedded MiniLM (30,522)."""
    from eval.embed import embedder_folder

    minilm = embedder_folder("embedded:all-minilm-l6-v2")
    return _tiny(tmp_path_factory.mktemp("foreign"), minilm, 30522, seed=3, hidden=96)


def test_dskd_distils_across_vocabularies_and_vanilla_kd_refuses_them(tiny_model, foreign_teacher, cpt_shards,
                                                                         tmp_path):
    with pytest.raises(KDError, match="tokenize differently.*dskd"):
        Trainer(spec(max_steps=1, kd=kd(foreign_teacher)), tiny_model, cpt_shards, tmp_path / "refused")
    s = spec(max_steps=6, kd=kd(foreign_teacher, method="dskd", rate=0.5), optim=replace(spec().optim, lr=3e-3))
    t = run(s, tiny_model, cpt_shards, tmp_path / "dskd")
    kds = [r["kd"] for r in t.state.history]
    assert all(math.isfinite(x) and x > 0 for x in kds) and kds[-1] < kds[0]
    trained = {n for n, p in t.model.named_parameters() if p.requires_grad}
    assert any(n.startswith("dskd_projector.") for n in trained)
    # the exported student is a plain model: the projector stays out of hf/
    from safetensors import safe_open

    with safe_open(str(t.run_dir / "checkpoints" / "step-000006" / "hf" / "model.safetensors"), "pt") as fh:
        assert not any(k.startswith("dskd_projector") for k in fh.keys())  # noqa: SIM118
    with pytest.raises(KDError, match="ZeRO stage 3"):
        Trainer(spec(max_steps=1, kd=kd(foreign_teacher, method="dskd"), zero="zero3.yaml"), tiny_model, cpt_shards,
                tmp_path / "z3")


@pytest.mark.parametrize("method", ["vanilla", "dskd"])
def test_distillation_runs_under_bf16_autocast_on_a_cpu(tiny_model, other_teacher, foreign_teacher, cpt_shards,
                                                         tmp_path, method):
    teacher = other_teacher if method == "vanilla" else foreign_teacher
    s = spec(max_steps=4, kd=kd(teacher, method=method, rate=0.5), precision="bf16",
             optim=replace(spec().optim, lr=3e-3))
    t = run(s, tiny_model, cpt_shards, tmp_path / method)
    kds = [r["kd"] for r in t.state.history]
    assert t.autocast and all(math.isfinite(x) for x in kds) and kds[-1] < kds[0]
    assert {p.dtype for p in t.model.parameters()} == {torch.float32}
