"""Model FLOPs per token, device peak and MFU; the learning-rate schedule. Pure functions.

MFU follows PaLM (appendix B) as torchtitan does: 6·N FLOPs per token for the weight matmuls of a
forward and backward pass (N: parameters without the input embedding), plus 12·layers·hidden·T for
attention over a T-token context. A LoRA run does no weight-gradient matmuls for the frozen base:
4·N_frozen + 6·N_adapter.
"""
from __future__ import annotations

import math
import time

PEAK_TFLOPS = {  # dense bf16 tensor-core peak per device, vendor data sheets
    "H200": 989.5, "H100": 989.5, "H800": 989.5, "GH200": 989.5, "A100": 312.0, "A800": 312.0, "L40S": 362.1,
    "L4": 121.0, "A10G": 125.0, "B200": 2250.0,
}


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token of `model` (a transformers model, possibly a PEFT wrapper)."""
    cfg = model.config
    embed = model.get_input_embeddings().weight
    frozen = trainable = 0
    for p in model.parameters():
        if p is embed:
            continue
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    if getattr(cfg, "tie_word_embeddings", False):  # the output head is the embedding matrix: it is a matmul
        if embed.requires_grad:
            trainable += embed.numel()
        else:
            frozen += embed.numel()
    layers = getattr(cfg, "num_hidden_layers", 0)
    hidden = getattr(cfg, "hidden_size", 0)
    return 6.0 * trainable + 4.0 * frozen + 12.0 * layers * hidden * seq_len


def device_peak_flops(device_name: str | None, override_tflops: float | None = None,
                      bf16: bool = False) -> tuple[float, str]:
    """(peak FLOP/s of one device, how it was found). On CPU: a measured fp32 matmul rate, or the
    bf16 one when the forward runs under bf16 autocast."""
    if override_tflops:
        return override_tflops * 1e12, "conf peak_tflops"
    if device_name:
        for key, tflops in PEAK_TFLOPS.items():
            if key in device_name.upper():
                return tflops * 1e12, f"{key} bf16 data sheet"
        return 0.0, f"unknown device {device_name!r}: set peak_tflops for MFU"
    return measured_cpu_flops(bf16=bf16), f"measured {'bf16' if bf16 else 'fp32'} matmul on this CPU"


def measured_cpu_flops(n: int = 1024, repeats: int = 5, bf16: bool = False) -> float:
    return measured_matmul_flops("cpu", n=n, repeats=repeats, bf16=bf16)


def measured_matmul_flops(device: str = "cpu", *, n: int = 1024, repeats: int = 5, bf16: bool = False) -> float:
    """FLOP/s of an n³ matmul on `device`, the best of `repeats` after a warm-up (random data; the device
    synchronized around each)."""
    import torch

    dtype = torch.bfloat16 if bf16 else torch.float32
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    sync = torch.cuda.synchronize if a.is_cuda else (lambda: None)
    a @ b
    best = math.inf
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def prompt_flops(model, lengths: list[int]) -> float:
    """Forward FLOPs of scoring prompts of these token lengths: 2·N per token for the weights (embedding
    excluded), causal attention 2·layers·hidden·T² per prompt, and the head on one position per prompt."""
    cfg = model.config
    vocab = model.get_input_embeddings().weight
    body = sum(p.numel() for p in model.parameters()) - vocab.numel()
    return sum(2 * body * t + 2 * cfg.num_hidden_layers * cfg.hidden_size * t * t + 2 * vocab.numel() for t in lengths)


def mfu(flops_token: float, tokens_per_s: float, peak: float, devices: int) -> float | None:
    """Model FLOPs utilization; tokens_per_s counts every position computed (padding included)."""
    if peak <= 0:
        return None
    return flops_token * tokens_per_s / (peak * devices)


def lr_factor(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """Multiplier of the peak lr at optimizer step `step` (0-based): linear warm-up over `warmup`
    steps, then cosine decay to `min_ratio` at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
