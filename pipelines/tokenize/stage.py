"""`telelake shards build`: a release's training tables → tokenized, packed Arrow IPC shards.

1. The release is verified first (every released file's size and sha256): a damaged release is
   refused before any work.
2. Spark tasks read exactly the released files, tokenize (documents end with EOS; instruction examples
   are chat-rendered with an answer-only mask), give every document its seeded key and split, and
   write the token ids to a scratch Parquet folder. Records that cannot be tokenized go to
   quarantine.rejected with their table and id.
3. The driver reads only (table, id, key, length) back, blends the sources to their weights and packs
   the order into offsets (plan.py): one small plan, the same for any number of workers.
4. Spark joins the plan with the tokens, cuts documents into per-sequence pieces, groups them by
   shard and writes one Arrow IPC file per shard with its sha256.
5. The manifest is written and the staging folder renamed into place: a shard set exists exactly when
   its manifest does; a rerun with the same release, tokenizer and spec reuses it (after checking its
   files) and does no work.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import lake
from pipelines.ingest.parse import utc_now
from pipelines.lake.commit import Batch
from pipelines.lake.read import planned_read
from pipelines.lake.spark_types import spark_schema
from pipelines.lake.storage import is_remote
from pipelines.quarantine import quarantine_rows, reject_id_column
from pipelines.release.ops import verify
from pipelines.release.store import ReleaseError, check_name, load_manifest
from pipelines.summary import JobSummary
from pipelines.tokenize import encode, plan
from schemas import INSTRUCTIONS, REJECTED, contract_for
from schemas.gold import GOLD_SCHEMA
from schemas.shards import FORMAT, MANIFEST, PAD_DOC, shard_schema

log = logging.getLogger(__name__)
JOB = "shards"
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
    """Table (or table:category, table:task) → share of the training tokens, or null for every document
    once. Default: all of Tele-Data plus 5% general replay (paper §VI)."""
    seq_len: int = 2048
    """Tokens per packed sequence (the training context)."""
    val_share: float = 0.1
    """cpt: share of documents held out for validation (paper: 10%); sft uses the split column (val)."""
    seed: int = 1234
    seqs_per_shard: int = 4096
    """Sequences per shard file (4,096 × 2,048 tokens × 4 bytes = 32 MiB)."""
    window: int = 64
    """sft: open sequences an example may go into (first fit); more means less padding."""
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


def shards_root(cfg: lake.LakeConfig, spec: ShardSpec) -> Path:
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


def build_shards(spark, cfg: lake.LakeConfig, release: str, tokenizer: str, spec: ShardSpec, *,
                 code_version: str = "") -> ShardSet:
    """Build (or reuse) the shard set of `release` under `tokenizer` and `spec`. `spark` is a session
    or a function that makes one (called only when there is something to build)."""
    check_name(release)
    manifest = load_manifest(cfg, release)
    problems = verify(cfg, release)
    if problems:
        raise ReleaseError(f"release {release} failed verification; no shards were built:\n  " + "\n  ".join(problems)
                           + f"\nRun `telelake release verify {release}`; a changed release needs a new release name.")
    info = encode.inspect_tokenizer(tokenizer, chat=spec.mode == "sft")
    tables = _tables(manifest, spec)
    key = shard_key(manifest, info, spec)
    folder = shards_root(cfg, spec) / release / key
    if (folder / MANIFEST).is_file():
        existing = json.loads((folder / MANIFEST).read_text())
        bad = verify_shards(folder, existing)
        if bad:
            raise ShardError(f"shard set {folder} is damaged ({'; '.join(bad[:5])}); delete the folder and run "
                             f"`telelake shards build` again")
        log.info("shards: reusing %s (release %s, tokenizer %s…)", folder, release, info.sha256[:12])
        return ShardSet(folder=folder, manifest=existing, built=False,
                        summaries=[JobSummary.from_json(json.dumps(s)) for s in existing["summaries"]])
    folder.parent.mkdir(parents=True, exist_ok=True)
    staged = folder.parent / f".{key}.{uuid.uuid4().hex[:8]}.staging"
    staged.mkdir()
    try:
        summaries, splits, groups = _build(spark() if callable(spark) else spark, cfg, manifest, tables, info, spec, staged)
        out = {"format": FORMAT, "key": key, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
               "code_version": code_version,
               "release": {"name": release, "content_hash": manifest["content_hash"], "created_at": manifest["created_at"],
                           "tables": {t: manifest["tables"][t]["version"] for t in tables}},
               "tokenizer": info.to_dict(), "spec": spec.identity(), "seq_len": spec.seq_len,
               "loss_mask": spec.mode == "sft", "pad_id": info.eos_id, "splits": splits, "blend": groups,
               "summaries": [json.loads(s.to_json()) for s in summaries]}
        (staged / MANIFEST).write_text(json.dumps(out, indent=1, sort_keys=True))
        try:
            os.rename(staged, folder)
        except OSError:
            if not (folder / MANIFEST).is_file():
                raise
            log.info("shards: %s was built meanwhile by another run; using it", folder)
            out = json.loads((folder / MANIFEST).read_text())
        return ShardSet(folder=folder, manifest=out, built=True, summaries=summaries)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


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
            elif checksums and _sha256(p) != f["sha256"]:
                problems.append(f"{f['path']} changed (sha256 differs from the manifest)")
    return problems


def _tables(manifest: dict, spec: ShardSpec) -> list[str]:
    """The release tables the blend names, checked against the release and the mode."""
    names = sorted({k.split(":", 1)[0] for k in spec.blend})
    missing = [t for t in names if t not in manifest["tables"]]
    if missing:
        raise ShardError(f"shards.blend names {missing}, but release {manifest['name']} holds "
                         f"{sorted(manifest['tables'])}; remove them from the blend or release them")
    for t in names:
        is_sft = t == INSTRUCTIONS.name
        if spec.mode == "sft" and not is_sft:
            raise ShardError(f"mode sft trains on {INSTRUCTIONS.name}; the blend names {t}")
        if spec.mode == "cpt" and contract_for(t).schema != GOLD_SCHEMA:
            raise ShardError(f"mode cpt trains on Tele-Data layout tables (id, category, content); {t} is not one "
                             f"(use mode sft for {INSTRUCTIONS.name})")
    return names


# --- step 2: tokenize in Spark ---------------------------------------------------------------------

DOCS = pa.schema([
    ("kind", pa.string()), ("table", pa.string()), ("blend", pa.string()), ("doc_id", pa.string()),
    ("split", pa.string()), ("key", pa.int64()), ("n_tokens", pa.int64()), ("ids", pa.list_(pa.int32())),
    ("mask", pa.list_(pa.int8())), ("reason", pa.string()), ("detail", pa.string()),
])
"""kind: doc (tokenized; ids set when it has a blend key), drop (reason) or reject (reason, detail)."""


def _tokenize_fn(read, table: str, info: encode.TokenizerInfo, spec: ShardSpec):
    folder, eos_id, seed, weights, sft = info.folder, info.eos_id, spec.seed, dict(spec.blend), spec.mode == "sft"
    seq_len, val_share = spec.seq_len, spec.val_share

    def rows_of(batch: pa.RecordBatch) -> list[dict]:
        d = batch.to_pydict()
        ids = d["instruction_id"] if sft else d["id"]
        groups = d["task"] if sft else d["category"]
        out, todo = [], []
        for i, doc_id in enumerate(ids):
            row = {"kind": "doc", "table": table, "doc_id": doc_id, "key": plan.doc_key(seed, table, doc_id),
                   "blend": plan.blend_key(weights, table, groups[i]), "n_tokens": 0, "ids": None, "mask": None,
                   "reason": None, "detail": None}
            row["split"] = ({"train": "train", "val": "val"}.get(d["split"][i], "test") if sft
                            else "val" if plan.held_out(seed, table, doc_id, val_share) else "train")
            text = (d["instruction"][i], d["output"][i]) if sft else (d["content"][i],)
            if any(not isinstance(t, str) for t in text):
                row.update(kind="reject", reason="no_text", detail="a text column is null")
            elif row["blend"] is None:
                row.update(kind="drop", reason="not_in_blend")
            elif row["split"] == "test":
                row.update(kind="drop", reason="test_split")
            else:
                todo.append((row, encode.conversation(d["instruction"][i], d["input"][i], d["output"][i]) if sft
                             else d["content"][i]))
            out.append(row)
        for row, (ids_, mask) in zip([r for r, _ in todo], _encode([t for _, t in todo], folder, eos_id, sft), strict=True):
            if isinstance(ids_, Exception):
                row.update(kind="reject", reason="tokenize_failed", detail=f"{type(ids_).__name__}: {ids_}"[:1000])
                continue
            row["n_tokens"] = len(ids_)
            if len(ids_) == 0:
                row.update(kind="drop", reason="empty")
            elif sft and len(ids_) > seq_len:
                row.update(kind="drop", reason="longer_than_context")
            else:
                row["ids"], row["mask"] = ids_.tolist(), None if mask is None else mask.astype(np.int8).tolist()
        return out

    def run(tasks):
        for batch in read(tasks):
            rows = rows_of(batch)
            if rows:
                yield pa.RecordBatch.from_pylist(rows, schema=DOCS)

    return run


def _encode(items: list, folder: str, eos_id: int, sft: bool) -> list[tuple]:
    """(ids, mask) per item; an item the tokenizer refuses gives (exception, None) and the rest go on."""
    def batch(xs):
        if sft:
            return encode.encode_conversations(folder, xs)
        return [(ids, None) for ids in encode.encode_documents(folder, xs, eos_id)]

    try:
        return batch(items)
    except Exception:  # noqa: BLE001 - find the record(s) at fault, one by one
        out = []
        for x in items:
            try:
                out.extend(batch([x]))
            except Exception as exc:  # noqa: BLE001
                out.append((exc, None))
        return out


def _read_release(spark, cfg: lake.LakeConfig, manifest: dict, table: str):
    base = lake.table_uri(cfg, table)
    files = [{"uri": f"{base}/{f['path']}", "partition_values": json.dumps(f["partition_values"]), "size": f["size"]}
             for f in manifest["tables"][table]["files"]]
    cols = (["instruction_id", "task", "split", "instruction", "input", "output"] if table == INSTRUCTIONS.name
            else ["id", "category", "content"])
    schema = contract_for(table).schema
    return planned_read(spark, cfg, files, pa.schema([schema.field(c) for c in cols]), batch_rows=512)


# --- step 3 and 4: plan on the driver, pack and write in Spark ----------------------------------------

PIECES = pa.schema([("split", pa.string()), ("shard", pa.int64()), ("seq", pa.int64()), ("at", pa.int32()),
                    ("ids", pa.list_(pa.int32())), ("mask", pa.list_(pa.int8())), ("ref", pa.string())])
FILES = pa.schema([("split", pa.string()), ("shard", pa.int64()), ("path", pa.string()), ("rows", pa.int64()),
                   ("first_seq", pa.int64()), ("tokens", pa.int64()), ("pad", pa.int64()), ("bytes", pa.int64()),
                   ("sha256", pa.string())])


def _pieces_fn(seq_len: int, per_shard: int):
    def run(batches):
        for b in batches:
            out = {n: [] for n in PIECES.names}
            for r in b.to_pylist():
                for seq, at, start, stop in plan.pieces(r["offset"], len(r["ids"]), seq_len):
                    out["split"].append(r["split"])
                    out["shard"].append(seq // per_shard)
                    out["seq"].append(seq)
                    out["at"].append(at)
                    out["ids"].append(r["ids"][start:stop])
                    out["mask"].append(r["mask"][start:stop] if r["mask"] is not None else None)
                    out["ref"].append(f"{r['table']}:{r['doc_id']}#{r['copy']}")
            if out["seq"]:
                yield pa.RecordBatch.from_pydict(out, schema=PIECES)
    return run


def _write_fn(folder: str, seq_len: int, loss_mask: bool, pad_id: int):
    schema = shard_schema(seq_len, loss_mask=loss_mask)

    def run(batches):
        writer = None
        current = None  # (split, shard)
        rows: list[dict] = []
        seq_rows: list[dict] = []
        meta: dict = {}

        def flush_seq():
            if not seq_rows:
                return
            ids = np.full(seq_len, pad_id, np.int32)
            mask = np.zeros(seq_len, np.uint8)
            segments, refs, used = [], [], 0
            for p in seq_rows:
                assert p["at"] == used, f"pieces of sequence {p['seq']} do not tile it ({p['at']} != {used})"
                n = len(p["ids"])
                ids[used:used + n] = p["ids"]
                mask[used:used + n] = p["mask"] if p["mask"] is not None else 1
                segments.append(n)
                refs.append(p["ref"])
                used += n
            if used < seq_len:
                segments.append(seq_len - used)
                refs.append(PAD_DOC)
            row = {"seq": seq_rows[0]["seq"], "input_ids": ids, "segments": segments, "doc_ids": refs}
            if loss_mask:
                row["loss_mask"] = mask
            rows.append(row)
            meta["tokens"] += used
            meta["pad"] += seq_len - used
            seq_rows.clear()

        def flush_rows():
            nonlocal writer
            if rows:
                batch = {n: [r[n] for r in rows] for n in schema.names}
                batch["input_ids"] = pa.FixedSizeListArray.from_arrays(np.concatenate(batch["input_ids"]), seq_len)
                if loss_mask:
                    batch["loss_mask"] = pa.FixedSizeListArray.from_arrays(np.concatenate(batch["loss_mask"]), seq_len)
                writer.write_batch(pa.RecordBatch.from_pydict(batch, schema=schema))
                meta["rows"] += len(rows)
                rows.clear()

        def close():
            nonlocal writer
            if writer is None:
                return None
            flush_seq()
            flush_rows()
            writer.close()
            path = Path(meta["abs"])
            out = {"split": meta["split"], "shard": meta["shard"], "path": meta["path"], "rows": meta["rows"],
                   "first_seq": meta["first_seq"], "tokens": meta["tokens"], "pad": meta["pad"],
                   "bytes": path.stat().st_size, "sha256": _sha256(path)}
            writer = None
            return out

        done = []
        for b in batches:
            for p in b.to_pylist():
                where = (p["split"], p["shard"])
                if where != current:
                    if (f := close()) is not None:
                        done.append(f)
                    current = where
                    rel = f"{p['split']}/shard-{p['shard']:05d}.arrow"
                    (Path(folder) / p["split"]).mkdir(parents=True, exist_ok=True)
                    meta = {"split": p["split"], "shard": p["shard"], "path": rel, "abs": str(Path(folder) / rel),
                            "rows": 0, "first_seq": p["seq"], "tokens": 0, "pad": 0}
                    writer = pa.ipc.new_file(meta["abs"], schema)
                elif seq_rows and p["seq"] != seq_rows[0]["seq"]:
                    flush_seq()
                    if len(rows) >= 256:
                        flush_rows()
                seq_rows.append(p)
        if (f := close()) is not None:
            done.append(f)
        if done:
            yield pa.RecordBatch.from_pylist(done, schema=FILES)

    return run


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def _build(spark, cfg, manifest, tables, info, spec, staged: Path):
    work = staged / "_work"
    frames = []
    for t in tables:
        frame, read = _read_release(spark, cfg, manifest, t)
        frames.append(frame.mapInArrow(_tokenize_fn(read, t, info, spec), spark_schema(DOCS)))
    docs = frames[0]
    for f in frames[1:]:
        docs = docs.unionByName(f)
    docs.write.mode("overwrite").parquet(str(work / "docs"))
    meta = pq.read_table(work / "docs", columns=["kind", "table", "blend", "doc_id", "split", "key", "n_tokens", "reason"])

    docs_kind = meta.column("kind").to_numpy(zero_copy_only=False)
    split_col = meta.column("split").to_numpy(zero_copy_only=False)
    train = meta.filter(pa.array((docs_kind == "doc") & (split_col == "train")))
    val = meta.filter(pa.array((docs_kind == "doc") & (split_col == "val")))
    if train.num_rows == 0:
        raise ShardError(f"release {manifest['name']}: no training documents in {tables} under blend {spec.blend}")
    mixed = plan.blend(train, spec.blend)
    val_order = val.take(np.argsort(val.column("key").to_numpy(), kind="stable"))
    val_entries = pa.table({"table": val_order["table"], "doc_id": val_order["doc_id"],
                            "copy": pa.array(np.zeros(val_order.num_rows, np.int32)),
                            "n_tokens": val_order["n_tokens"], "blend": val_order["blend"]})
    mode = "whole" if spec.mode == "sft" else "stream"
    plans, splits = [], {}
    for split, entries in (("train", mixed.entries), ("val", val_entries)):
        lengths = entries.column("n_tokens").to_numpy()
        offsets = plan.pack_offsets(lengths, spec.seq_len, mode, spec.window)
        n_seq = plan.sequences_needed(offsets, lengths, spec.seq_len)
        plans.append(entries.select(["table", "doc_id", "copy"]).append_column("split", pa.array([split] * entries.num_rows, pa.string()))
                     .append_column("offset", pa.array(offsets, pa.int64())))
        tokens = int(lengths.sum())
        splits[split] = {"sequences": n_seq, "entries": entries.num_rows, "tokens": tokens,
                         "pad_tokens": n_seq * spec.seq_len - tokens,
                         "padding_waste": (n_seq * spec.seq_len - tokens) / max(1, n_seq * spec.seq_len), "shards": []}
    pq.write_table(pa.concat_tables(plans), work / "plan.parquet")
    summaries = _account(meta, mixed, val_entries)

    tokens = spark.read.parquet(str(work / "docs")).where("kind = 'doc' AND ids IS NOT NULL").select(
        "table", "doc_id", "split", "ids", "mask")
    placed = spark.read.parquet(str(work / "plan.parquet")).join(tokens, ["table", "doc_id", "split"])
    n_shards = sum(-(-s["sequences"] // spec.seqs_per_shard) for s in splits.values())
    files = (placed.mapInArrow(_pieces_fn(spec.seq_len, spec.seqs_per_shard), spark_schema(PIECES))
             .repartition(max(1, n_shards), "split", "shard").sortWithinPartitions("split", "shard", "seq", "at")
             .mapInArrow(_write_fn(str(staged), spec.seq_len, spec.mode == "sft", info.eos_id), spark_schema(FILES))
             .collect())
    for f in sorted((r.asDict() for r in files), key=lambda f: (f["split"], f["shard"])):
        splits[f.pop("split")]["shards"].append(f)
    for split, s in splits.items():
        rows = sum(f["rows"] for f in s["shards"])
        if rows != s["sequences"] or sum(f["tokens"] for f in s["shards"]) != s["tokens"]:
            raise ShardError(f"internal: {split} shards hold {rows} sequences / "
                             f"{sum(f['tokens'] for f in s['shards'])} tokens, planned {s['sequences']} / {s['tokens']}")
    _quarantine(spark, cfg, work, manifest, info, spec)
    shutil.rmtree(work)
    return summaries, splits, mixed.groups


def _account(meta: pa.Table, mixed: plan.Blend, val_entries: pa.Table) -> list[JobSummary]:
    """read = kept + dropped + rejected per table: kept documents train or validate at least once."""
    used = {(t, d) for t, d in zip(mixed.entries["table"].to_pylist(), mixed.entries["doc_id"].to_pylist(), strict=True)}
    used |= {(t, d) for t, d in zip(val_entries["table"].to_pylist(), val_entries["doc_id"].to_pylist(), strict=True)}
    out: dict[str, JobSummary] = {}
    for r in meta.select(["kind", "table", "doc_id", "reason"]).to_pylist():
        s = out.setdefault(r["table"], JobSummary(job=JOB, source=r["table"]))
        s.read += 1
        if r["kind"] == "reject":
            s.rejected[r["reason"]] += 1
        elif r["kind"] == "drop":
            s.dropped[r["reason"]] += 1
        elif (r["table"], r["doc_id"]) in used:
            s.kept += 1
        else:
            s.dropped["not_sampled"] += 1  # a blend share below the table's size left it out
    return [s.check() for s in sorted(out.values(), key=lambda s: s.source)]


def _quarantine(spark, cfg, work: Path, manifest: dict, info, spec: ShardSpec) -> None:
    """Records that could not be tokenized → quarantine.rejected (once per release, tokenizer and spec)."""
    from pyspark.sql import functions as F

    rejects = (spark.read.parquet(str(work / "docs")).where("kind = 'reject'")
               .select(F.concat(F.lit(f"release:{manifest['name']}/"), "table").alias("source_file"),
                       F.concat(F.lit("id="), "doc_id").alias("source_location"), "reason", "detail", "table"))
    if rejects.limit(1).count() == 0:
        return
    key = shard_key(manifest, info, spec)
    rows = quarantine_rows(spark, cfg, rejects.withColumn("reject_id", reject_id_column(JOB)), job=JOB,
                           source=F.col("table"), batch=f"{manifest['name']}/{key}", now=utc_now())
    lake.write_dataframe(cfg, rows, REJECTED, batch=Batch(app_id=f"shards:{manifest['name']}:{key}", version=0),
                         metadata={"telelake.job": JOB})
    log.warning("shards: %d records could not be tokenized → %s", rows.count(), REJECTED.name)
