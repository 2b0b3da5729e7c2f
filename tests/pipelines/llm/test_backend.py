"""The transformers backend on the embedded SmolLM2: batching does not change results."""
import numpy as np
import pytest

from pipelines.llm.backend import BackendError, SamplingParams


def _chat(backend, text):
    return backend.tokenizer().apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                   add_generation_prompt=True)


QUESTIONS = ["Is 5G NR a radio access technology? Answer Yes or No.",
             "Is a banana a telecom standard? Answer Yes or No.",
             "Name the protocol layer above PDCP in LTE, then explain in one long sentence why it exists at all."]


def test_batched_scores_equal_one_by_one(backend):
    prompts = [_chat(backend, q) for q in QUESTIONS]
    ids = [backend.encode(["Yes"])[0][0], backend.encode(["No"])[0][0]]
    together = backend.next_token_logprobs(prompts, ids)
    alone = np.stack([backend.next_token_logprobs([p], ids)[0] for p in prompts])
    assert together.shape == (3, 2) and np.all(together < 0)
    np.testing.assert_allclose(together, alone, atol=2e-4)
    # log P(continuation) of a one-token continuation is that token's next-token log-probability
    cont = backend.continuation_logprob(prompts, ["Yes"] * 3)
    np.testing.assert_allclose(cont, together[:, 0], atol=2e-4)


def test_continuation_logprob_is_the_chain_rule_over_full_logits(backend):
    """Tails of different lengths in one batch: each is scored from the full-sequence logits."""
    import torch

    prompts = [_chat(backend, q) for q in QUESTIONS]
    tails = ["Yes", "No, a banana is a fruit.", "The RLC layer sits above PDCP? No: RLC is below it."]
    batched = backend.continuation_logprob(prompts, tails)
    for prompt, tail, got in zip(prompts, tails, batched):
        head, rest = backend.encode([prompt])[0], backend.encode([tail])[0]
        with torch.no_grad():
            logits = backend.model(input_ids=torch.tensor([head + rest])).logits[0].float()
        logp = torch.log_softmax(logits, -1)
        want = sum(float(logp[len(head) - 1 + j, tok]) for j, tok in enumerate(rest))
        assert got == pytest.approx(want, abs=2e-3)
    assert batched[1] < batched[0]  # a longer tail carries more (negative) log-probability


def test_greedy_generation_is_deterministic_and_stops(backend):
    prompts = [_chat(backend, q) for q in QUESTIONS[:2]]
    a = backend.generate(prompts, SamplingParams(max_tokens=12))
    b = backend.generate(list(reversed(prompts)), SamplingParams(max_tokens=12))
    assert a == list(reversed(b)) and all(len(x) == 1 and x[0] for x in a)
    stopped = backend.generate(prompts[:1], SamplingParams(max_tokens=30, stop=(".",)))[0][0]
    assert "." not in stopped
    sampled = backend.generate(prompts[:1], SamplingParams(max_tokens=8, temperature=1.0, n=3, seed=7))
    assert len(sampled[0]) == 3
    assert sampled == backend.generate(prompts[:1], SamplingParams(max_tokens=8, temperature=1.0, n=3, seed=7))


def test_request_over_the_context_is_refused_with_its_size(backend):
    long = _chat(backend, "telecom " * 600)
    with pytest.raises(BackendError, match=r"request 0 has \d+ prompt tokens.*max_context_tokens=512"):
        backend.next_token_logprobs([long], [0])


def test_an_empty_prompt_is_refused_not_scored_from_a_neighbours_position(backend):
    with pytest.raises(BackendError, match="request 1 has an empty prompt"):
        backend.next_token_logprobs(["Is LTE a radio technology?", ""], [1, 2])
    with pytest.raises(BackendError, match="request 0 has an empty prompt before a continuation"):
        backend.continuation_logprob(["", "Hello"], [" yes", " there"])
    assert backend.continuation_logprob(["", "Hello"], ["", " there"])[0] == 0.0  # nothing to score: 0
