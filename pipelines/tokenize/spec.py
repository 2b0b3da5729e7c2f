"""Shard sets without Spark: the settings that decide one, where it lives, and finding and checking a
built one. The trainer's side of `telelake shards build` (pipelines/tokenize/stage.py builds them):
a training node reads a shard set through this module, pyarrow and numpy alone.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from pipelines.lake.storage import LakeConfig, is_remote
from pipelines.summary import JobSummary
from pipelines.tokenize import encode
from schemas.shards import FORMAT, MANIFEST

SPLITS = ("train", "val")


class ShardError(RuntimeError):
    """A shard set cannot be built or reused; the message says why and what to do."""


@dataclass(frozen=True, kw_only=True)
class ShardSpec:
    mode: Literal["cpt", "sft"] = "cpt"
    """cpt: Tele-Data layout tables as plain documents, packed back to back (documents split at
    sequence ends); sft: gold.instructions rendered with the chat template, answer-only loss, an
    example never split (longer ones are dropped, counted)."""
    blend: dict[str, float | None] = field(default_factory=lambda: {"gold.tele_data": None,
                                                                    "gold.general_replay": 0.05})
    """Table (or table:category; for instructions table:task or table:task/category, e.g.
    gold.instructions:mcq_answering/teleqna) → share of the training tokens, or null for every
    document once. Default: all of Tele-Data plus 5% general replay (paper §VI)."""
    seq_len: int = 2048
    """Tokens per packed sequence (the training context)."""
    answer_only: bool = True
    """sft: the loss counts the answer's tokens only (the prompt is masked out); False trains on the
    whole rendered conversation, prompt included (paper 001's adapters; its open question)."""
    val_share: float = 0.1
    """cpt: share of documents held out for validation (paper: 10%); sft uses the split column (val)."""
    seed: int = 1234
    seqs_per_shard: int = 4096
    """Sequences per shard file (4,096 × 2,048 tokens × 4 bytes = 32 MiB)."""
    root: str | None = None
    """Where shard sets live; default <lake root>/_telelake/shards (a local or shared file system:
    the trainer memory-maps them)."""

    def __post_init__(self) -> None:
        if self.seq_len < 8:
            raise ValueError(f"seq_len {self.seq_len}: at least 8 tokens")
        if not 0 <= self.val_share < 1:
            raise ValueError(f"val_share {self.val_share}: must lie in [0, 1)")
        if not self.blend:
            raise ValueError("blend is empty: name the tables to train on, e.g. {gold.tele_data: null}")

    def identity(self) -> dict:
        """What decides the shards' content (not where they are written)."""
        d = asdict(self)
        d.pop("root")
        return d


@dataclass
class ShardSet:
    folder: Path
    manifest: dict
    built: bool
    """False when an existing shard set was reused."""
    summaries: list[JobSummary] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [s.line() for s in self.summaries]
        for split in SPLITS:
            s = self.manifest["splits"].get(split)
            if s:
                out.append(f"shards {split}: {s['sequences']:,} sequences of {self.manifest['seq_len']:,} tokens, "
                           f"{s['tokens']:,} document tokens, padding {100 * s['padding_waste']:.2f}%, "
                           f"{len(s['shards'])} files")
        verb = "built" if self.built else "reused"
        out.append(f"shards {verb}: {self.folder}")
        return out


def shards_root(cfg: LakeConfig, spec: ShardSpec) -> Path:
    if spec.root:
        return Path(spec.root)
    if is_remote(cfg.root):
        raise ShardError(f"the lake is on an object store ({cfg.root}); set shards.root to a local or shared folder "
                         f"the trainer can memory-map")
    return Path(os.path.abspath(cfg.root)) / "_telelake" / "shards"


def shard_key(release: dict, tokenizer: encode.TokenizerInfo, spec: ShardSpec) -> str:
    body = json.dumps({"release": release["content_hash"], "tokenizer": tokenizer.sha256, "spec": spec.identity(),
                       "format": FORMAT}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def verify_shards(folder: Path, manifest: dict, *, checksums: bool = True) -> list[str]:
    """Problems with a shard set's files: missing, resized or (with `checksums`) changed."""
    problems = []
    for s in manifest["splits"].values():
        for f in s["shards"]:
            p = folder / f["path"]
            if not p.is_file():
                problems.append(f"{f['path']} is missing")
            elif p.stat().st_size != f["bytes"]:
                problems.append(f"{f['path']} is {p.stat().st_size:,} bytes, written as {f['bytes']:,}")
            elif checksums and file_sha256(p) != f["sha256"]:
                problems.append(f"{f['path']} changed (sha256 differs from the manifest)")
    return problems


@dataclass
class ShardPlace:
    """Where the shard set of a release under a tokenizer and spec lives, and the set when it is built."""
    release: dict
    """The release's manifest (verified)."""
    tokenizer: encode.TokenizerInfo
    key: str
    folder: Path
    existing: ShardSet | None


def locate_shards(cfg: LakeConfig, release: str, tokenizer: str, spec: ShardSpec) -> ShardPlace:
    """Verify `release` (every file's size and sha256; a damaged release is refused before any work) and
    find where its shard set lives; `existing` is the set, checked, when it was built before."""
    from pipelines.release.ops import verify
    from pipelines.release.store import ReleaseError, check_name, load_manifest

    check_name(release)
    manifest = load_manifest(cfg, release)
    problems = verify(cfg, release)
    if problems:
        raise ReleaseError(f"release {release} failed verification; no shards were built:\n  " + "\n  ".join(problems)
                           + f"\nRun `telelake release verify {release}`; a changed release needs a new release name.")
    info = encode.inspect_tokenizer(tokenizer, chat=spec.mode == "sft")
    key = shard_key(manifest, info, spec)
    folder = shards_root(cfg, spec) / release / key
    existing = (open_shards(folder, remedy="delete the folder and run `telelake shards build` again")
                if (folder / MANIFEST).is_file() else None)
    return ShardPlace(manifest, info, key, folder, existing)


def open_shards(folder: str | Path, *, checksums: bool = True, remedy: str = "copy it again or rebuild it") -> ShardSet:
    """The shard set built in `folder` (its manifest and files checked): a release's, or a copied folder on a
    node that holds no lake. `remedy`: what the error tells the user to do with a damaged set."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ShardError(f"no shard set at {folder} (no {MANIFEST}); give the folder `telelake shards build` "
                         f"printed (<lake>/_telelake/shards/<release>/<key>)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ShardError(f"shard set {folder} has format {manifest.get('format')!r}, this code reads {FORMAT!r}; "
                         f"rebuild it with `telelake shards build`")
    bad = verify_shards(folder, manifest, checksums=checksums)
    if bad:
        raise ShardError(f"shard set {folder} is damaged ({'; '.join(bad[:5])}); {remedy}")
    return ShardSet(folder=folder, manifest=manifest, built=False,
                    summaries=[JobSummary.from_json(json.dumps(s)) for s in manifest.get("summaries", [])])


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()
