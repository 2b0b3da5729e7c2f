"""`telelake shards build`: a release's training tables → tokenized, packed Arrow IPC shards.

1. The release is verified first (every released file's size and sha256): a damaged release is
   refused before any work.
2. Spark tasks read exactly the released files, tokenize (documents end with EOS; instruction examples
   are chat-rendered with an answer-only mask; tiktoken runs the folder's BPE when it is checked to
   give the same ids, the `tokenizers` library otherwise), give every document its seeded key and
   split, and write the token ids to Arrow IPC files of their own: only small rows (table, id, key,
   length, file, row) go through Spark. Records that cannot be tokenized go to quarantine.rejected.
3. The driver blends the sources to their weights and packs the order into offsets (plan.py): one
   plan, the same for any number of workers.
4. One Spark task per shard memory-maps the token files it needs, lays the documents' pieces into its
   sequences and writes one Arrow IPC file with its sha256.
5. The manifest is written and the staging folder renamed into place: a shard set exists exactly when
   its manifest does; a rerun with the same release, tokenizer and spec reuses it (after checking its
   files) and does no work.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipelines import lake
from pipelines.ingest.parse import utc_now
from pipelines.lake.commit import Batch
from pipelines.lake.read import planned_read
from pipelines.lake.spark_types import spark_schema
from pipelines.quarantine import quarantine_rows, reject_id_column
from pipelines.summary import JobSummary
from pipelines.tokenize import encode, plan
from pipelines.tokenize.spec import (ShardError, ShardPlace, ShardSet, ShardSpec, file_sha256, locate_shards,
                                     shard_key)
from schemas import INSTRUCTIONS, REJECTED, contract_for
from schemas.gold import GOLD_SCHEMA
from schemas.shards import FORMAT, MANIFEST, PAD_DOC, shard_schema

log = logging.getLogger(__name__)
JOB = "shards"


def build_shards(spark, cfg: lake.LakeConfig, release: str, tokenizer: str, spec: ShardSpec, *,
                 code_version: str = "", place: ShardPlace | None = None) -> ShardSet:
    """Build (or reuse) the shard set of `release` under `tokenizer` and `spec`. `spark` is a session
    or a function that makes one (called only when there is something to build); `place`: what
    `locate_shards` found for these arguments, when the caller already looked (the release is verified
    once)."""
    place = place or locate_shards(cfg, release, tokenizer, spec)
    if place.existing is not None:
        log.info("shards: reusing %s (release %s, tokenizer %s…)", place.folder, release, place.tokenizer.sha256[:12])
        return place.existing
    manifest, info, key, folder = place.release, place.tokenizer, place.key, place.folder
    tables = _tables(manifest, spec)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staged = folder.parent / f".{key}.{uuid.uuid4().hex[:8]}.staging"
    staged.mkdir()
    try:
        summaries, splits, groups, engine = _build(spark() if callable(spark) else spark, cfg, manifest, tables, info,
                                                   spec, staged)
        out = {"format": FORMAT, "key": key, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
               "code_version": code_version,
               "release": {"name": release, "content_hash": manifest["content_hash"], "created_at": manifest["created_at"],
                           "tables": {t: manifest["tables"][t]["version"] for t in tables}},
               "tokenizer": info.to_dict(), "spec": spec.identity(), "seq_len": spec.seq_len,
               "loss_mask": spec.mode == "sft", "answer_only": spec.mode == "sft" and spec.answer_only,
               "pad_id": info.eos_id, "splits": splits, "blend": groups, "tokenizer_engine": engine,
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

META = pa.schema([
    ("kind", pa.string()), ("table", pa.string()), ("blend", pa.string()), ("doc_id", pa.string()),
    ("split", pa.string()), ("key", pa.int64()), ("n_tokens", pa.int64()), ("file", pa.string()), ("row", pa.int64()),
    ("reason", pa.string()), ("detail", pa.string()),
])
"""One row per released record. kind: doc (its tokens are row `row` of the task's token file `file`
when it has a blend key), drop (reason) or reject (reason, detail). Token ids never cross into the
JVM: tasks write them to Arrow IPC files beside the shards and Spark carries only these rows."""
TOKENS = pa.schema([("ids", pa.list_(pa.int32())), ("mask", pa.list_(pa.int8()))])


def _tokenize_fn(read, table: str, info: encode.TokenizerInfo, spec: ShardSpec, engine: str, work: str):
    folder, eos_id, seed, weights, sft = info.folder, info.eos_id, spec.seed, dict(spec.blend), spec.mode == "sft"
    seq_len, val_share, answer_only = spec.seq_len, spec.val_share, spec.answer_only

    def rows_of(batch: pa.RecordBatch) -> tuple[list[dict], list[tuple]]:
        d = batch.to_pydict()
        ids = d["instruction_id"] if sft else d["id"]
        groups = ([(f"{t}/{c}", t) for t, c in zip(d["task"], d["category"], strict=True)] if sft
                  else [(c,) for c in d["category"]])
        out, todo = [], []
        for i, doc_id in enumerate(ids):
            row = {"kind": "doc", "table": table, "doc_id": doc_id, "key": plan.doc_key(seed, table, doc_id),
                   "blend": plan.blend_key(weights, table, *groups[i]), "n_tokens": 0, "file": None, "row": None,
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
        kept = []
        for row, (ids_, mask) in zip([r for r, _ in todo], _encode([t for _, t in todo], folder, eos_id, sft, engine),
                                     strict=True):
            if isinstance(ids_, Exception):
                row.update(kind="reject", reason="tokenize_failed", detail=f"{type(ids_).__name__}: {ids_}"[:1000])
                continue
            row["n_tokens"] = len(ids_)
            if len(ids_) == 0:
                row.update(kind="drop", reason="empty")
            elif sft and len(ids_) > seq_len:
                row.update(kind="drop", reason="longer_than_context")
            else:
                kept.append((row, ids_, mask if answer_only or mask is None else np.ones_like(mask)))
        return out, kept

    def run(tasks):
        name = f"tokens-{uuid.uuid4().hex}.arrow"
        writer, n = None, 0
        try:
            for batch in read(tasks):
                rows, kept = rows_of(batch)
                if kept:
                    if writer is None:
                        writer = pa.ipc.new_file(str(Path(work) / name), TOKENS)
                    lengths = np.array([len(x) for _, x, _ in kept], np.int32)
                    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
                    ids_col = pa.ListArray.from_arrays(offsets, pa.array(np.concatenate([x for _, x, _ in kept]), pa.int32()))
                    masks = [m for _, _, m in kept]
                    mask_col = (pa.ListArray.from_arrays(offsets, pa.array(np.concatenate(masks).astype(np.int8)))
                                if sft else pa.nulls(len(kept), pa.list_(pa.int8())))
                    writer.write_batch(pa.RecordBatch.from_arrays([ids_col, mask_col], schema=TOKENS))
                    for k, (row, _, _) in enumerate(kept):
                        row["file"], row["row"] = name, n + k
                    n += len(kept)
                if rows:
                    yield pa.RecordBatch.from_pylist(rows, schema=META)
        finally:
            if writer is not None:
                writer.close()

    return run


def _encode(items: list, folder: str, eos_id: int, sft: bool, engine: str) -> list[tuple]:
    """(ids, mask) per item; an item the tokenizer refuses gives (exception, None) and the rest go on."""
    def batch(xs):
        if sft:
            return encode.encode_conversations(folder, xs, engine)
        return [(ids, None) for ids in encode.encode_documents(folder, xs, eos_id, engine)]

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


def _release_files(cfg: lake.LakeConfig, manifest: dict, table: str) -> list[dict]:
    base = lake.table_uri(cfg, table)
    return [{"uri": f"{base}/{f['path']}", "partition_values": json.dumps(f["partition_values"]), "size": f["size"]}
            for f in manifest["tables"][table]["files"]]


def _columns(table: str) -> list[str]:
    return (["instruction_id", "task", "category", "split", "instruction", "input", "output"] if table == INSTRUCTIONS.name
            else ["id", "category", "content"])


def _read_release(spark, cfg: lake.LakeConfig, manifest: dict, table: str):
    schema = contract_for(table).schema
    return planned_read(spark, cfg, _release_files(cfg, manifest, table),
                        pa.schema([schema.field(c) for c in _columns(table)]), batch_rows=512)


def _samples(cfg: lake.LakeConfig, manifest: dict, tables: list[str], n: int = 64) -> list[str]:
    """Texts of the first records of each table (the tokenizer engine is checked on them)."""
    from pipelines.release.files import release_dataset

    out = []
    for t in tables:
        col = "output" if t == INSTRUCTIONS.name else "content"
        ds = release_dataset(cfg, t, manifest["tables"][t]["files"])
        out += [x for x in ds.head(n, columns=[col])[col].to_pylist() if isinstance(x, str)]
    return out


# --- step 3 and 4: plan on the driver, pack and write in Spark ----------------------------------------

FILES = pa.schema([("split", pa.string()), ("shard", pa.int64()), ("path", pa.string()), ("rows", pa.int64()),
                   ("first_seq", pa.int64()), ("tokens", pa.int64()), ("pad", pa.int64()), ("bytes", pa.int64()),
                   ("sha256", pa.string())])


class _TokenFile:
    """A task's token file, memory-mapped: row → (ids, mask) views."""

    def __init__(self, path: str) -> None:
        reader = pa.ipc.open_file(pa.memory_map(path, "r"))
        self.parts = []
        first = 0
        for i in range(reader.num_record_batches):
            b = reader.get_batch(i)
            ids, mask = b.column("ids"), b.column("mask")
            m = (mask.offsets.to_numpy(), mask.values.to_numpy()) if mask.null_count == 0 else None
            self.parts.append((first, ids.offsets.to_numpy(), ids.values.to_numpy(), m))
            first += b.num_rows
        self.firsts = np.array([p[0] for p in self.parts], np.int64)

    def get(self, row: int):
        first, off, vals, m = self.parts[int(np.searchsorted(self.firsts, row, side="right")) - 1]
        r = row - first
        ids = vals[off[r]:off[r + 1]]
        return ids, (m[1][m[0][r]:m[0][r + 1]] if m is not None else None)


