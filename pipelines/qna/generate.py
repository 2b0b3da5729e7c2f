"""Tele-Eval generation (paper §IV): chunk Tele-Data, ask the LLM for five QnA pairs per chunk, parse.

    gold.tele_data (arxiv, standard, wiki) ─ chunk (chunk.py) ─▶ silver.qna_chunks
    kept chunks ─ prompt 3 through the result store (runner.py: resumable, skips finished requests) ─▶
    outputs ─ parse (parse.py) ─▶ silver.qna_pairs, one row per pair with its source id
    unparseable outputs, extra / truncated / incomplete pairs, failed requests ─▶ quarantine.rejected (raw text)

One generation is one idempotent batch, named by the Tele-Data version, the chunker, the model and
revision, the prompt version and the sampling parameters: rerunning it commits nothing, and a run
killed mid-way resends only the requests whose results are not in the store yet.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import Window
from pyspark.sql import functions as F

from pipelines import lake
from pipelines.ingest.parse import utc_now
from pipelines.ingest.records import reject_id
from pipelines.ingest.stage import anti_join_existing, previous_summary
from pipelines.lake.spark_types import spark_schema
from pipelines.llm.backend import BackendConfig, SamplingParams
from pipelines.llm.models import ResolvedModel, resolve
from pipelines.llm.prompts import Prompt, PromptSet, Renderer, load_prompt_set
from pipelines.llm.requests import REQUEST_SCHEMA, RunSpec, render_request, worker_tokenizer
from pipelines.llm.runner import run_requests, stored_results
from pipelines.qna.chunk import ChunkSpec, chunk_spans
from pipelines.qna.parse import parse_pairs, schema_for
from pipelines.quarantine import quarantine_rows
from pipelines.spark import flat_map
from pipelines.summary import JobSummary
from schemas import QNA_CHUNKS, QNA_PAIRS, REJECTED, TELE_DATA
from schemas.qna import TELE_EVAL_CATEGORIES

log = logging.getLogger(__name__)
JOB = "qna_generate"
TASK = "generate"


@dataclass(frozen=True, kw_only=True)
class GenerateSpec:
    categories: list[str] = field(default_factory=lambda: list(TELE_EVAL_CATEGORIES))
    """Tele-Data categories to generate from (paper §IV: papers, standards, Wikipedia)."""
    chunk: ChunkSpec = field(default_factory=ChunkSpec)
    prompts: str = "conf/prompts/tele_llms_v1.yaml"
    prompt: str = "qna_generation"
    """Prompt of the set: the paper's prompt 3 (three-shot) by default."""
    pairs_per_chunk: int = 5
    """Pairs asked for (the prompt says how many; this is what the parser and the JSON schema expect)."""
    max_tokens: int = 768
    temperature: float = 0.0
    """0: greedy, reproducible; the paper does not say."""
    top_p: float = 1.0
    seed: int = 0
    stop: list[str] = field(default_factory=lambda: ["Question 6:"])
    """Stop strings: a model that goes on past the fifth pair stops there instead of at max_tokens."""
    structured_output: bool = True
    """On vLLM, constrain decoding to a JSON list of {question, answer} (transformers: free text, parsed)."""
    tele_data_version: int | None = None
    """Version of gold.tele_data to read; default the latest."""
    max_chunks: int | None = None
    """Generate for this many chunks only (a hash sample, stable across runs): trials and benchmarks."""
    run: RunSpec = field(default_factory=RunSpec)

    def sampling(self) -> SamplingParams:
        schema = json.dumps(schema_for(self.pairs_per_chunk), sort_keys=True) if self.structured_output else None
        return SamplingParams(max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
                              seed=self.seed, stop=tuple(self.stop), json_schema=schema)


@dataclass
class GenerateResult:
    summary: JobSummary
    """Chunks: read = kept (gave at least one pair) + dropped (too short, not sampled) + rejected (no pair)."""
    generation: str
    pairs: int
    pair_problems: dict[str, int]
    model_calls: int = 0
    cached: int = 0


