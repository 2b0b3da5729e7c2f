"""vLLM backend for GPUs: the offline `LLM` engine, one per GPU (or per tensor-parallel group).

Scores use prompt log-probabilities: the label token is appended to the prompt and vLLM returns
its exact log-probability, so a label outside the top-k of the next-token distribution is still
scored. Prefix caching makes the second label (and shared few-shot prefixes) almost free.
Not verified on this project's CPU machines (vLLM's wheel is the CUDA build).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipelines.llm.backend import BackendConfig, BackendError, SamplingParams
from pipelines.llm.models import ResolvedModel


class VLLMBackend:
    def __init__(self, model: ResolvedModel, cfg: BackendConfig) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ImportError("the vllm backend needs vLLM on a CUDA machine (pip install vllm); set "
                              "llm.kind: transformers to run on CPU") from exc
        self.cfg = cfg
        self.model_name, self.revision = model.name, model.revision
        dtype = {"auto": "bfloat16"}.get(cfg.dtype, cfg.dtype)
        self.llm = LLM(model=model.path, tokenizer=model.path, dtype=dtype, seed=0,
                       tensor_parallel_size=cfg.tensor_parallel_size,
                       gpu_memory_utilization=cfg.gpu_memory_utilization,
                       enable_prefix_caching=cfg.enable_prefix_caching, max_model_len=cfg.max_context_tokens)
        self._tok = self.llm.get_tokenizer()
        self.forwards = 0

    def tokenizer(self):
        return self._tok

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [self._tok.encode(t, add_special_tokens=False) for t in texts]

    def next_token_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int]) -> np.ndarray:
        ids = self.encode(prompts)
        seqs = [p + [t] for p in ids for t in token_ids]
        lps = self._prompt_logprobs(seqs, tail=1)
        return np.array(lps, np.float32).reshape(len(prompts), len(token_ids))

    def continuation_logprob(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        heads, tails = self.encode(prompts), self.encode(continuations)
        out = []
        for h, t in zip(heads, tails):
            out.append(self._prompt_logprobs([h + t], tail=len(t))[0] if t else 0.0)
        return out

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[str]]:
        from vllm import SamplingParams as VParams
        from vllm.inputs import TokensPrompt

        ids = self.encode(prompts)
        self._check(ids, params.max_tokens)
        vp = VParams(n=params.n, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens,
                     stop=list(params.stop) or None, seed=params.seed, **_structured(params.json_schema))
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in ids], vp, use_tqdm=False)
        self.forwards += 1
        return [[c.text for c in o.outputs] for o in outs]

    def _prompt_logprobs(self, seqs: list[list[int]], tail: int) -> list[float]:
        from vllm import SamplingParams as VParams
        from vllm.inputs import TokensPrompt

        self._check(seqs, 0)
        vp = VParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=s) for s in seqs], vp, use_tqdm=False)
        self.forwards += 1
        result = []
        for seq, o in zip(seqs, outs):
            total = 0.0
            for pos in range(len(seq) - tail, len(seq)):
                total += o.prompt_logprobs[pos][seq[pos]].logprob
            result.append(total)
        return result

    def _check(self, seqs: list[list[int]], extra: int) -> None:
        for i, s in enumerate(seqs):
            if len(s) + extra > self.cfg.max_context_tokens:
                raise BackendError(f"request {i} has {len(s)} prompt tokens (+{extra} to generate), over "
                                   f"max_context_tokens={self.cfg.max_context_tokens}; truncate it first")


def _structured(json_schema: str | None) -> dict:
    """SamplingParams arguments constraining decoding to a JSON schema: `structured_outputs` since
    vLLM 0.12 (which removed `guided_decoding`), `guided_decoding` before."""
    if not json_schema:
        return {}
    import json

    schema = json.loads(json_schema)
    try:
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}
    return {"structured_outputs": StructuredOutputsParams(json=schema)}
