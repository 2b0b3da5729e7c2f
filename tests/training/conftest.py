"""A tiny random Llama (the embedded model's tokenizer) and a real shard set from a small release."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.lake import LakeConfig


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """2 layers, hidden 64, the SmolLM2 vocabulary and chat template: trains in seconds on a CPU."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from pipelines.llm.models import ModelSpec, resolve
    from training.export import copy_tokenizer

    folder = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                                         tie_word_embeddings=True, eos_token_id=2, pad_token_id=2, bos_token_id=1))
    model.save_pretrained(folder)
    copy_tokenizer(resolve(ModelSpec()).path, folder)
    return str(folder)


@pytest.fixture(scope="session")
def released(spark, tmp_path_factory) -> LakeConfig:
    from tests.pipelines.tokenize.conftest import make_release

    cfg = LakeConfig(root=str(tmp_path_factory.mktemp("train-lake") / "lake"))
    make_release(spark, cfg)
    return cfg


@pytest.fixture(scope="session")
def cpt_shards(spark, released, tiny_model) -> Path:
    from pipelines.tokenize.stage import ShardSpec, build_shards

    return build_shards(spark, released, "r1", tiny_model, ShardSpec(seq_len=128, seqs_per_shard=16)).folder
