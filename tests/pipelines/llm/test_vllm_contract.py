"""The vLLM backend's contract, on a CPU against a stand-in engine (tests/pipelines/llm/fake_vllm.py) that
answers from a real tiny model: the backend sends what vLLM expects (token prompts, prompt log-probs for
scores, structured output for a JSON schema, the engine options from conf, a LoRARequest per adapter)
and reads vLLM's answers into the same scores and texts as the transformers backend on the same model."""
import json

import numpy as np
import pytest

from pipelines.llm.backend import BackendConfig, BackendError, SamplingParams
from pipelines.llm.models import ResolvedModel
from tests.eval.test_tele_eval import _adapter, _tiny
from tests.pipelines.llm import fake_vllm

PROMPTS = ["The base station schedules", "A user equipment attaches to the core network and then",
           "In 5G NR the numerology"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("vllm")
    base = _tiny(root / "base")
    _adapter(base, root / "a", std=0.5)
    return root, ResolvedModel(name="tiny", path=str(base), revision="test")


def test_scores_and_greedy_texts_match_the_transformers_backend(tiny, monkeypatch):
    from pipelines.llm.hf_backend import HFBackend
    from pipelines.llm.vllm_backend import VLLMBackend

    fake_vllm.install(monkeypatch)
    _, model = tiny
    cfg = BackendConfig(kind="vllm", max_context_tokens=256, gpu_memory_utilization=0.5, tensor_parallel_size=1)
    v, hf = VLLMBackend(model, cfg), HFBackend(model, BackendConfig(kind="transformers", max_context_tokens=256))
    engine = fake_vllm.LLM.instances[-1]
    assert engine.kwargs["dtype"] == "bfloat16" and engine.kwargs["max_model_len"] == 256
    assert engine.kwargs["gpu_memory_utilization"] == 0.5 and engine.kwargs["enable_prefix_caching"] is True

    ids = [100, 2000, 31000]
    np.testing.assert_allclose(v.next_token_logprobs(PROMPTS, ids), hf.next_token_logprobs(PROMPTS, ids), atol=1e-4)
    scoring = engine.calls[-1]
    assert scoring["params"].prompt_logprobs == 0 and scoring["params"].max_tokens == 1
    assert len(scoring["prompts"]) == len(PROMPTS) * len(ids)  # each label appended to its prompt
    assert all(isinstance(p, dict) and "prompt_token_ids" in p for p in scoring["prompts"])

    tails = [" its users", " registers", ""]
    np.testing.assert_allclose(v.continuation_logprob(PROMPTS, tails), hf.continuation_logprob(PROMPTS, tails),
                               atol=1e-4)

    greedy = SamplingParams(max_tokens=6, temperature=0.0, stop=("\n",))
    assert v.generate(PROMPTS, greedy) == hf.generate(PROMPTS, greedy)
    schema = json.dumps({"type": "array", "items": {"type": "object"}})
    v.generate(PROMPTS[:1], SamplingParams(max_tokens=2, json_schema=schema))
    assert engine.calls[-1]["params"].structured_outputs.json == json.loads(schema)
    with pytest.raises(BackendError, match="max_context_tokens=256"):
        v.generate(["x " * 300], greedy)


def test_adapters_are_served_by_lora_requests_with_the_peft_answers(tiny, monkeypatch):
    from pipelines.llm.serving import BASE, AdapterServer, Request

    fake_vllm.install(monkeypatch)
    root, model = tiny
    greedy = SamplingParams(max_tokens=5, temperature=0.0)
    requests = [Request(prompt=PROMPTS[0], category="a"), Request(prompt=PROMPTS[1], category=BASE)]
    on_vllm = AdapterServer(model, {"a": str(root / "a")}, BackendConfig(kind="vllm")).answer(requests, greedy)
    engine = fake_vllm.LLM.instances[-1]
    assert engine.kwargs["enable_lora"] is True and engine.kwargs["max_lora_rank"] == 4
    sent = {c["lora_request"].lora_name if c["lora_request"] else BASE for c in engine.calls}
    assert sent == {"a", BASE}
    on_peft = AdapterServer(model, {"a": str(root / "a")}, BackendConfig(kind="transformers")).answer(requests, greedy)
    assert [a.completions for a in on_vllm] == [a.completions for a in on_peft]
