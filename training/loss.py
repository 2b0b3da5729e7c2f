"""Cross-entropy of the language-model head, computed in row chunks without the full logits.

The output projection and its softmax are most of a small model's step (for a 25M Llama with
SmolLM2's 49,152-token vocabulary: 60% of forward + backward on the CPU), and the [tokens, vocab]
logits are the largest tensors of the step. `linear_cross_entropy` takes the decoder's last hidden
states and the head's weight, keeps only rows that carry a label (a prompt's tokens under an
answer-only loss cost nothing), and, chunk by chunk, computes the logits, their log-sum-exp and,
when gradients are wanted, the gradient of the summed loss with respect to the hidden states and the
weight, right away: the chunk's logits are overwritten by the softmax and dropped. Backward then
only scales the stored gradients. FLOPs are those of the plain head (three matmuls); memory holds a
chunk of logits instead of all of them, and the passes of a separate log-softmax and its backward
over the full logits are gone.

`FusedHead.of` says whether a model can use it: a known decoder-only family whose logits are exactly
`lm_head(hidden)` (no soft-capping, scaling or bias). Anything else keeps the model's own forward.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from training.data import IGNORE

PLAIN_HEAD_FAMILIES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "phi3", "olmo2"})
"""model_type values whose CausalLM forward is `logits = lm_head(last_hidden_state)`."""


def chunk_rows(vocab: int, budget_elements: int = 1 << 26) -> int:
    """Rows per chunk: about 256 MB of fp32 logits (a multiple of 64, at least 64); bigger chunks keep
    the CPU matmuls efficient (1,024 rows of a 49,152 vocabulary: 13% faster than the plain head)."""
    return max(64, (budget_elements // max(1, vocab)) // 64 * 64)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, rows: int) -> torch.Tensor:
        keep = (labels != IGNORE).nonzero().squeeze(1)
        h, y = hidden.index_select(0, keep), labels.index_select(0, keep)
        want_h, want_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_h = torch.empty_like(h) if want_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if want_w else None
        for s in range(0, h.size(0), rows):
            hc, yc = h[s:s + rows], y[s:s + rows]
            logits = (hc @ weight.t()).float()
            lse = torch.logsumexp(logits, dim=-1)
            loss += (lse - logits.gather(1, yc[:, None]).squeeze(1)).sum()
            if not (want_h or want_w):
                continue
            g = logits.sub_(lse[:, None]).exp_()  # softmax, in place
            g[torch.arange(g.size(0), device=g.device), yc] -= 1.0
            g = g.to(hidden.dtype)
            if want_h:
                torch.matmul(g, weight, out=grad_h[s:s + rows])
            if want_w:
                if g.dtype == torch.float32:
                    grad_w.addmm_(g.t(), hc)
                else:  # bf16 matmul, fp32 accumulation across chunks
                    grad_w += (g.t() @ hc).float()
        ctx.save_for_backward(keep, grad_h if want_h else torch.empty(0), grad_w if want_w else torch.empty(0))
        ctx.shape, ctx.dtypes = hidden.shape, (hidden.dtype, weight.dtype)
        return loss

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        keep, grad_h, grad_w = ctx.saved_tensors
        d_hidden = d_weight = None
        if ctx.needs_input_grad[0]:
            d_hidden = torch.zeros(ctx.shape, dtype=ctx.dtypes[0], device=grad_h.device)
            d_hidden.index_copy_(0, keep, grad_h * grad_out.to(grad_h.dtype))
        if ctx.needs_input_grad[1]:
            d_weight = (grad_w * grad_out).to(ctx.dtypes[1])
        return d_hidden, d_weight, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                         rows: int | None = None) -> torch.Tensor:
    """Sum over labelled rows of cross_entropy(hidden @ weight.T, labels): hidden [N, H], weight
    [V, H], labels [N] with IGNORE (-100) on rows without a target. fp32 result."""
    if hidden.dim() != 2 or labels.shape != hidden.shape[:1] or weight.size(1) != hidden.size(1):
        raise ValueError(f"hidden [N, H], weight [V, H], labels [N] expected; got {tuple(hidden.shape)}, "
                         f"{tuple(weight.shape)}, {tuple(labels.shape)}")
    rows = rows or chunk_rows(weight.size(0))
    device = hidden.device.type
    if not torch.is_autocast_enabled(device):
        return _LinearCrossEntropy.apply(hidden, weight, labels, rows)
    # under autocast: the head's matmuls in the autocast dtype, done here (autocast cannot write into
    # the preallocated gradient buffers); logits and log-sum-exp in fp32, the weight gradient summed in fp32
    dtype = torch.get_autocast_dtype(device)
    with torch.autocast(device, enabled=False):
        return _LinearCrossEntropy.apply(hidden.to(dtype), weight.to(dtype), labels, rows)


class FusedHead:
    """The language-model head of a model whose logits are exactly `lm_head(last_hidden_state)`:
    forward runs the model (through its DeepSpeed engine, so the engine's hooks run) with the head
    swapped for a pass-through, and the loss is `linear_cross_entropy` over the head's weight.
    `FusedHead.of(model)` is None for any other model (a PEFT wrapper is looked through; its LoRA
    layers live inside the decoder)."""

    def __init__(self, owner: torch.nn.Module, name: str, head: torch.nn.Linear) -> None:
        self.owner, self.name, self.head = owner, name, head

    @classmethod
    def of(cls, model) -> FusedHead | None:
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

    def loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Summed cross-entropy of hidden [..., H] against labels [...] (IGNORE rows skipped)."""
        return linear_cross_entropy(hidden.reshape(-1, hidden.size(-1)), self.head.weight, labels.reshape(-1))


class _PassThrough(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