CHUNK_ROWS = pa.schema([f for f in QNA_CHUNKS.schema if f.name not in ("tele_data_version", "chunker", "chunked_at")])


def _chunk_fn(spec: ChunkSpec):
    def run(batch: pa.RecordBatch) -> pa.RecordBatch | None:
        out = []
        for r in batch.to_pylist():
            spans = chunk_spans(r["content"], spec.size)
            for i, (a, b) in enumerate(spans):
                keep = b - a >= spec.min_chars
                out.append({"chunk_id": f"{r['id']}:{a}-{b}", "source_id": r["id"], "doc_id": r["doc_id"],
                            "category": r["category"], "chunk_index": i, "chunks": len(spans), "char_start": a,
                            "char_end": b, "text": r["content"][a:b], "verdict": "keep" if keep else "drop",
                            "reason": "chunk" if keep else "chunk_too_short"})
        return pa.RecordBatch.from_pylist(out, schema=CHUNK_ROWS) if out else None
    return run


CHUNK_REQUESTS = pa.schema([pa.field("chunk_id", pa.string(), nullable=False),
                            pa.field("source_id", pa.string(), nullable=False),
                            pa.field("category", pa.string(), nullable=False), *REQUEST_SCHEMA])


def _render_fn(model: ResolvedModel, budget: int, prompts: PromptSet, prompt: Prompt, params: str):
    def run(batches):
        renderer = Renderer(worker_tokenizer(model.path), budget)
        for batch in batches:
            out = [{"chunk_id": r["chunk_id"], "source_id": r["source_id"], "category": r["category"],
                    **render_request(renderer, TASK, model, prompts.version, prompt, params, r["text"], r["chunk_id"])}
                   for r in batch.to_pylist()]
            if out:
                yield pa.RecordBatch.from_pylist(out, schema=CHUNK_REQUESTS)
    return run


PARSED = pa.schema([
    ("kind", pa.string()), ("chunk_id", pa.string()), ("source_id", pa.string()), ("category", pa.string()),
    ("pair_id", pa.string()), ("pair_index", pa.int32()), ("question", pa.string()), ("answer", pa.string()),
    ("parse_format", pa.string()), ("parse_notes", pa.list_(pa.string())), ("result_key", pa.string()),
    ("reject_id", pa.string()), ("source_file", pa.string()), ("source_location", pa.string()), ("reason", pa.string()),
    ("detail", pa.string()), ("raw", pa.binary()), ("raw_bytes", pa.int64()),
])
"""kind: pair (one per parsed pair) | problem (a quarantined piece of an output) | failed (the chunk gave no pair)."""


def parse_result(row: dict, expected: int) -> list[dict]:
    """PARSED rows for one chunk's request joined with its stored result. Pure."""
    base = {f: None for f in PARSED.names} | {"chunk_id": row["chunk_id"], "source_id": row["source_id"],
                                               "category": row["category"], "result_key": row["key"],
                                               "source_file": QNA_CHUNKS.name}
    error = row["error"] or row["store_error"] or (None if row["output"] is not None else "no_result")

    def problem(i: int, reason: str, detail: str, raw: str) -> dict:
        location = f"chunk={row['chunk_id']};result={row['key'][:16]};item={i}"
        data = raw.encode("utf-8", "replace")
        return base | {"kind": "problem", "reason": reason, "detail": detail, "source_location": location,
                       "reject_id": reject_id(JOB, QNA_CHUNKS.name, location), "raw": data[: 1 << 20],
                       "raw_bytes": len(data)}

    if error:
        return [problem(0, "llm_error", error[:2000], "") | {"kind": "failed"}]
    (text, *_) = json.loads(row["output"]) or [""]
    parsed = parse_pairs(text, expected)
    out = [problem(i + 1, p.reason, p.detail, p.raw) for i, p in enumerate(parsed.problems)]
    for i, (q, a) in enumerate(parsed.pairs):
        pid = hashlib.sha256(f"{row['chunk_id']}\x00{row['key']}\x00{i}".encode()).hexdigest()[:20]
        out.append(base | {"kind": "pair", "pair_id": pid, "pair_index": i, "question": q, "answer": a,
                           "parse_format": parsed.format, "parse_notes": parsed.notes})
    if not parsed.pairs:  # the whole output is among the problems; the chunk gave nothing
        for r in out:
            if r["reason"] in ("empty_output", "unparseable_output"):
                r["kind"] = "failed"
    return out


