"""transformers backend: batched, deterministic forwards on CPU (or a GPU without vLLM).

Requests are sorted by length and packed into batches of at most `max_batch_tokens` padded tokens.
Scoring (`next_token_logprobs`, `continuation_logprob`) right-pads each batch and passes no attention
mask: under a causal mask a prompt's tokens never see the padding after them, so the scores are those
of the prompt alone, and the attention runs the plain causal kernel (flash on a GPU) instead of a
masked one. The model runs without its head; the head runs only on the positions that are scored
(the last one of each prompt, or a continuation's), and each batch's scores come back to the host in
one copy. Generation left-pads with an attention mask, as `generate` wants. Rendered prompts already
hold the special tokens of the chat template, so tokenization adds none.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np

from pipelines.llm.backend import BackendConfig, BackendError, SamplingParams
from pipelines.llm.head import OutputHead
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
        self.head = OutputHead.of(self.model)
        """The plain output head, run on the scored positions only; None: the model's forward computes
        the logits of every position (a family whose logits are not lm_head(hidden))."""
        self.forwards = 0
        """Model forward calls made (tests and benchmarks read it)."""

    def tokenizer(self):
        return self._tok

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self._tok(list(texts), add_special_tokens=False)["input_ids"]

    def next_token_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int]) -> np.ndarray:
        ids = self.encode(prompts)
        out = np.zeros((len(prompts), len(token_ids)), np.float32)
        want = self.torch.tensor(list(token_ids), device=self.device)
        _refuse_empty([i for i, seq in enumerate(ids) if not seq], "prompt")
        for idx, batch in self._batches(ids):
            logits = self._scores(batch, list(range(len(batch))), [len(seq) - 1 for seq in batch])  # [rows, vocab]
            out[idx] = self.torch.log_softmax(logits, -1).index_select(1, want).cpu().numpy()
        return out

    def continuation_logprob(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        heads, tails = self.encode(prompts), self.encode(continuations)
        joined = [h + t for h, t in zip(heads, tails)]
        _refuse_empty([i for i, (h, t) in enumerate(zip(heads, tails)) if t and not h], "prompt before a continuation")
        out = [0.0] * len(prompts)
        for idx, batch in self._batches(joined):
            # the logits at position p predict token p+1: a tail of n tokens is read at the n positions before it
            rows, cols, targets = [], [], []
            for row, i in enumerate(idx):
                n, end = len(tails[i]), len(joined[i])
                rows += [row] * n
                cols += range(end - n - 1, end - 1)
                targets += tails[i]
            if not targets:
                continue
            logits = self._scores(batch, rows, cols)
            t = self.torch.tensor(targets, device=self.device)
            picked = self.torch.log_softmax(logits, -1).gather(1, t[:, None]).squeeze(1).double()
            sums = self.torch.zeros(len(idx), dtype=self.torch.float64, device=self.device)
            sums.index_add_(0, self.torch.tensor(rows, device=self.device), picked)
            for i, value in zip(idx, sums.cpu().tolist()):  # one copy back per batch
                out[i] = value
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

    def _pad(self, batch: list[list[int]], *, left: bool = True):
        """(input ids, attention mask) of the batch on the device, padded on the left (generation) or the
        right (scoring, where the mask is not used)."""
        width = max(len(s) for s in batch)
        input_ids = self.torch.full((len(batch), width), self.pad_id, dtype=self.torch.long)
        mask = self.torch.zeros((len(batch), width), dtype=self.torch.long)
        for row, seq in enumerate(batch):
            if seq:
                span = slice(width - len(seq), width) if left else slice(0, len(seq))
                input_ids[row, span] = self.torch.tensor(seq)
                mask[row, span] = 1
        return input_ids.to(self.device), mask.to(self.device)

    def _scores(self, batch: list[list[int]], rows: list[int], cols: list[int]):
        """float32 logits [positions, vocab] at the positions (rows[k], cols[k]) of the right-padded batch,
        with no attention mask and the head on those positions alone."""
        ids, _ = self._pad(batch, left=False)
        flat = self.torch.tensor([r * ids.size(1) + c for r, c in zip(rows, cols)], device=self.device)
        with self.torch.no_grad():
            if self.head is not None:
                with self.head.headless():
                    hidden = self.model(input_ids=ids, use_cache=False).logits
                logits = self.head.head(hidden.reshape(-1, hidden.size(-1)).index_select(0, flat))
            else:
                logits = self.model(input_ids=ids, use_cache=False).logits
                logits = logits.reshape(-1, logits.size(-1)).index_select(0, flat)
        self.forwards += 1
        return logits.float()


def _refuse_empty(empty: list[int], what: str) -> None:
    if empty:
        raise BackendError(f"request {empty[0]} has an empty {what}: there is no position to score from")


def _cut(text: str, stop: Sequence[str]) -> str:
    cut = min((text.find(s) for s in stop if s in text), default=-1)
    return text if cut < 0 else text[:cut]
