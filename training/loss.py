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

import torch

from pipelines.llm.head import OutputHead
from training.data import IGNORE


def chunk_rows(vocab: int, budget_elements: int = 1 << 26) -> int:
    """Rows per chunk: about 256 MB of fp32 logits (a multiple of 64, at least 64); bigger chunks keep
    the CPU matmuls efficient (1,024 rows of a 49,152 vocabulary: 13% faster than the plain head)."""
    return max(64, (budget_elements // max(1, vocab)) // 64 * 64)


_WORKSPACE: dict[tuple, torch.Tensor] = {}


def _chunk_buffer(rows: int, vocab: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
    """A [rows, vocab] buffer reused by every chunk of every step on a CPU, where each fresh allocation of
    a few hundred MB costs its page faults again (~20% of the head's forward matmul); None on a GPU, whose
    caching allocator already reuses the memory."""
    if device.type != "cpu":
        return None
    key = (dtype, str(device))
    buf = _WORKSPACE.get(key)
    if buf is None or buf.numel() < rows * vocab:
        buf = _WORKSPACE[key] = torch.empty(rows * vocab, dtype=dtype, device=device)
    return buf[:rows * vocab].view(rows, vocab)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, rows: int,
                keep: torch.Tensor) -> torch.Tensor:
        h, y = hidden.index_select(0, keep), labels.index_select(0, keep)
        want_h, want_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_h = torch.empty_like(h) if want_h else None
        grad_w = None
        n = h.size(0)
        rows = -(-n // max(1, -(-n // rows))) if n else rows  # equal chunks: a small last one computes slower
        buf = _chunk_buffer(min(rows, n), weight.size(0), h.dtype, h.device) if n and h.dtype == torch.float32 else None
        for s in range(0, n, rows):
            hc, yc = h[s:s + rows], y[s:s + rows]
            if buf is not None:  # fp32 on a CPU: into the reused buffer
                logits = torch.mm(hc, weight.t(), out=buf[:hc.size(0)])
            else:
                logits = (hc @ weight.t()).float()
            target = logits.gather(1, yc[:, None]).squeeze(1)
            top = logits.amax(dim=-1, keepdim=True)
            e = logits.sub_(top).exp_()  # one pass of exp, in place: the chunk's logits are not kept
            z = e.sum(dim=-1, keepdim=True)
            loss += (top.squeeze(1) + z.log().squeeze(1) - target).sum()
            if not (want_h or want_w):
                continue
            g = e.div_(z)  # softmax
            g[torch.arange(g.size(0), device=g.device), yc] -= 1.0
            g = g.to(hidden.dtype)
            if want_h:
                torch.matmul(g, weight, out=grad_h[s:s + rows])
            if want_w:
                if g.dtype == torch.float32:
                    grad_w = torch.mm(g.t(), hc) if grad_w is None else grad_w.addmm_(g.t(), hc)
                else:  # bf16 matmul, fp32 accumulation across chunks
                    part = (g.t() @ hc).float()
                    grad_w = part if grad_w is None else grad_w.add_(part)
        if want_w and grad_w is None:  # no labelled row
            grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        ctx.save_for_backward(keep, grad_h if want_h else h.new_empty(0), grad_w if want_w else h.new_empty(0))
        ctx.shape, ctx.dtypes = hidden.shape, (hidden.dtype, weight.dtype)
        return loss

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        keep, grad_h, grad_w = ctx.saved_tensors
        d_hidden = d_weight = None
        if ctx.needs_input_grad[0]:
            d_hidden = torch.zeros(ctx.shape, dtype=ctx.dtypes[0], device=grad_h.device)
            d_hidden.index_copy_(0, keep, grad_h * grad_out.to(grad_h.dtype))
        if ctx.needs_input_grad[1]:  # in place: the saved gradient is not needed again
            d_weight = grad_w.mul_(grad_out.to(grad_w.dtype)).to(ctx.dtypes[1])
        return d_hidden, d_weight, None, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                         rows: int | None = None, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over labelled rows of cross_entropy(hidden @ weight.T, labels): hidden [N, H], weight
    [V, H], labels [N] with IGNORE (-100) on rows without a target. fp32 result. `keep`: the indices
    of the labelled rows, on hidden's device, when the caller knows them (found on the host, they
    spare the device a sync: without them a `nonzero` waits for the GPU)."""
    if hidden.dim() != 2 or labels.shape != hidden.shape[:1] or weight.size(1) != hidden.size(1):
        raise ValueError(f"hidden [N, H], weight [V, H], labels [N] expected; got {tuple(hidden.shape)}, "
                         f"{tuple(weight.shape)}, {tuple(labels.shape)}")
    rows = rows or chunk_rows(weight.size(0))
    if keep is None:
        keep = (labels != IGNORE).nonzero().squeeze(1)
    device = hidden.device.type
    if not torch.is_autocast_enabled(device):
        return _LinearCrossEntropy.apply(hidden, weight, labels, rows, keep)
    # under autocast: the head's matmuls in the autocast dtype, done here (autocast cannot write into
    # the preallocated gradient buffers); logits and log-sum-exp in fp32, the weight gradient summed in fp32
    dtype = torch.get_autocast_dtype(device)
    with torch.autocast(device, enabled=False):
        return _LinearCrossEntropy.apply(hidden.to(dtype), weight.to(dtype), labels, rows, keep)


class FusedHead(OutputHead):
    """The head of a plain-head decoder (pipelines/llm/head.py) with the loss computed from its weight:
    forward runs the model (through its DeepSpeed engine, so the engine's hooks run) headless, and the
    loss is `linear_cross_entropy` over the head's weight. `FusedHead.of(model)` is None for any other
    model."""

    def loss(self, hidden: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Summed cross-entropy of hidden [..., H] against labels [...] (IGNORE rows skipped; `rows`: their
        flat indices, when known)."""
        return linear_cross_entropy(hidden.reshape(-1, hidden.size(-1)), self.head.weight, labels.reshape(-1),
                                    keep=rows)
