"""The teacher side of knowledge distillation (paper 002): a frozen local model whose next-token
distributions the student is pulled toward, read on the fly or from a cache of its top-k.

- on the fly: the teacher runs forward on each micro-batch (same token ids: vanilla KD needs one
  tokenizer) and its logits at the labelled positions enter `kd.kd_sum`;
- cached: before training, the teacher's top-k log-probabilities at every labelled position of the
  train split are written once beside the run (`teacher-cache/`: ids int32 and log-probs float16,
  [positions, k], with each sample's first row); training then needs no teacher forward.
  `kd.topk_kd_sum` compares the two distributions on the teacher's top-k support (both renormalized
  there), which is exact in the limit k → vocabulary and, at k 64, keeps nearly all of a trained
  teacher's mass. The cache is keyed by the teacher's fingerprint, the shard set and k, and is
  checked before use.

Vanilla KD refuses a teacher whose tokenizer maps tokens to other ids than the student's: that pair
needs dual-space KD (`training/dskd.py`).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.data import IGNORE, PackedShards
from training.kd import KDError

log = logging.getLogger(__name__)

CACHE_FORMAT = "telelake-teacher-topk-v1"


def load_teacher(path: str, device: torch.device, bf16: bool):
    """The teacher model, frozen, in eval mode, on `device`."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if bf16 else torch.float32)
    model.config.use_cache = False
    model.requires_grad_(False)
    return model.to(device).eval()


def check_same_vocabulary(student_dir: str, teacher_dir: str) -> None:
    """Vanilla KD compares distributions token id by token id: both tokenizers must map every token
    to the same id. Raises KDError naming the first differences otherwise."""
    from transformers import AutoTokenizer

    s, t = AutoTokenizer.from_pretrained(student_dir).get_vocab(), AutoTokenizer.from_pretrained(teacher_dir).get_vocab()
    if s == t:
        return
    differ = sorted(k for k in set(s) | set(t) if s.get(k) != t.get(k))
    raise KDError(f"teacher {teacher_dir} and student {student_dir} tokenize differently ({len(s):,} vs {len(t):,} "
                  f"tokens; {len(differ):,} differ, e.g. {differ[:3]}): vanilla KD needs one vocabulary; set "
                  f"train.kd.method: dskd for a different-vocabulary teacher")


def labelled_rows(labels: torch.Tensor) -> torch.Tensor:
    """Flat indices of the positions [B, T] whose next token carries a loss (labels already shifted).
    Give it the host's labels: on a GPU's, `nonzero` waits for the device."""
    return (labels.reshape(-1) != IGNORE).nonzero().squeeze(1)


@torch.no_grad()
def teacher_logits(teacher, micro: dict, rows: torch.Tensor, device: torch.device) -> torch.Tensor:
    """[positions, vocab] float32 teacher logits at the labelled positions `rows` (flat indices of the
    micro-batch's [B·T] positions) of a host micro-batch."""
    from training.loss import FusedHead

    kwargs = {"input_ids": micro["input_ids"].to(device), "position_ids": micro["position_ids"].to(device),
              "use_cache": False}
    rows = rows.to(device)
    head = FusedHead.of(teacher)
    if head is not None:  # the head on the labelled rows only, not on every position
        with head.headless():
            hidden = teacher(**kwargs).logits
        h = hidden.reshape(-1, hidden.size(-1)).index_select(0, rows)
        return (h @ head.head.weight.t()).float()
    logits = teacher(**kwargs).logits
    return logits.reshape(-1, logits.size(-1)).index_select(0, rows).float()


@dataclass
class TopKCache:
    """The teacher's top-k log-probabilities at the labelled positions of one split, memory-mapped."""
    folder: Path
    first: np.ndarray
    """first[i]: the first row of sample i; first[n]: the number of rows."""
    ids: np.ndarray
    logp: np.ndarray
    k: int

    @classmethod
    def open(cls, folder: Path) -> TopKCache:
        meta = json.loads((folder / "cache.json").read_text())
        return cls(folder, np.load(folder / "first.npy"), np.load(folder / "ids.npy", mmap_mode="r"),
                   np.load(folder / "logp.npy", mmap_mode="r"), int(meta["k"]))

    def rows(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids [positions, k] int64, log-probs [positions, k] float32) for these samples, in order:
        the labelled positions of each sample, as `labelled_rows` orders them."""
        parts = [slice(int(self.first[i]), int(self.first[i + 1])) for i in indices]
        ids = np.concatenate([self.ids[p] for p in parts]) if parts else np.zeros((0, self.k), np.int32)
        logp = np.concatenate([self.logp[p] for p in parts]) if parts else np.zeros((0, self.k), np.float16)
        return torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(logp.astype(np.float32))


def cache_key(teacher_revision: str, shards_manifest: dict, split: str, k: int) -> dict:
    return {"format": CACHE_FORMAT, "teacher": teacher_revision, "shards": shards_manifest["key"], "split": split,
            "k": k}


def build_cache(teacher, data: PackedShards, folder: Path, key: dict, device: torch.device, micro: int = 4,
                progress=None) -> TopKCache:
    """Write (or reuse, when its key matches) the teacher's top-k cache of `data` under `folder`."""
    meta = folder / "cache.json"
    if meta.is_file():
        found = json.loads(meta.read_text())
        if {k: found.get(k) for k in key} == key:
            log.info("teacher cache %s reused (%s)", folder, key)
            return TopKCache.open(folder)
        raise KDError(f"teacher cache {folder} was made for {({k: found.get(k) for k in key})}, not {key}; delete "
                      f"the folder to rebuild it for this teacher and shard set")
    k = key["k"]
    folder.mkdir(parents=True, exist_ok=True)
    counts = np.array([data.targets(i) for i in range(len(data))], np.int64)
    first = np.concatenate([[0], np.cumsum(counts)])
    ids = np.lib.format.open_memmap(folder / "ids.npy.tmp", mode="w+", dtype=np.int32, shape=(int(first[-1]), k))
    logp = np.lib.format.open_memmap(folder / "logp.npy.tmp", mode="w+", dtype=np.float16, shape=(int(first[-1]), k))
    task = progress.add_task("teacher top-k cache", total=len(data)) if progress else None
    for start in range(0, len(data), micro):
        idx = list(range(start, min(len(data), start + micro)))
        b = data.batch(idx)
        labels = torch.nn.functional.pad(b["labels"][:, 1:], (0, 1), value=IGNORE)
        lp = torch.log_softmax(teacher_logits(teacher, b, labelled_rows(labels), device), -1)
        top = lp.topk(k, dim=-1)
        a, z = int(first[idx[0]]), int(first[idx[-1] + 1])
        ids[a:z], logp[a:z] = top.indices.int().cpu().numpy(), top.values.half().cpu().numpy()
        if progress:
            progress.update(task, completed=idx[-1] + 1)
    ids.flush()
    logp.flush()
    del ids, logp
    np.save(folder / "first.npy", first)
    (folder / "ids.npy.tmp").rename(folder / "ids.npy")
    (folder / "logp.npy.tmp").rename(folder / "logp.npy")
    meta.write_text(json.dumps({**key, "rows": int(first[-1]), "samples": len(data)}, indent=1))
    log.info("teacher cache %s: top-%d of %s positions", folder, k, f"{int(first[-1]):,}")
    return TopKCache.open(folder)
