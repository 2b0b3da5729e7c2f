"""The cleanliness measure's parts: per-token losses over T-token chunks, 90th-percentile tails."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from pipelines.llm.models import ModelSpec, resolve
from pipelines.sources.measure import ReferenceLM, tail_stats


def test_tail_stats_take_the_hardest_tenth():
    losses = np.arange(1, 101, dtype=float)  # 1..100
    s = tail_stats(losses, chunks=3)
    assert s.tau == pytest.approx(90.1) and s.tail_tokens == 10
    assert s.tail_mean == pytest.approx(95.5) and s.tail_std == pytest.approx(np.arange(91, 101).std())
    assert s.mean_all == pytest.approx(50.5) and s.chunks == 3
    empty = tail_stats(np.zeros(0), chunks=0)
    assert empty.tokens == 0 and math.isnan(empty.tail_mean)


@pytest.fixture(scope="module")
def gpt2_like(tmp_path_factory):
    """A tiny randomly initialised GPT-2 with no chat template: a base LM, as the paper's GPT-2."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    smol = resolve(ModelSpec()).path
    folder = tmp_path_factory.mktemp("gpt2-tiny")
    tok = AutoTokenizer.from_pretrained(smol)
    tok.chat_template = None
    tok.save_pretrained(folder)
    for f in folder.glob("chat_template*"):
        f.unlink()
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=2, n_head=2)).save_pretrained(folder)
    return str(folder)


def test_any_local_base_model_scores_non_overlapping_chunks(gpt2_like):
    with pytest.raises(ValueError, match="chat template"):
        resolve(ModelSpec(path=gpt2_like))  # the judge needs one; the measure does not
    lm = ReferenceLM(resolve(ModelSpec(path=gpt2_like), chat=False).path, device="cpu", batch_size=3)
    text = "The gNB schedules the UE on the PDSCH with a 30 kHz subcarrier spacing. " * 40
    chunks = lm.chunks(text, T=100)
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert [len(c) for c in chunks[:-1]] == [100] * (len(chunks) - 1) and sum(map(len, chunks)) == len(ids)
    losses = lm.token_losses(chunks)
    assert losses.shape == (len(ids) - len(chunks),)  # every token but each chunk's first
    # an untrained model is close to uniform over the vocabulary: loss ≈ ln(V)
    assert abs(float(losses.mean()) - math.log(len(lm.tokenizer))) < 1.0
    assert lm.chunks(text, T=100, max_tokens=250) == [ids[:100], ids[100:200], ids[200:250]]