def run_generate(spark, cfg: lake.LakeConfig, spec: GenerateSpec, backend: BackendConfig,
                 config_json: str = "{}") -> GenerateResult:
    model = resolve(backend.model)  # on the driver first: converts the embedded model once
    prompts = load_prompt_set(spec.prompts)
    prompt = prompts.get(spec.prompt)
    table = lake.open_table(cfg, TELE_DATA.name)
    if table is None:
        raise LookupError(f"{TELE_DATA.name} does not exist in {cfg.root}; run `telelake assemble` first")
    version = spec.tele_data_version if spec.tele_data_version is not None else table.version()
    params = spec.sampling()
    if spec.max_tokens >= backend.max_context_tokens:
        raise ValueError(f"qna.max_tokens {spec.max_tokens} leaves no room for the passage in "
                         f"llm.max_context_tokens {backend.max_context_tokens}")
    what = json.dumps([version, asdict(spec.chunk), spec.categories, model.name, model.revision, prompts.version,
                       spec.prompt, params.to_json(), spec.pairs_per_chunk, spec.max_chunks], sort_keys=True)
    tag = hashlib.sha256(what.encode()).hexdigest()[:16]
    batch = lake.Batch(app_id=f"telelake.{JOB}.{tag}", version=1)
    done = previous_summary(cfg, QNA_PAIRS.name, batch)
    if done is not None and lake.committed_version(cfg, REJECTED.name, batch) is not None:
        meta = _meta(cfg, batch)
        return GenerateResult(done, tag, meta["pairs"], meta["pair_problems"])
    files = [f for c in spec.categories for f in lake.data_files(cfg, TELE_DATA.name, where={"category": c},
                                                                  version=version)]
    log.info("qna generate %s: %s v%d (%s), %d files, model %s, prompt %s/%s", tag, TELE_DATA.name, version,
             ", ".join(spec.categories), len(files), model.name, prompts.version, spec.prompt)
    chunks = lake.map_table(spark, cfg, TELE_DATA.name, _chunk_fn(spec.chunk), CHUNK_ROWS,
                            columns=["id", "category", "content", "doc_id"], files=files, batch_rows=64)
    if spec.max_chunks is not None:  # a stable sample of the chunks worth generating for
        rank = F.row_number().over(Window.orderBy(F.sha2(F.concat(F.lit("sample\x00"), "chunk_id"), 256)))
        chunks = (chunks.withColumn("_rank", F.when(F.col("verdict") == "keep", rank))
                  .withColumn("reason", F.when(F.col("_rank") > spec.max_chunks, "not_sampled").otherwise(F.col("reason")))
                  .withColumn("verdict", F.when(F.col("_rank") > spec.max_chunks, "drop").otherwise(F.col("verdict")))
                  .drop("_rank"))
    chunks = chunks.persist(StorageLevel.MEMORY_AND_DISK)
    requests = (chunks.where(F.col("verdict") == "keep")
                .mapInArrow(_render_fn(model, backend.max_context_tokens - spec.max_tokens, prompts, prompt,
                                       params.to_json()), spark_schema(CHUNK_REQUESTS))
                .persist(StorageLevel.MEMORY_AND_DISK))
    try:
        stats = run_requests(spark, cfg, requests, backend, spec.run, model=model.name, revision=model.revision,
                             prompt_version=prompts.version)
        parsed = (requests.join(stored_results(spark, cfg), "key", "left")
                  .mapInArrow(flat_map(lambda r: parse_result(r, spec.pairs_per_chunk), PARSED), spark_schema(PARSED))
                  .persist(StorageLevel.MEMORY_AND_DISK))
        summary = JobSummary(job="qna generate", source=",".join(spec.categories))
        for r in chunks.groupBy("verdict", "reason").count().collect():
            if r["verdict"] == "drop":
                summary.read += r["count"]
                summary.dropped[r["reason"]] += r["count"]
        pair_problems: dict[str, int] = {}
        per_chunk = parsed.groupBy("chunk_id").agg(
            F.max(F.when(F.col("kind") == "pair", 1).otherwise(0)).alias("ok"),
            F.max(F.when(F.col("kind") == "failed", F.col("reason"))).alias("why"))
        for r in per_chunk.groupBy("ok", "why").count().collect():
            summary.read += r["count"]
            if r["ok"]:
                summary.kept += r["count"]
            else:
                summary.rejected[r["why"] or "no_pair"] += r["count"]
        for r in parsed.where(F.col("kind") == "problem").groupBy("reason").count().collect():
            pair_problems[r["reason"]] = r["count"]
        pairs = parsed.where(F.col("kind") == "pair").count()
        summary.check()
        now = utc_now()
        meta = {"telelake.job": JOB, "telelake.summary": summary.to_json(), "telelake.config": config_json,
                "telelake.pairs": str(pairs), "telelake.pair_problems": json.dumps(pair_problems),
                "telelake.model_calls": str(stats.model_calls)}
        chunk_rows = anti_join_existing(spark, cfg, chunks, QNA_CHUNKS.name, "chunk_id").select(
            *CHUNK_ROWS.names, F.lit(version).cast("long").alias("tele_data_version"),
            F.lit(json.dumps(asdict(spec.chunk), sort_keys=True)).alias("chunker"), F.lit(now).alias("chunked_at"))
        pair_rows = anti_join_existing(spark, cfg, parsed.where(F.col("kind") == "pair"), QNA_PAIRS.name, "pair_id").select(
            "pair_id", "chunk_id", "source_id", "category", "pair_index", "question", "answer", "parse_format",
            "parse_notes", F.lit(model.name).alias("model"), F.lit(model.revision).alias("model_revision"),
            F.lit(prompts.version).alias("prompt_version"), F.lit(tag).alias("generation"), "result_key",
            F.lit(now).alias("generated_at"))
        rejects = quarantine_rows(spark, cfg, parsed.where(F.col("kind") != "pair"), job=JOB, source=F.col("category"),
                                  batch=tag, now=now)
        tables = {}
        for contract, rows in ((QNA_CHUNKS, chunk_rows), (QNA_PAIRS, pair_rows), (REJECTED, rejects)):
            r = lake.write_dataframe(cfg, rows, contract, batch=batch, metadata=meta)
            tables[r.table] = r.version
        summary.tables = tables
        parsed.unpersist()
    finally:
        requests.unpersist()
        chunks.unpersist()
    log.info("qna generate %s: %d requests, %d cached, %d sent to the model, %.1f s", tag, stats.requests,
             stats.cached, stats.model_calls, stats.seconds)
    return GenerateResult(summary, tag, pairs, pair_problems, stats.model_calls, stats.cached)


def _meta(cfg: lake.LakeConfig, batch: lake.Batch) -> dict:
    entry = lake.batch_commit(cfg, QNA_PAIRS.name, batch) or {}
    return {"pairs": int(entry.get("telelake.pairs", 0)),
            "pair_problems": json.loads(entry.get("telelake.pair_problems", "{}"))}
