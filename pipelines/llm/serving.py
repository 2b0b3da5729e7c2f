"""Serve many LoRA adapters on one base model: the base is loaded once, and each request is answered
by its category's adapter (paper 001's deployment: one small adapter per task on a frozen backbone).

- CPU / transformers: PEFT multi-adapter. Every adapter is checked against the base (module names
  and shapes, eval/subjects.check_adapter) and loaded under its category's name; a batch is grouped
  by category and each group generates with `set_adapter(category)`. A request whose category has no
  adapter (or "base") is answered by the base with the adapters disabled.
- GPU / vLLM: one engine with `enable_lora`, and a `LoRARequest` per request naming its adapter; vLLM
  batches requests of different adapters together (its Punica kernels). Not verified on this
  project's CPU machines.

A request without a category is routed first: the router (pipelines/llm/router.py) names the
category; its choice and probability come back with the answer.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.llm.backend import BackendConfig, SamplingParams
from pipelines.llm.models import ModelError, ResolvedModel

log = logging.getLogger(__name__)

BASE = "base"
"""The category name that asks for the backbone without any adapter."""


@dataclass(frozen=True)
class Request:
    prompt: str
    """A rendered prompt (chat template applied)."""
    category: str | None = None
    """The adapter to answer with; None: the router decides."""
    text: str | None = None
    """What the router reads (the question and its options); default the prompt."""


@dataclass(frozen=True)
class Answer:
    completions: list[str]
    category: str
    """The adapter that answered (BASE for none)."""
    routed: bool
    router_probability: float | None


class AdapterServer:
    def __init__(self, base: ResolvedModel, adapters: dict[str, str], cfg: BackendConfig | None = None,
                 router: str | None = None) -> None:
        from eval.subjects import check_adapter

        if BASE in adapters:
            raise ModelError(f"adapter name {BASE!r} is reserved for the backbone without adapters")
        self.cfg = cfg or BackendConfig()
        self.adapters = dict(adapters)
        for name, folder in self.adapters.items():
            check_adapter(Path(folder), Path(base.path))  # an adapter of another base fails here, named
        kind = self.cfg.kind
        if kind == "auto":
            from pipelines.llm.backend import _vllm_usable

            kind = "vllm" if _vllm_usable() else "transformers"
        self.kind = kind
        self.engine = _VLLMAdapters(base, self.adapters, self.cfg) if kind == "vllm" else _PeftAdapters(
            base, self.adapters, self.cfg)
        self.router = None
        if router:
            from pipelines.llm.router import load_router

            self.router = load_router(router)
        self.calls: dict[str, int] = defaultdict(int)
        """Generation calls per adapter (tests and benchmarks read it)."""

    def answer(self, requests: Sequence[Request], params: SamplingParams) -> list[Answer]:
        routed = self._route(requests)
        groups: dict[str, list[int]] = defaultdict(list)
        for i, (category, _, _) in enumerate(routed):
            groups[category if category in self.adapters else BASE].append(i)
        out: list[Answer | None] = [None] * len(requests)
        for category, idx in sorted(groups.items()):
            texts = self.engine.generate(category, [requests[i].prompt for i in idx], params)
            self.calls[category] += 1
            for i, t in zip(idx, texts, strict=True):
                _, was_routed, p = routed[i]
                out[i] = Answer(completions=t, category=category, routed=was_routed, router_probability=p)
        return out  # type: ignore[return-value]

    def _route(self, requests: Sequence[Request]) -> list[tuple[str, bool, float | None]]:
        from pipelines.llm.router import route

        todo = [i for i, r in enumerate(requests) if r.category is None]
        if todo and self.router is None:
            raise ModelError(f"{len(todo)} requests name no category (e.g. request {todo[0]}) and the server has "
                             f"no router; give each a category or start the server with a router")
        picks = dict(zip(todo, route(self.router, [requests[i].text or requests[i].prompt for i in todo]))) if todo else {}
        return [(r.category, False, None) if r.category is not None else (picks[i][0], True, picks[i][1])
                for i, r in enumerate(requests)]


class _PeftAdapters:
    def __init__(self, base: ResolvedModel, adapters: dict[str, str], cfg: BackendConfig) -> None:
        from peft import PeftModel

        from pipelines.llm.hf_backend import HFBackend

        self.backend = HFBackend(base, cfg)  # loads the base once
        self.names = list(adapters)
        if adapters:
            first, *rest = self.names
            model = PeftModel.from_pretrained(self.backend.model, adapters[first], adapter_name=first)
            for name in rest:
                model.load_adapter(adapters[name], adapter_name=name)
            self.backend.model = model.eval()
            log.info("serving %d adapters on %s: %s", len(self.names), base.path, ", ".join(self.names))

    def generate(self, adapter: str, prompts: list[str], params: SamplingParams) -> list[list[str]]:
        model = self.backend.model
        if adapter == BASE:
            if not self.names:
                return self.backend.generate(prompts, params)
            with model.disable_adapter():
                return self.backend.generate(prompts, params)
        model.set_adapter(adapter)
        return self.backend.generate(prompts, params)


class _VLLMAdapters:
    """vLLM with LoRA: requests carry a LoRARequest (name, integer id, folder)."""

    def __init__(self, base: ResolvedModel, adapters: dict[str, str], cfg: BackendConfig) -> None:
        import json

        from vllm import LLM
        from vllm.lora.request import LoRARequest

        ranks = [json.loads((Path(p) / "adapter_config.json").read_text())["r"] for p in adapters.values()]
        self.llm = LLM(model=base.path, tokenizer=base.path, dtype={"auto": "bfloat16"}.get(cfg.dtype, cfg.dtype),
                       seed=0, tensor_parallel_size=cfg.tensor_parallel_size,
                       gpu_memory_utilization=cfg.gpu_memory_utilization, enable_prefix_caching=cfg.enable_prefix_caching,
                       max_model_len=cfg.max_context_tokens, enable_lora=True, max_loras=max(1, len(adapters)),
                       max_lora_rank=max(ranks, default=16))
        self.requests = {name: LoRARequest(name, i + 1, str(path)) for i, (name, path) in enumerate(adapters.items())}

    def generate(self, adapter: str, prompts: list[str], params: SamplingParams) -> list[list[str]]:
        from vllm import SamplingParams as VParams

        vp = VParams(n=params.n, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens,
                     stop=list(params.stop) or None, seed=params.seed)
        outs = self.llm.generate(list(prompts), vp, lora_request=self.requests.get(adapter), use_tqdm=False)
        return [[c.text for c in o.outputs] for o in outs]
