"""Assemble gold.tele_data (and gold.general_replay) from the silver verdicts, deduplicated.

    decisions per source (inclusion.py, small columns)  →  admitted keys
    one scan per source of the admitted texts           →  content, public metadata, tokens, MinHash
    general replay: a hash sample of the general source sized to `share` of the characters
    dedup over all candidates together (stage.py)       →  silver.dedup ledger
    ids from gold.tele_data_ids (new documents get new numbers)  →  gold tables (overwrite)

One assembly is one idempotent batch, named by the conf and the versions of every input table:
rerunning it is a no-op, a run killed between its commits finishes the rest with the same ids.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field

import orjson
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pipelines import lake
from pipelines.dedup.stage import SIGNATURE_FIELDS, DedupSpec, dedup, signature_columns
from pipelines.gold.inclusion import GoldSource, LengthBounds, decisions, lineage_json
from pipelines.gold.layout import dumps, public_metadata, recency
from pipelines.gold.tokens import DEFAULT_TOKENIZER, count_tokens, resolve_tokenizer
from pipelines.ingest.parse import utc_now
from pipelines.summary import JobSummary
from schemas import CASCADE, CLEANED, DEDUP, GENERAL_REPLAY, KEYWORD_HITS, RELEVANCE, TELE_DATA, TELE_DATA_IDS
from schemas.gold import GENERAL_CATEGORY

log = logging.getLogger(__name__)
JOB = "assemble"


@dataclass(frozen=True, kw_only=True)
class GeneralReplay:
    """General-purpose data mixed in against catastrophic forgetting (paper §VII: 5% SlimPajama)."""

    source: str
    """bronze.<source>, ingested with category general (e.g. format slimpajama_jsonl)."""
    share: float = 0.05
    """Target share of the released characters (≈ tokens) that is general data."""
    seed: int = 1
    """The sample is the documents whose hash(seed, doc_id) falls below the sampling rate: stable as
    the general corpus grows, different for another seed."""

    def __post_init__(self) -> None:
        if not 0.0 < self.share < 1.0:
            raise ValueError(f"general.share {self.share} must be between 0 and 1 (0.05 for 5%)")


@dataclass(frozen=True, kw_only=True)
class AssembleSpec:
    sources: list[GoldSource]
    """Tele-Data sources in priority order: on a duplicate, the copy from the earlier source is kept."""
    length: LengthBounds = field(default_factory=LengthBounds)
    dedup: DedupSpec = field(default_factory=DedupSpec)
    tokenizer: str = DEFAULT_TOKENIZER
    """tokenizer.json, a model folder, or embedded:<model>: token counts in gold and in releases."""
    general: GeneralReplay | None = None

    def __post_init__(self) -> None:
        names = [s.source for s in self.sources]
        if not names:
            raise ValueError("assemble.sources is empty: name at least one source")
        if len(set(names)) != len(names):
            raise ValueError(f"assemble.sources names a source twice: {names}")
        if self.general and self.general.source in names:
            raise ValueError(f"general.source {self.general.source!r} is also a Tele-Data source")


CANDIDATE = pa.schema([
    pa.field("doc_id", pa.string(), nullable=False), pa.field("source", pa.string(), nullable=False),
    pa.field("category", pa.string(), nullable=False), pa.field("content", pa.string(), nullable=False),
    pa.field("metadata", pa.string(), nullable=False), pa.field("priority", pa.int32(), nullable=False),
    pa.field("recency", pa.int64(), nullable=False), pa.field("chars", pa.int64(), nullable=False),
    pa.field("tokens", pa.int64(), nullable=False), *SIGNATURE_FIELDS,
])


@dataclass
class AssembleResult:
    assembly: str
    summaries: list[JobSummary]
    funnel: dict[str, dict[str, int]]
    """source → stage → documents remaining after it (read, keyword, relevance, clean, length, dedup)."""
    tables: dict[str, int]
    already_committed: bool = False


def _candidate_fn(*, priority: int, keys: frozenset[str], key_cols: tuple[str, ...], tokenizer: str,
                  dedup_spec: DedupSpec, general: bool):
    """Admitted rows of a batch → CANDIDATE rows (content, public metadata, tokens, signature)."""

    def run(batch: pa.RecordBatch) -> pa.RecordBatch | None:
        rows = [r for r in batch.to_pylist() if "\0".join(str(r[c]) for c in key_cols) in keys]
        if not rows:
            return None
        texts = [r["text"] for r in rows]
        out = {"doc_id": [], "source": [], "category": [], "content": texts, "metadata": [], "priority": [],
               "recency": [], "chars": [len(t) for t in texts], "tokens": count_tokens(tokenizer, texts)}
        for r in rows:
            meta = orjson.loads(r["metadata"] or "{}")
            category = GENERAL_CATEGORY if general else r["category"]
            out["doc_id"].append(r["doc_id"])
            out["source"].append(r["source"])
            out["category"].append(category)
            out["metadata"].append(dumps(public_metadata(category, title=r.get("title"), url=r.get("url"),
                                                         source_id=r.get("source_id"), metadata=meta)))
            out["priority"].append(priority)
            out["recency"].append(recency(category, meta))
        sig = signature_columns(texts, dedup_spec.minhash)
        arrays = [pa.array(out[f.name], f.type) for f in CANDIDATE if f.name in out] + sig
        return pa.RecordBatch.from_arrays(arrays, schema=CANDIDATE)

    return run


def _fingerprint(cfg: lake.LakeConfig, spec: AssembleSpec, tables: list[str]) -> tuple[str, dict]:
    versions = {}
    for t in sorted(set(tables)):
        table = lake.open_table(cfg, t)
        versions[t] = table.version() if table is not None else None
    conf = json.dumps({"spec": repr(spec), "versions": versions, "tokenizer": spec.tokenizer}, sort_keys=True)
    return hashlib.sha256(conf.encode()).hexdigest()[:16], versions


def run_assemble(spark, cfg: lake.LakeConfig, spec: AssembleSpec, config_json: str = "{}") -> AssembleResult:
    # gold.tele_data_ids is not an input: it only numbers new documents, and a run killed after
    # registering them must resume as the same batch (it then finds them registered, same ids).
    inputs = [s.table for s in spec.sources] + [KEYWORD_HITS.name, RELEVANCE.name, CASCADE.name, CLEANED.name]
    if spec.general:
        inputs.append(f"bronze.{spec.general.source}")
    tag, versions = _fingerprint(cfg, spec, inputs)
    batch = lake.Batch(app_id=f"telelake.{JOB}.{tag}", version=1)
    done = lake.committed_version(cfg, TELE_DATA.name, batch)
    if done is not None:
        return _previous(cfg, batch, tag)
    tokenizer = resolve_tokenizer(spec.tokenizer)  # may convert the embedded model once: not for a no-op rerun
    log.info("assemble %s: %d sources%s, inputs %s", tag, len(spec.sources),
             f" + general {spec.general.source}" if spec.general else "", versions)

    funnel: dict[str, dict[str, int]] = {}
    summaries: dict[str, JobSummary] = {}
    candidates: list[DataFrame] = []
    tele_chars = 0
    for priority, src in enumerate(spec.sources):
        d = decisions(spark, cfg, src, spec.length).persist(StorageLevel.MEMORY_AND_DISK)
        counts = d.groupBy("dropped_at", "reason").agg(F.count(F.lit(1)).alias("n"), F.sum("chars").alias("chars")).collect()
        summaries[src.source] = s = JobSummary(job=JOB, source=src.source)
        for c in counts:
            s.read += c["n"]
            if c["dropped_at"] is None:
                tele_chars += c["chars"] or 0
            else:
                s.dropped[f"{c['dropped_at']}:{c['reason']}"] += c["n"]
        funnel[src.source] = _funnel(s.read, counts, src.stages)
        keys = frozenset(r["key"] for r in d.where(F.col("dropped_at").isNull()).select("key").collect())
        candidates.append(_scan(spark, cfg, src, priority, keys, tokenizer, spec.dedup).join(
            d.select("doc_id", "lineage"), "doc_id"))
    if spec.general:
        cand, s, f = _general(spark, cfg, spec, len(spec.sources), tele_chars, tokenizer)
        summaries[spec.general.source], funnel[spec.general.source] = s, f
        candidates.append(cand)

    cands = candidates[0]
    for c in candidates[1:]:
        cands = cands.unionByName(c)
    cands = cands.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        ledger = dedup(cands, spec.dedup).persist(StorageLevel.MEMORY_AND_DISK)
        for r in ledger.groupBy("source", "verdict", "reason").count().collect():
            s = summaries[r["source"]]
            if r["verdict"] == "keep":
                s.kept += r["count"]
            else:
                s.dropped[f"dedup:{r['reason']}"] += r["count"]
        for name, s in summaries.items():
            funnel[name]["dedup"] = s.kept
            s.check()
        now = utc_now()
        kept = (cands.join(ledger.where(F.col("verdict") == "keep").select("doc_id", "cluster_id", "cluster_size"), "doc_id"))
        new_ids, ids = _assign_ids(spark, cfg, kept.select("doc_id", "category"), tag, now)
        dedup_json = F.to_json(F.struct("cluster_id", "cluster_size"))
        gold = kept.join(ids, "doc_id").select(
            "id", "category", "content", "metadata", "doc_id", "source", F.col("chars").alias("content_chars"), "tokens",
            # the stage lineage object with the dedup cluster added as one more key
            F.concat(F.expr("substring(lineage, 1, length(lineage) - 1)"), F.lit(',"dedup":'), dedup_json,
                     F.lit("}")).alias("lineage"),
            F.lit(tag).alias("assembly"), F.lit(now).alias("assembled_at"))
        meta = {"telelake.job": JOB, "telelake.funnel": json.dumps(funnel), "telelake.config": config_json,
                "telelake.summaries": json.dumps([json.loads(s.to_json()) for s in summaries.values()]),
                "telelake.inputs": json.dumps(versions), "telelake.tokenizer": spec.tokenizer}
        ledger_rows = ledger.select(*[c for c in DEDUP.schema.names if c not in ("params", "assembly", "deduped_at")],
                                    F.lit(spec.dedup.to_json()).alias("params"), F.lit(tag).alias("assembly"),
                                    F.lit(now).alias("deduped_at"))
        tables = {}
        r = lake.write_dataframe(cfg, new_ids, TELE_DATA_IDS, batch=batch, metadata=meta)
        tables[r.table] = r.version
        r = lake.write_dataframe(cfg, ledger_rows, DEDUP, batch=batch, metadata=meta)
        tables[r.table] = r.version
        if spec.general or lake.open_table(cfg, GENERAL_REPLAY.name) is not None:  # always the latest assembly's
            r = lake.write_dataframe(cfg, gold.where(F.col("category") == GENERAL_CATEGORY), GENERAL_REPLAY,
                                     batch=batch, mode="overwrite", metadata=meta)
            tables[r.table] = r.version
        r = lake.write_dataframe(cfg, gold.where(F.col("category") != GENERAL_CATEGORY), TELE_DATA, batch=batch,
                                 mode="overwrite", metadata=meta)
        tables[r.table] = r.version
        ledger.unpersist()
        new_ids.unpersist()
    finally:
        cands.unpersist()
    for s in summaries.values():
        s.tables = tables
    return AssembleResult(tag, list(summaries.values()), funnel, tables)


def _funnel(read: int, counts, stages: tuple[str, ...]) -> dict[str, int]:
    out, left = {"read": read}, read
    for stage in stages:
        left -= sum(c["n"] for c in counts if c["dropped_at"] == stage)
        out[stage] = left
    return out


def _scan(spark, cfg: lake.LakeConfig, src: GoldSource, priority: int, keys: frozenset[str], tokenizer: str,
          dedup_spec: DedupSpec) -> DataFrame:
    if src.input == "cleaned":
        table, cols, key_cols = CLEANED.name, ["doc_id", "source", "category", "source_id", "title", "text",
                                                "metadata", "rules_version"], ("doc_id", "rules_version")
    else:
        table, cols, key_cols = f"bronze.{src.source}", ["doc_id", "source", "category", "source_id", "url", "title",
                                                          "text", "metadata"], ("doc_id",)
    fn = _candidate_fn(priority=priority, keys=keys, key_cols=key_cols, tokenizer=tokenizer, dedup_spec=dedup_spec,
                       general=False)
    return lake.map_table(spark, cfg, table, fn, CANDIDATE, columns=cols, batch_rows=256)


def _general(spark, cfg: lake.LakeConfig, spec: AssembleSpec, priority: int, tele_chars: int, tokenizer: str):
    g = spec.general
    table = f"bronze.{g.source}"
    if lake.open_table(cfg, table) is None:
        raise LookupError(f"{table} does not exist; ingest the general corpus first (format slimpajama_jsonl, "
                          f"category general) or remove assemble.general")
    docs = lake.read_spark(spark, cfg, table, columns=["doc_id", "text_chars", "source_file", "source_location"])
    total = docs.agg(F.sum("text_chars")).first()[0] or 0
    # share of the mix = general / (tele + general)  →  general = tele × share / (1 − share)
    rate = min(1.0, tele_chars * g.share / (1 - g.share) / total) if total else 0.0
    u = F.conv(F.substring(F.sha2(F.concat(F.lit(f"{g.seed}\0"), "doc_id"), 256), 1, 13), 16, 10).cast("double") / float(16 ** 13)
    docs = docs.withColumn("_take", u < F.lit(rate)).persist(StorageLevel.MEMORY_AND_DISK)
    s = JobSummary(job=JOB, source=g.source)
    for r in docs.groupBy("_take").count().collect():
        s.read += r["count"]
        if not r["_take"]:
            s.dropped["replay:not_sampled"] += r["count"]
    keys = frozenset(r["doc_id"] for r in docs.where("_take").select("doc_id").collect())
    log.info("general replay %s: sampling rate %.4f for a %.1f%% share (%s of %s documents)", g.source, rate,
             100 * g.share, f"{len(keys):,}", f"{s.read:,}")
    funnel = {"read": s.read, "sample": len(keys)}
    fn = _candidate_fn(priority=priority, keys=keys, key_cols=("doc_id",), tokenizer=tokenizer,
                       dedup_spec=spec.dedup, general=True)
    cand = lake.map_table(spark, cfg, table, fn, CANDIDATE, columns=["doc_id", "source", "category", "source_id", "url",
                                                                       "title", "text", "metadata"], batch_rows=256)
    stages = F.struct(F.struct(F.lit(g.share).alias("share"), F.lit(g.seed).alias("seed"),
                               F.lit(rate).alias("rate")).alias("replay"))
    lineage = docs.where("_take").select("doc_id", lineage_json(table, lake.load(cfg, table).version(), stages).alias("lineage"))
    return cand.join(lineage, "doc_id"), s, funnel


def _assign_ids(spark, cfg: lake.LakeConfig, kept: DataFrame, tag: str, now) -> tuple[DataFrame, DataFrame]:
    """(new, ids): registry rows for the kept documents new to gold.tele_data_ids (the next numbers of
    their category, in doc_id order), and (doc_id, id) for every kept document."""
    if lake.open_table(cfg, TELE_DATA_IDS.name) is not None:
        registry = lake.read_spark(spark, cfg, TELE_DATA_IDS.name, columns=["doc_id", "number", "category", "id"])
        top = {r["category"]: r["m"] for r in registry.groupBy("category").agg(F.max("number").alias("m")).collect()}
        known = kept.join(registry.select("doc_id", "id"), "doc_id")
        new = kept.join(registry.select("doc_id"), "doc_id", "left_anti")
    else:
        top, known, new = {}, None, kept
    base = F.lit(0).cast("long")
    if top:
        base = F.coalesce(F.element_at(F.create_map(*[x for k, v in top.items() for x in (F.lit(k), F.lit(v))]),
                                       F.col("category")), base)
    new = new.withColumn("number", base + F.row_number().over(Window.partitionBy("category").orderBy("doc_id")))
    new = new.select("doc_id", "category", "number", F.concat_ws("_", "category", F.col("number").cast("string")).alias("id"),
                     F.lit(tag).alias("assembly"), F.lit(now).alias("assigned_at"))
    new = new.persist(StorageLevel.MEMORY_AND_DISK)
    ids = new.select("doc_id", "id")
    return new, ids if known is None else ids.unionByName(known.select("doc_id", "id"))


def _previous(cfg: lake.LakeConfig, batch: lake.Batch, tag: str) -> AssembleResult:
    """The result stored with an assembly already committed: nothing is recomputed."""
    entry = lake.batch_commit(cfg, TELE_DATA.name, batch)
    if entry is not None:
        summaries = [JobSummary.from_json(json.dumps(s)) for s in json.loads(entry["telelake.summaries"])]
        for s in summaries:
            s.already_committed = True
        tables = summaries[0].tables if summaries else {}
        return AssembleResult(tag, summaries, json.loads(entry["telelake.funnel"]),
                              {**tables, TELE_DATA.name: entry["version"]}, already_committed=True)
    raise RuntimeError(f"{TELE_DATA.name}: assembly {tag} is committed but its commit carries no summary")