def _shard_fn(staged: str, work: str, seq_len: int, loss_mask: bool, pad_id: int, plans):
    """Spark task: shard number → its Arrow IPC file, built from the plan and the token files."""
    schema = shard_schema(seq_len, loss_mask=loss_mask)

    def build(split: str, shard: int, first: int, stop: int) -> dict:
        p = plans.value[split]
        rows = stop - first
        lo, hi = first * seq_len, stop * seq_len
        i0 = int(np.searchsorted(p["end"], lo, side="right"))
        i1 = int(np.searchsorted(p["offset"], hi, side="left"))
        ids = np.full((rows, seq_len), pad_id, np.int32)
        mask = np.zeros((rows, seq_len), np.uint8)
        segments: list[list[int]] = [[] for _ in range(rows)]
        refs: list[list[str]] = [[] for _ in range(rows)]
        files: dict[int, _TokenFile] = {}
        for k in range(i0, i1):
            f = int(p["file"][k])
            if f not in files:
                files[f] = _TokenFile(str(Path(work) / p["files"][f]))
            doc_ids, doc_mask = files[f].get(int(p["row"][k]))
            for seq, at, a, b in plan.pieces(int(p["offset"][k]), len(doc_ids), seq_len):
                if not first <= seq < stop:
                    continue
                r = seq - first
                assert sum(segments[r]) == at, f"pieces of sequence {seq} do not tile it"
                ids[r, at:at + b - a] = doc_ids[a:b]
                mask[r, at:at + b - a] = doc_mask[a:b] if doc_mask is not None else 1
                segments[r].append(b - a)
                refs[r].append(p["refs"][k])
        tokens = 0
        for r in range(rows):
            used = sum(segments[r])
            tokens += used
            if used < seq_len:
                segments[r].append(seq_len - used)
                refs[r].append(PAD_DOC)
        rel = f"{split}/shard-{shard:05d}.arrow"
        out = Path(staged) / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        cols = {"seq": pa.array(np.arange(first, stop), pa.int64()),
                "input_ids": pa.FixedSizeListArray.from_arrays(pa.array(ids.ravel()), seq_len),
                "segments": pa.array(segments, pa.list_(pa.int32())), "doc_ids": pa.array(refs, pa.list_(pa.string()))}
        if loss_mask:
            cols["loss_mask"] = pa.FixedSizeListArray.from_arrays(pa.array(mask.ravel()), seq_len)
        table = pa.table(cols, schema=schema)
        with pa.ipc.new_file(str(out), schema) as w:
            for batch in table.to_batches(max_chunksize=256):
                w.write_batch(batch)
        return {"split": split, "shard": shard, "path": rel, "rows": rows, "first_seq": first, "tokens": tokens,
                "pad": rows * seq_len - tokens, "bytes": out.stat().st_size, "sha256": file_sha256(out)}

    def run(batches):
        for b in batches:
            out = [build(*plans.value["tasks"][t]) for t in b.column("id").to_pylist()]
            if out:
                yield pa.RecordBatch.from_pylist(out, schema=FILES)

    return run


