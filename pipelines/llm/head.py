"""The output head of a decoder whose logits are exactly `lm_head(last_hidden_state)`.

Such a model can run without its head (`headless`: the forward returns the last hidden states where
it would return logits), so the head runs only where logits are wanted: the scored positions of the
LLM stage, the labelled positions of a training loss (training/loss.py). `OutputHead.of(model)` is
None for any other model: an unknown family, logit soft-capping or scaling, a head with a bias. A PEFT
wrapper is looked through (its LoRA layers live inside the decoder).
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

PLAIN_HEAD_FAMILIES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "phi3", "olmo2"})
"""model_type values whose CausalLM forward is `logits = lm_head(last_hidden_state)`."""


class OutputHead:
    def __init__(self, owner: torch.nn.Module, name: str, head: torch.nn.Linear) -> None:
        self.owner, self.name, self.head = owner, name, head

    @classmethod
    def of(cls, model):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        config = getattr(base, "config", None)
        if getattr(config, "model_type", None) not in PLAIN_HEAD_FAMILIES:
            return None
        if getattr(config, "final_logit_softcapping", None) is not None or getattr(config, "logit_scale", None):
            return None
        head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
        if type(head) is not torch.nn.Linear or head.bias is not None:
            return None
        name = next((n for n, m in base.named_children() if m is head), None)
        return cls(base, name, head) if name else None

    @contextmanager
    def headless(self):
        """Within: the model returns its last hidden states where it would return logits."""
        self.owner._modules[self.name] = _PassThrough()
        try:
            yield
        finally:
            self.owner._modules[self.name] = self.head


class _PassThrough(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
