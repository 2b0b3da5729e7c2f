"""Which documents train, in what order, and where each lands in the packed stream. Pure functions.

Every document has a seeded 64-bit key from (seed, table, doc id) alone, so its split, its place in
the order and the whole packing are the same whatever the number of Spark workers, files or ranks.

- **Split**: a document is held out for validation when a second seeded hash falls under
  `val_share` (continual pretraining; paper §VI holds out 10%); instruction sets carry their own split.
- **Blend**: `weights` maps a table (or `table:group`: a Tele-Data category; an instruction task, or
  `task/category` such as `mcq_answering/teleqna` for one benchmark's questions) to the share of training
  tokens it should make up, or to None for "every document once". Shares are met by taking documents
  in key order, cycling (a repeated document is a new copy) or stopping early; the paper's 5% general
  replay is `gold.general_replay: 0.05`.
- **Order**: copies are interleaved by a hash of (key, copy), so sources mix uniformly.
- **Packing**: each entry gets an offset in one virtual token stream where sequence k is
  [k·L, (k+1)·L). `stream` (pretraining) places documents back to back and splits them at sequence
  ends; `whole` (instruction tuning) never splits an example: it goes, in order, into the open
  sequence with the least room that fits it (best fit), so padding stays small.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa

MAX_KEY = (1 << 63) - 1


def doc_key(seed: int, table: str, doc_id: str) -> int:
    """The document's seeded order key (0 ≤ key < 2^63)."""
    d = hashlib.blake2b(f"{seed}\0{table}\0{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(d, "big") & MAX_KEY


def held_out(seed: int, table: str, doc_id: str, share: float) -> bool:
    """True when the document belongs to the validation split (an independent hash from its key)."""
    d = hashlib.blake2b(f"val\0{seed}\0{table}\0{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(d, "big") < share * (1 << 64)


def copy_key(key: int, copy: int) -> int:
    if copy == 0:
        return key
    d = hashlib.blake2b(f"{key}\0{copy}".encode(), digest_size=8).digest()
    return int.from_bytes(d, "big") & MAX_KEY


class BlendError(ValueError):
    """The blend weights cannot be met by the release."""


def blend_key(weights: dict, table: str, *groups: str) -> str | None:
    """The weights entry a document counts under: the first `table:group` named (groups from the most
    specific, e.g. an instruction's `task/category` then its `task`), else `table`, else None."""
    for group in groups:
        specific = f"{table}:{group}"
        if specific in weights:
            return specific
    return table if table in weights else None


@dataclass
class Blend:
    entries: pa.Table
    """table, doc_id, copy, n_tokens, blend: the training documents in stream order."""
    groups: dict[str, dict] = field(default_factory=dict)
    """per blend key: docs available, docs used, copies, tokens, share of the training tokens."""


def blend(meta: pa.Table, weights: dict[str, float | None]) -> Blend:
    """Training entries from `meta` (table, doc_id, key, n_tokens, blend: the documents of the train
    split with a blend key), meeting `weights` (see the module docstring)."""
    shares = {k: v for k, v in weights.items() if v is not None}
    anchors = [k for k, v in weights.items() if v is None]
    if any(not 0 < s < 1 for s in shares.values()):
        raise BlendError(f"blend shares must lie in (0, 1): {shares}; use null for 'every document once'")
    if anchors and sum(shares.values()) >= 1:
        raise BlendError(f"blend shares sum to {sum(shares.values()):.3f} with {anchors} taken whole: they must sum "
                         f"to less than 1")
    if not anchors and abs(sum(shares.values()) - 1) > 1e-6:
        raise BlendError(f"with no table taken whole (null), blend shares must sum to 1; they sum to "
                         f"{sum(shares.values()):.3f}")
    by_key: dict[str, dict[str, np.ndarray]] = {}
    cols = {c: meta.column(c).to_numpy(zero_copy_only=False) for c in ("table", "doc_id", "key", "n_tokens", "blend")}
    order = np.lexsort((cols["key"], cols["blend"]))
    for k in weights:
        sel = order[cols["blend"][order] == k]
        by_key[k] = {c: cols[c][sel] for c in ("table", "doc_id", "key", "n_tokens")}
    empty = [k for k, g in by_key.items() if g["n_tokens"].sum() == 0]
    if empty:
        raise BlendError(f"blend names {empty}, but the release holds no training tokens for them; remove them "
                         f"from shards.blend or release the tables")
    anchor_tokens = sum(int(by_key[k]["n_tokens"].sum()) for k in anchors)
    if anchors:
        total = anchor_tokens / (1 - sum(shares.values()))
    else:  # no repetition: the scarcest source sets the size
        total = min(int(by_key[k]["n_tokens"].sum()) / s for k, s in shares.items())
    parts, groups = [], {}
    for k, g in by_key.items():
        need = None if k in anchors else shares[k] * total
        idx, copies = _take(g["n_tokens"], need)
        part = {"table": g["table"][idx], "doc_id": g["doc_id"][idx], "copy": copies,
                "n_tokens": g["n_tokens"][idx], "blend": np.full(len(idx), k, dtype=object),
                "mix": np.array([copy_key(int(key), int(c)) for key, c in zip(g["key"][idx], copies, strict=True)],
                                dtype=np.int64)}
        parts.append(part)
        groups[k] = {"docs_available": len(g["n_tokens"]), "docs_used": len(np.unique(idx)),
                     "entries": len(idx), "max_copies": int(copies.max()) + 1 if len(copies) else 0,
                     "tokens": int(part["n_tokens"].sum()), "weight": weights[k]}
    merged = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
    mix_order = np.argsort(merged.pop("mix"), kind="stable")
    entries = pa.table({c: pa.array(merged[c][mix_order]) for c in ("table", "doc_id", "copy", "n_tokens", "blend")})
    all_tokens = max(1, sum(g["tokens"] for g in groups.values()))
    for g in groups.values():
        g["share"] = g["tokens"] / all_tokens
    return Blend(entries=entries.cast(pa.schema([("table", pa.string()), ("doc_id", pa.string()), ("copy", pa.int32()),
                                                 ("n_tokens", pa.int64()), ("blend", pa.string())])), groups=groups)


def _take(n_tokens: np.ndarray, need: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(indices, copy numbers) of the documents, in order, cycling, until `need` tokens are reached
    (all of them once when `need` is None). A document is taken while the running total is below need."""
    n = len(n_tokens)
    if need is None or n == 0:
        return np.arange(n), np.zeros(n, np.int32)
    per_pass = int(n_tokens.sum())
    full = int(need // per_pass)
    rest = need - full * per_pass
    before = np.concatenate([[0], np.cumsum(n_tokens)[:-1]])
    tail = np.nonzero(before < rest)[0] if rest > 0 else np.zeros(0, np.int64)
    idx = np.concatenate([np.tile(np.arange(n), full), tail]).astype(np.int64)
    copies = np.concatenate([np.repeat(np.arange(full), n), np.full(len(tail), full)]).astype(np.int32)
    return idx, copies


PackMode = Literal["stream", "whole"]


def pack_offsets(lengths: np.ndarray, seq_len: int, mode: PackMode) -> np.ndarray:
    """Offset of each entry in the virtual stream (sequence k covers [k·seq_len, (k+1)·seq_len)).
    `whole` requires every length ≤ seq_len."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if mode == "stream":
        return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(lengths) else lengths
    if len(lengths) and lengths.max() > seq_len:
        raise ValueError(f"an example of {int(lengths.max())} tokens does not fit a sequence of {seq_len}")
    return _best_fit(lengths.tolist(), seq_len)


def _best_fit(lengths: list[int], seq_len: int) -> np.ndarray:
    """Each example, in order, into the open sequence with the least room that still fits it (a new
    sequence when none does). Open sequences sit in buckets by free tokens; a segment tree over the
    buckets finds the smallest free count ≥ n in O(log seq_len)."""
    size = 1 << (seq_len + 1).bit_length()
    tree = [0] * (2 * size)  # leaves: open sequences with exactly that many free tokens; nodes: sums
    buckets: list[list[int]] = [[] for _ in range(seq_len + 1)]

    def add(free: int, delta: int) -> None:
        i = free + size
        while i:
            tree[i] += delta
            i >>= 1

    def smallest_at_least(n: int) -> int:
        i = n + size
        if tree[i]:
            return n
        while i > 1:  # climb until a right sibling holds a sequence, then take its leftmost leaf
            if not i & 1 and tree[i + 1]:
                i += 1
                while i < size:
                    i = 2 * i if tree[2 * i] else 2 * i + 1
                return i - size
            i >>= 1
        return -1

    offsets = np.empty(len(lengths), np.int64)
    n_seqs = 0
    for k, n in enumerate(lengths):
        free = smallest_at_least(n)
        if free < 0:
            seq, used = n_seqs, 0
            n_seqs += 1
        else:
            seq, used = buckets[free].pop(), seq_len - free
            add(free, -1)
        offsets[k] = seq * seq_len + used
        left = seq_len - used - n
        if left > 0:
            buckets[left].append(seq)
            add(left, 1)
    return offsets


def sequences_needed(offsets: np.ndarray, lengths: np.ndarray, seq_len: int) -> int:
    if not len(offsets):
        return 0
    return int(-(-int((offsets + lengths).max()) // seq_len))


def pieces(offset: int, n: int, seq_len: int) -> list[tuple[int, int, int, int]]:
    """(sequence, offset in it, start, stop in the document) of each piece of a document of `n` tokens
    placed at stream `offset`."""
    out, start = [], 0
    while start < n:
        pos = offset + start
        seq, at = divmod(pos, seq_len)
        stop = min(n, start + seq_len - at)
        out.append((seq, at, start, stop))
        start = stop
    return out