def _build(spark, cfg, manifest, tables, info, spec, staged: Path):
    work = staged / "_work"
    work.mkdir()
    engine, why = encode.choose_engine(info.folder, _samples(cfg, manifest, tables))
    log.info("shards: tokenizing with %s (%s)", engine, why)
    frames = []
    for t in tables:
        frame, read = _read_release(spark, cfg, manifest, t)
        frames.append(frame.mapInArrow(_tokenize_fn(read, t, info, spec, engine, str(work)), spark_schema(META)))
    docs = frames[0]
    for f in frames[1:]:
        docs = docs.unionByName(f)
    meta = docs.toArrow()
    kind = meta.column("kind").to_numpy(zero_copy_only=False)
    split_col = meta.column("split").to_numpy(zero_copy_only=False)
    train = meta.filter(pa.array((kind == "doc") & (split_col == "train")))
    val = meta.filter(pa.array((kind == "doc") & (split_col == "val")))
    if train.num_rows == 0:
        raise ShardError(f"release {manifest['name']}: no training documents in {tables} under blend {spec.blend}")
    mixed = plan.blend(train, spec.blend)
    val_order = val.take(np.argsort(val.column("key").to_numpy(), kind="stable"))
    val_entries = pa.table({"table": val_order["table"], "doc_id": val_order["doc_id"],
                            "copy": pa.array(np.zeros(val_order.num_rows, np.int32)),
                            "n_tokens": val_order["n_tokens"], "blend": val_order["blend"]})
    where = {(t, d): (f, r) for t, d, f, r in zip(*(meta.column(c).to_pylist() for c in ("table", "doc_id", "file", "row")),
                                                  strict=True) if f is not None}
    file_names = sorted({f for f, _ in where.values()})
    file_index = {f: i for i, f in enumerate(file_names)}
    mode = "whole" if spec.mode == "sft" else "stream"
    plans, splits = {"tasks": []}, {}
    for split, entries in (("train", mixed.entries), ("val", val_entries)):
        lengths = entries.column("n_tokens").to_numpy()
        offsets = plan.pack_offsets(lengths, spec.seq_len, mode)
        n_seq = plan.sequences_needed(offsets, lengths, spec.seq_len)
        order = np.argsort(offsets, kind="stable")
        located = [where[(t, d)] for t, d in zip(entries["table"].to_pylist(), entries["doc_id"].to_pylist(), strict=True)]
        refs = [f"{t}:{d}#{c}" for t, d, c in zip(*(entries[c].to_pylist() for c in ("table", "doc_id", "copy")), strict=True)]
        plans[split] = {"offset": offsets[order], "end": (offsets + lengths)[order],
                        "file": np.array([file_index[located[i][0]] for i in order], np.int32),
                        "row": np.array([located[i][1] for i in order], np.int64), "refs": [refs[i] for i in order],
                        "files": file_names}
        tokens = int(lengths.sum())
        splits[split] = {"sequences": n_seq, "entries": entries.num_rows, "tokens": tokens,
                         "pad_tokens": n_seq * spec.seq_len - tokens,
                         "padding_waste": (n_seq * spec.seq_len - tokens) / max(1, n_seq * spec.seq_len), "shards": []}
        for shard, first in enumerate(range(0, n_seq, spec.seqs_per_shard)):
            plans["tasks"].append((split, shard, first, min(n_seq, first + spec.seqs_per_shard)))
    summaries = _account(meta, mixed, val_entries)
    plan_b = spark.sparkContext.broadcast(plans)
    n_tasks = len(plans["tasks"])
    files = (spark.range(0, n_tasks, 1, max(1, n_tasks))
             .mapInArrow(_shard_fn(str(staged), str(work), spec.seq_len, spec.mode == "sft", info.eos_id, plan_b),
                         spark_schema(FILES)).collect())
    plan_b.destroy()
    for f in sorted((r.asDict() for r in files), key=lambda f: (f["split"], f["shard"])):
        splits[f.pop("split")]["shards"].append(f)
    for split, s in splits.items():
        rows = sum(f["rows"] for f in s["shards"])
        if rows != s["sequences"] or sum(f["tokens"] for f in s["shards"]) != s["tokens"]:
            raise ShardError(f"internal: {split} shards hold {rows} sequences / "
                             f"{sum(f['tokens'] for f in s['shards'])} tokens, planned {s['sequences']} / {s['tokens']}")
    _quarantine(spark, cfg, meta, manifest, info, spec)
    shutil.rmtree(work)
    return summaries, splits, mixed.groups, {"engine": engine, "why": why}


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


def _quarantine(spark, cfg, meta: pa.Table, manifest: dict, info, spec: ShardSpec) -> None:
    """Records that could not be tokenized → quarantine.rejected (once per release, tokenizer and spec)."""
    from pyspark.sql import functions as F

    kind = meta.column("kind").to_numpy(zero_copy_only=False)
    bad = meta.filter(pa.array(kind == "reject")).to_pylist()
    if not bad:
        return
    rows = [{"source_file": f"release:{manifest['name']}/{r['table']}", "source_location": f"id={r['doc_id']}",
             "reason": r["reason"], "detail": r["detail"], "table": r["table"]} for r in bad]
    rejects = spark.createDataFrame(rows).withColumn("reject_id", reject_id_column(JOB))
    key = shard_key(manifest, info, spec)
    out = quarantine_rows(spark, cfg, rejects, job=JOB, source=F.col("table"), batch=f"{manifest['name']}/{key}",
                          now=utc_now())
    lake.write_dataframe(cfg, out, REJECTED, batch=Batch(app_id=f"shards:{manifest['name']}:{key}", version=0),
                         metadata={"telelake.job": JOB})
    log.warning("shards: %d records could not be tokenized → %s", len(bad), REJECTED.name)
