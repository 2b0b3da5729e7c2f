"""Packed batches from a shard set: memory-mapped, by global sample index, resumable.

`PackedShards` opens one split of a shard set (schemas/shards.py) with Arrow memory maps; sample i
becomes input_ids, position_ids that restart at every document piece, and labels that are -100 at
the first token of every piece (no prediction crosses a document boundary), on padding and, for
instruction tuning, on prompt tokens. `GlobalOrder` is a seeded permutation per epoch over the
samples: the global position g (samples consumed so far) alone decides which sample comes next,
whatever the number of ranks, so a run resumes from the consumed-samples counter in its checkpoint.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from schemas.shards import MANIFEST, PAD_DOC

IGNORE = -100


class ShardReadError(ValueError):
    """A shard set or split is missing or does not match its manifest."""


@dataclass(frozen=True)
class _Batch:
    first: int
    ids: np.ndarray          # (rows, seq_len) int32, a view of the mapped file
    seg_offsets: np.ndarray  # (rows + 1,) into seg_values
    seg_values: np.ndarray
    last_ref: list[str]      # doc ref of each row's last piece ('' when it is padding)
    mask: np.ndarray | None  # (rows, seq_len) uint8


class PackedShards:
    """One split ('train' or 'val') of the shard set in `folder`."""

    def __init__(self, folder: str | Path, split: str = "train") -> None:
        self.folder = Path(folder)
        path = self.folder / MANIFEST
        if not path.is_file():
            raise ShardReadError(f"no shard set at {self.folder} (no {MANIFEST}); build one with "
                                 f"`telelake shards build --release NAME --tokenizer DIR`")
        self.manifest = json.loads(path.read_text())
        if split not in self.manifest["splits"]:
            raise ShardReadError(f"shard set {self.folder} has splits {sorted(self.manifest['splits'])}, not {split!r}")
        self.split = split
        self.seq_len = int(self.manifest["seq_len"])
        self.loss_mask = bool(self.manifest["loss_mask"])
        self._batches: list[_Batch] = []
        for f in sorted(self.manifest["splits"][split]["shards"], key=lambda f: f["first_seq"]):
            self._open(f)
        self._firsts = np.array([b.first for b in self._batches], dtype=np.int64)
        self._len = int(self.manifest["splits"][split]["sequences"])
        have = sum(len(b.ids) for b in self._batches)
        if have != self._len:
            raise ShardReadError(f"{self.folder}/{split}: the files hold {have} sequences, the manifest {self._len}")

    def _open(self, f: dict) -> None:
        p = self.folder / f["path"]
        if not p.is_file():
            raise ShardReadError(f"shard file {p} is missing; rebuild the shard set (delete {self.folder})")
        reader = pa.ipc.open_file(pa.memory_map(str(p), "r"))
        first = f["first_seq"]
        for i in range(reader.num_record_batches):
            b = reader.get_batch(i)
            ids = b.column("input_ids").values.to_numpy(zero_copy_only=True).reshape(-1, self.seq_len)
            segs = b.column("segments")
            refs = b.column("doc_ids")
            r_off = refs.offsets.to_numpy()
            last = refs.values.take(pa.array(r_off[1:] - 1)).to_pylist()
            mask = (b.column("loss_mask").values.to_numpy(zero_copy_only=True).reshape(-1, self.seq_len)
                    if self.loss_mask else None)
            self._batches.append(_Batch(first, ids, segs.offsets.to_numpy(), segs.values.to_numpy(), last, mask))
            first += b.num_rows

    def __len__(self) -> int:
        return self._len

    def _locate(self, i: int) -> tuple[_Batch, int]:
        if not 0 <= i < self._len:
            raise IndexError(f"sample {i} outside 0..{self._len - 1}")
        b = self._batches[int(np.searchsorted(self._firsts, i, side="right")) - 1]
        return b, i - b.first

    def segments(self, i: int) -> tuple[np.ndarray, bool]:
        """(piece lengths, whether the last piece is padding) of sample i."""
        b, r = self._locate(i)
        return b.seg_values[b.seg_offsets[r]:b.seg_offsets[r + 1]], b.last_ref[r] == PAD_DOC

    def sample(self, i: int) -> dict[str, np.ndarray]:
        """input_ids, position_ids and labels (int64, seq_len each) of sample i."""
        b, r = self._locate(i)
        ids = b.ids[r].astype(np.int64)
        segs, padded = self.segments(i)
        starts = np.concatenate([[0], np.cumsum(segs)[:-1]])
        positions = np.arange(self.seq_len, dtype=np.int64) - np.repeat(starts, segs)
        labels = ids.copy()
        labels[starts] = IGNORE
        if padded:
            labels[starts[-1]:] = IGNORE
        if b.mask is not None:
            labels[b.mask[r] == 0] = IGNORE
        return {"input_ids": ids, "position_ids": positions, "labels": labels, "index": np.array(i, np.int64)}

    def targets(self, i: int) -> int:
        """Tokens of sample i that carry a loss."""
        return int((self.sample(i)["labels"] != IGNORE).sum())

    def batch(self, indices) -> dict:
        """A micro-batch (torch tensors, one row per index)."""
        return _stack([self.sample(int(i)) for i in indices])


class GlobalOrder:
    """Sample at global position g: epoch g // n, a seeded permutation of that epoch."""

    def __init__(self, n: int, seed: int) -> None:
        if n <= 0:
            raise ShardReadError("the split holds no sequences: nothing to train on")
        self.n, self.seed = n, seed
        self._cache: dict[int, np.ndarray] = {}

    def epoch_order(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            self._cache = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n)}
        return self._cache[epoch]

    def __getitem__(self, g: int) -> int:
        epoch, r = divmod(int(g), self.n)
        return int(self.epoch_order(epoch)[r])

    def take(self, start: int, count: int) -> list[int]:
        return [self[g] for g in range(start, start + count)]


@dataclass(frozen=True)
class StepBatch:
    micro: list[dict]
    """This rank's micro-batches of the step, in accumulation order."""
    targets: int
    """Loss-carrying tokens of the whole global batch (every rank, every micro-batch)."""
    tokens: int
    """Document tokens (not padding) of the whole global batch."""
    samples: list[int]
    """The global batch's sample indices (data-order record)."""


def step_batch(data: PackedShards, order: GlobalOrder, consumed: int, *, micro: int, accum: int,
               world: int, rank: int) -> StepBatch:
    """The step that starts after `consumed` global samples: micro-batch m of rank r holds positions
    consumed + (m·world + r)·micro …; the layout depends only on the global batch size."""
    global_batch = micro * accum * world
    samples = order.take(consumed, global_batch)
    built = {i: data.sample(i) for i in set(samples)}  # each sample built once, for the counts and the batches
    targets = sum(int((built[i]["labels"] != IGNORE).sum()) for i in samples)
    tokens = 0
    for i in samples:
        segs, padded = data.segments(i)
        tokens += int(segs.sum() - (segs[-1] if padded else 0))
    mine = [_stack([built[i] for i in samples[(m * world + rank) * micro:(m * world + rank + 1) * micro]])
            for m in range(accum)]
    return StepBatch(micro=mine, targets=targets, tokens=tokens, samples=samples)


def _stack(rows: list[dict]) -> dict:
    import torch

    return {k: torch.from_numpy(np.stack([r[k] for r in rows])) for k in rows[0]}
