"""The judge's scoring pass (`next_token_logprobs`) on the CPU: the backend's batches against masked ones.

    .venv/bin/python benchmarks/judge_scoring.py --prompts 96 --threads 2

Prompts of 300-1,000 tokens cut from TeleQnA text (../shared/data/benchmarks), the embedded
SmolLM2-135M-Instruct in fp32, the same sorted batches of at most `max_batch_tokens` padded tokens:

- masked: left-padded with an attention mask and position ids, the head on the last position
  (`logits_to_keep=1`): the transformers backend before issue 27;
- ours: the backend now, right-padded without a mask (the causal mask keeps a prompt's tokens from the
  padding after them) and the head run only on each prompt's last position.

Alternated, the better of two; prints prompts/s, prompt FLOP/s against a measured fp32 matmul, the
ratio, and the largest difference between the two paths' log-probabilities.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def masked_scores(backend, prompts: list[str], token_ids: list[int]) -> np.ndarray:
    """The previous scoring pass: left padding, attention mask, position ids, head on the last position."""
    torch = backend.torch
    ids = backend.encode(prompts)
    out = np.zeros((len(prompts), len(token_ids)), np.float32)
    want = torch.tensor(token_ids)
    for idx, batch in backend._batches(ids):
        width = max(len(s) for s in batch)
        x = torch.full((len(batch), width), backend.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, seq in enumerate(batch):
            x[row, width - len(seq):] = torch.tensor(seq)
            mask[row, width - len(seq):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            logits = backend.model(input_ids=x, attention_mask=mask, position_ids=positions, use_cache=False,
                                   logits_to_keep=1).logits[:, -1, :].float()
        out[idx] = torch.log_softmax(logits, -1)[:, want].numpy()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=96)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-tokens", type=int, default=16384)
    args = p.parse_args()
    import torch
    from shards import corpus

    from pipelines.llm.backend import BackendConfig, load_backend
    from training.throughput import measured_cpu_flops, prompt_flops

    torch.set_num_threads(args.threads)
    backend = load_backend(BackendConfig(kind="transformers", threads=args.threads, max_context_tokens=2048,
                                         max_batch_tokens=args.batch_tokens))
    tok = backend.tokenizer()
    rng = np.random.default_rng(0)
    text = " ".join(corpus(2))
    ids = tok(text, add_special_tokens=False)["input_ids"]
    prompts = []
    for _ in range(args.prompts):
        n = int(rng.integers(300, 1001))
        start = int(rng.integers(0, len(ids) - n))
        prompts.append(tok.decode(ids[start:start + n]))
    labels = [tok.encode("Yes", add_special_tokens=False)[0], tok.encode("No", add_special_tokens=False)[0]]
    lengths = [len(x) for x in backend.encode(prompts)]
    flops = prompt_flops(backend.model, lengths)
    peak = measured_cpu_flops()
    runs = {"masked": lambda: masked_scores(backend, prompts, labels),
            "ours": lambda: backend.next_token_logprobs(prompts, labels)}
    runs["ours"]()  # warm-up
    best, scores = {}, {}
    for name in [*runs, *runs]:
        t0 = time.perf_counter()
        scores[name] = runs[name]()
        best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    for name, s in best.items():
        print(f"{name:7s} {args.prompts / s:6.2f} prompts/s, {sum(lengths) / s:,.0f} prompt tokens/s, "
              f"{100 * flops / s / peak:.1f}% of the measured fp32 matmul ({peak / 1e9:,.0f} GFLOP/s)")
    diff = float(np.abs(scores["ours"] - scores["masked"]).max())
    print(f"{args.prompts} prompts, {sum(lengths):,} tokens (300-1,000 each): ours / masked = "
          f"{best['masked'] / best['ours']:.2f}x; largest log-probability difference {diff:.2e}")


if __name__ == "__main__":
    main()
