"""Cleanliness measure (paper §III-A, eq. 3-4, Figs. 2-3): how hard a reference LM finds a text.

Raw and cleaned texts are cut into non-overlapping chunks of T tokens; the reference LM (default the
embedded SmolLM2, GPT-2 or any local causal LM through conf) gives the cross-entropy of every token
given the ones before it in its chunk. For each set the 90th percentile τ is taken and the tokens at
or above it (the hardest 10%) summarised by mean and standard deviation: cleaner text has a lower
mean and a narrower spread. Histograms of both tails are written as PNG beside the report.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TailStats:
    tokens: int
    chunks: int
    mean_all: float
    tau: float
    tail_tokens: int
    tail_mean: float
    tail_std: float

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def tail_stats(losses: np.ndarray, chunks: int, quantile: float = 0.9) -> TailStats:
    """Summary of the per-token losses at or above their `quantile` (eq. 4's R_high / C_high)."""
    if losses.size == 0:
        nan = float("nan")
        return TailStats(0, chunks, nan, nan, 0, nan, nan)
    tau = float(np.quantile(losses, quantile))
    tail = losses[losses >= tau]
    return TailStats(tokens=int(losses.size), chunks=chunks, mean_all=float(losses.mean()), tau=tau,
                     tail_tokens=int(tail.size), tail_mean=float(tail.mean()), tail_std=float(tail.std()))


class ReferenceLM:
    """A causal LM that scores tokens; loaded once, CPU or GPU."""

    def __init__(self, model_path: str, device: str | None = None, batch_size: int = 4) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(self.device).eval()
        self.batch_size = batch_size
        self.max_positions = int(getattr(self.model.config, "max_position_embeddings", 0) or 1 << 30)

    def chunks(self, text: str, T: int, max_tokens: int | None = None) -> list[list[int]]:
        """Non-overlapping T-token chunks of `text` (the last one may be shorter; 1-token tails dropped)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if max_tokens:
            ids = ids[:max_tokens]
        return [c for i in range(0, len(ids), T) if len(c := ids[i:i + T]) > 1]

    def token_losses(self, chunks: list[list[int]]) -> np.ndarray:
        """Cross-entropy (nats) of every token but the first of each chunk, given its chunk prefix."""
        torch = self.torch
        out = []
        for start in range(0, len(chunks), self.batch_size):
            group = chunks[start:start + self.batch_size]
            width = max(len(c) for c in group)
            ids = torch.zeros((len(group), width), dtype=torch.long)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for i, c in enumerate(group):
                ids[i, :len(c)] = torch.tensor(c)
                mask[i, :len(c)] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            target = ids[:, 1:].to(self.device)
            nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            keep = mask[:, 1:].bool().to(self.device)
            out.append(nll[keep].cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)


def plot_tails(raw: np.ndarray, cleaned: np.ndarray, raw_stats: TailStats, clean_stats: TailStats, out_dir) -> list[str]:
    """raw_tail.png, cleaned_tail.png (Figs. 2-3) and tails_overlay.png; returns the file names."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tails = {"raw": raw[raw >= raw_stats.tau] if raw.size else raw,
             "cleaned": cleaned[cleaned >= clean_stats.tau] if cleaned.size else cleaned}
    hi = max([t.max() for t in tails.values() if t.size] or [1.0])
    lo = min([t.min() for t in tails.values() if t.size] or [0.0])
    bins = np.linspace(lo, hi, 40) if hi > lo else 10
    names = []
    for label, stats, color in (("raw", raw_stats, "tab:red"), ("cleaned", clean_stats, "tab:blue")):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(tails[label], bins=bins, color=color, alpha=0.8)
        ax.set_title(f"{label}: tokens ≥ Q0.9 (τ={stats.tau:.2f}): mean {stats.tail_mean:.2f}, std {stats.tail_std:.2f}")
        ax.set_xlabel("cross-entropy per token (nats)")
        ax.set_ylabel("tokens")
        fig.tight_layout()
        fig.savefig(out_dir / f"{label}_tail.png", dpi=110)
        plt.close(fig)
        names.append(f"{label}_tail.png")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, color in (("raw", "tab:red"), ("cleaned", "tab:blue")):
        ax.hist(tails[label], bins=bins, color=color, alpha=0.5, label=label, density=True)
    ax.set_xlabel("cross-entropy per token (nats), hardest 10% of each set")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "tails_overlay.png", dpi=110)
    plt.close(fig)
    return names + ["tails_overlay.png"]


def fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"
