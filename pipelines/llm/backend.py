"""The batch inference interface every LLM stage uses, and how a backend is chosen from conf.

Prompts are rendered strings (chat template already applied, see `prompts.py`). Three calls:
`next_token_logprobs` (log-probabilities of given token ids as the next token: the Yes/No judge),
`generate` (greedy or sampled completions) and `continuation_logprob` (log-likelihood of a given
continuation after a prompt: answer perplexity).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

import numpy as np

from pipelines.llm.models import ModelSpec


@dataclass(frozen=True, kw_only=True)
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 0.0
    """0 = greedy decoding."""
    top_p: float = 1.0
    n: int = 1
    """Completions per prompt."""
    stop: tuple[str, ...] = ()
    seed: int = 0
    json_schema: str | None = None
    """A JSON schema (as JSON text) the completion must follow: vLLM constrains decoding to it
    (structured output); the transformers backend generates freely and callers parse robustly."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True, kw_only=True)
class BackendConfig:
    kind: Literal["auto", "transformers", "vllm"] = "auto"
    """auto: vLLM where it imports and a GPU is visible, else transformers."""
    model: ModelSpec = field(default_factory=ModelSpec)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """auto: float32 on CPU, bfloat16 on GPU."""
    max_context_tokens: int = 4096
    """Prompts longer than this are refused by the backend; stages truncate documents to fit."""
    max_batch_tokens: int = 16384
    """transformers: padded tokens per forward batch."""
    max_batch_size: int = 64
    threads: int = 1
    """transformers on CPU: torch threads per worker process (Spark runs one worker per core)."""
    tensor_parallel_size: int = 1
    """vLLM: GPUs per engine."""
    gpu_memory_utilization: float = 0.85
    """vLLM: share of GPU memory for weights and KV cache."""
    enable_prefix_caching: bool = True
    """vLLM: reuse the KV cache of shared prefixes (few-shot examples, the prompt's preamble)."""


class Backend(Protocol):
    model_name: str
    revision: str

    def tokenizer(self): ...

    def next_token_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int]) -> np.ndarray:
        """[len(prompts), len(token_ids)] log-probabilities (over the whole vocabulary)."""

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[str]]:
        """`params.n` completions per prompt, stop strings cut off."""

    def continuation_logprob(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Sum of log-probabilities of each continuation's tokens after its prompt."""


class BackendError(RuntimeError):
    """A request the backend cannot serve (e.g. longer than its context)."""


def load_backend(cfg: BackendConfig) -> Backend:
    """One backend per process; Spark stages cache it per worker (see `runner.py`)."""
    from pipelines.llm.models import resolve

    model = resolve(cfg.model)
    kind = cfg.kind
    if kind == "auto":
        kind = "vllm" if _vllm_usable() else "transformers"
    if kind == "vllm":
        from pipelines.llm.vllm_backend import VLLMBackend
        return VLLMBackend(model, cfg)
    from pipelines.llm.hf_backend import HFBackend
    return HFBackend(model, cfg)


def _vllm_usable() -> bool:
    try:
        import torch
        if not torch.cuda.is_available():
            return False
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True
