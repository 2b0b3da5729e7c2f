"""transformers backend: batched, deterministic forwards on CPU (or a GPU without vLLM).

Requests are sorted by length and packed into batches of at most `max_batch_tokens` padded tokens,
left-padded with explicit position ids, so a prompt's scores do not depend on its neighbours'
lengths beyond float rounding. Rendered prompts already hold the special tokens of the chat
template, so tokenization adds none.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np

from pipelines.llm.backend import BackendConfig, BackendError, SamplingParams
from pipelines.llm.models import ResolvedModel

log = logging.getLogger(__name__)


class HFBackend:
    def __init__(self, model: ResolvedModel, cfg: BackendConfig) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.cfg = cfg
        self.model_name, self.revision = model.name, model.revision
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cpu":
            torch.set_num_threads(max(1, cfg.threads))
        dtype = {"auto": torch.bfloat16 if self.device == "cuda" else torch.float32, "float32": torch.float32,
                 "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.dtype]
        self._tok = AutoTokenizer.from_pretrained(model.path)
        self.model = AutoModelForCausalLM.from_pretrained(model.path, dtype=dtype).to(self.device).eval()
        self.pad_id = self._tok.pad_token_id if self._tok.pad_token_id is not None else self._tok.eos_token_id
        self.forwards = 0
        """Model forward calls made (tests and benchmarks read it)."""

    def tokenizer(self):
        return self._tok

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self._tok(list(texts), add_special_tokens=False)["input_ids"]

    def next_token_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int]) -> np.ndarray:
        ids = self.encode(prompts)
        out = np.zeros((len(prompts), len(token_ids)), np.float32)
        want = self.torch.tensor(list(token_ids))
        for idx, batch in self._batches(ids):
            logits = self._forward(batch, keep=1)[:, -1, :].float()
            out[idx] = self.torch.log_softmax(logits, -1)[:, want].cpu().numpy()
        return out

    def continuation_logprob(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        heads, tails = self.encode(prompts), self.encode(continuations)
        joined = [h + t for h, t in zip(heads, tails)]
        out = [0.0] * len(prompts)
        for idx, batch in self._batches(joined):
            # only the right edge holds the tails: the LM head runs on those positions alone
            keep = max(len(tails[i]) for i in idx) + 1
            logp = self.torch.log_softmax(self._forward(batch, keep=keep).float(), -1)
            width = logp.shape[1]
            for row, i in enumerate(idx):
                tail = tails[i]
                if not tail:
                    continue
                # the logits at position p predict token p+1; the tail sits at the right edge
                pos = self.torch.arange(width - len(tail) - 1, width - 1)
                out[i] = float(logp[row, pos, self.torch.tensor(tail)].sum())
        return out

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[str]]:
        ids = self.encode(prompts)
        out: list[list[str]] = [[] for _ in prompts]
        sample = params.temperature > 0
        for idx, batch in self._batches(ids, extra_tokens=params.max_tokens):
            self.torch.manual_seed(params.seed)
            input_ids, mask = self._pad(batch)
            with self.torch.no_grad():
                gen = self.model.generate(
                    input_ids=input_ids, attention_mask=mask, max_new_tokens=params.max_tokens,
                    do_sample=sample, temperature=params.temperature if sample else None,
                    top_p=params.top_p if sample else None, top_k=None,
                    num_return_sequences=params.n, pad_token_id=self.pad_id,
                    stop_strings=list(params.stop) or None, tokenizer=self._tok if params.stop else None)
            self.forwards += 1
            texts = self._tok.batch_decode(gen[:, input_ids.shape[1]:], skip_special_tokens=True)
            for row, i in enumerate(idx):
                for text in texts[row * params.n:(row + 1) * params.n]:
                    out[i].append(_cut(text, params.stop))
        return out

    # -- batching ---------------------------------------------------------------------------------

    def _batches(self, ids: list[list[int]], extra_tokens: int = 0) -> Iterator[tuple[list[int], list[list[int]]]]:
        for i, seq in enumerate(ids):
            if len(seq) + extra_tokens > self.cfg.max_context_tokens:
                raise BackendError(f"request {i} has {len(seq)} prompt tokens (+{extra_tokens} to generate), over "
                                   f"max_context_tokens={self.cfg.max_context_tokens}; truncate it first")
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
        batch: list[int] = []
        for i in order:
            width = len(ids[i]) + extra_tokens  # sorted: the newest is the longest
            if batch and ((len(batch) + 1) * width > self.cfg.max_batch_tokens or len(batch) >= self.cfg.max_batch_size):
                yield batch, [ids[j] for j in batch]
                batch = []
            batch.append(i)
        if batch:
            yield batch, [ids[j] for j in batch]

    def _pad(self, batch: list[list[int]]):
        width = max(len(s) for s in batch)
        input_ids = self.torch.full((len(batch), width), self.pad_id, dtype=self.torch.long)
        mask = self.torch.zeros((len(batch), width), dtype=self.torch.long)
        for row, seq in enumerate(batch):
            if seq:
                input_ids[row, width - len(seq):] = self.torch.tensor(seq)
                mask[row, width - len(seq):] = 1
        return input_ids.to(self.device), mask.to(self.device)

    def _forward(self, batch: list[list[int]], keep: int = 0):
        """Logits of the padded batch; keep > 0 computes them for the last `keep` positions only."""
        input_ids, mask = self._pad(batch)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with self.torch.no_grad():
            logits = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                                use_cache=False, logits_to_keep=keep).logits
        self.forwards += 1
        return logits


def _cut(text: str, stop: Sequence[str]) -> str:
    cut = min((text.find(s) for s in stop if s in text), default=-1)
    return text if cut < 0 else text[:cut]
