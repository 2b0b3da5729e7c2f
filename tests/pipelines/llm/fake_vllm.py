"""A stand-in for the `vllm` package, for the vLLM backend's contract on a CPU (vLLM's wheel is the CUDA
build and does not travel to the GPU machine either).

It answers the calls telelake makes, with vLLM's argument names and result shapes, from a real
transformers model: `LLM(model=..., ...)`, `get_tokenizer()`, `generate(prompts, SamplingParams,
lora_request=..., use_tqdm=False)` returning RequestOutputs whose `prompt_logprobs[pos]` maps the token
at `pos` to a Logprob (None at position 0) and whose `outputs[i].text` are completions cut at the stop
strings. A `LoRARequest` applies its PEFT adapter. Everything the engine was asked is recorded in
`LLM.calls`, so a test checks what telelake sends as well as what it makes of the answers.
"""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = 16
    stop: list[str] | None = None
    seed: int | None = None
    prompt_logprobs: int | None = None
    structured_outputs: object = None


@dataclass
class StructuredOutputsParams:
    json: object = None


@dataclass
class LoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str


@dataclass
class Logprob:
    logprob: float


@dataclass
class CompletionOutput:
    text: str


@dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput] = field(default_factory=list)
    prompt_logprobs: list | None = None


def TokensPrompt(prompt_token_ids: list[int]) -> dict:  # noqa: N802 - vLLM's name (a TypedDict there)
    return {"prompt_token_ids": prompt_token_ids}


class LLM:
    instances: list[LLM] = []

    def __init__(self, model: str, tokenizer: str | None = None, **kwargs) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.kwargs = {"model": model, "tokenizer": tokenizer, **kwargs}
        self.calls: list[dict] = []
        self._tok = AutoTokenizer.from_pretrained(tokenizer or model)
        self.base = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
        self._adapters: dict[str, object] = {}
        LLM.instances.append(self)

    def get_tokenizer(self):
        return self._tok

    def generate(self, prompts, params: SamplingParams, lora_request: LoRARequest | None = None,
                 use_tqdm: bool = True) -> list[RequestOutput]:
        self.calls.append({"prompts": list(prompts), "params": params, "lora_request": lora_request,
                           "use_tqdm": use_tqdm})
        model = self._model(lora_request)
        out = []
        for p in prompts:
            ids = p["prompt_token_ids"] if isinstance(p, dict) else self._tok.encode(p, add_special_tokens=False)
            r = RequestOutput(prompt_token_ids=list(ids))
            if params.prompt_logprobs is not None:
                r.prompt_logprobs = self._prompt_logprobs(model, ids)
            r.outputs = [CompletionOutput(self._complete(model, ids, params)) for _ in range(params.n)]
            out.append(r)
        return out

    def _model(self, lora: LoRARequest | None):
        if lora is None:
            return self.base
        if lora.lora_name not in self._adapters:
            import copy

            from peft import PeftModel

            self._adapters[lora.lora_name] = PeftModel.from_pretrained(copy.deepcopy(self.base), lora.lora_path).eval()
        return self._adapters[lora.lora_name]

    @staticmethod
    def _prompt_logprobs(model, ids: list[int]) -> list:
        import torch

        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
        return [None] + [{ids[pos]: Logprob(float(logp[pos - 1, ids[pos]]))} for pos in range(1, len(ids))]

    def _complete(self, model, ids: list[int], params: SamplingParams) -> str:
        import torch

        if not params.max_tokens:
            return ""
        sample = params.temperature > 0
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with torch.no_grad():
            gen = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=params.max_tokens, do_sample=sample,
                                 temperature=params.temperature if sample else None, top_p=params.top_p if sample else None,
                                 top_k=None, pad_token_id=self._tok.eos_token_id)
        text = self._tok.decode(gen[0, len(ids):], skip_special_tokens=True)
        cuts = [text.find(s) for s in params.stop or () if s in text]
        return text[:min(cuts)] if cuts else text


def install(monkeypatch) -> None:
    """Make `import vllm` (and the submodules telelake uses) import this stand-in."""
    LLM.instances.clear()
    root = types.ModuleType("vllm")
    root.LLM, root.SamplingParams = LLM, SamplingParams
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = TokensPrompt
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.StructuredOutputsParams, sampling.SamplingParams = StructuredOutputsParams, SamplingParams
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = LoRARequest
    for name, module in {"vllm": root, "vllm.inputs": inputs, "vllm.sampling_params": sampling, "vllm.lora": lora,
                         "vllm.lora.request": request}.items():
        monkeypatch.setitem(sys.modules, name, module)
