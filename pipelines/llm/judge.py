"""Relevance judge: P(Yes) / (P(Yes) + P(No)) of an instruct model, per document (paper §III-B/C).

Input: the keyword-passing pool of a source (silver.keyword_hits, verdict keep) with its bronze
text, the whole bronze table, or any lake table and columns named in `judge.inputs`. Each
document becomes one request (its category picks the prompt: the arXiv prompt takes the
abstract, the web prompt the first `max_chars` characters);
requests go through the result store (`runner.py`), and silver.relevance gets one row per
document and (model, revision, prompt version), committed as one idempotent batch.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import functions as F

from pipelines import lake
from pipelines.ingest.parse import utc_now
from pipelines.lake.spark_types import spark_schema
from pipelines.llm.backend import BackendConfig
from pipelines.llm.models import ResolvedModel, resolve
from pipelines.llm.prompts import PromptSet, Renderer, load_prompt_set
from pipelines.llm.requests import REQUEST_SCHEMA, RunSpec, render_request, worker_tokenizer
from pipelines.llm.runner import run_requests, stored_results
from pipelines.summary import JobSummary
from schemas import KEYWORD_HITS, RELEVANCE

log = logging.getLogger(__name__)
JOB = "judge"
TASK = "next_token_logprobs"


@dataclass(frozen=True, kw_only=True)
class TableInput:
    """Judge the rows of any lake table instead of a bronze source's pool."""
    table: str
    """Lake table `zone.name`, e.g. `silver.arxiv_metadata`."""
    text_column: str = "text"
    id_column: str = "doc_id"
    """Becomes doc_id in silver.relevance (cast to string). Rows without one cannot be keyed and
    are left out with a warning naming how many; of rows sharing an id, one is judged."""
    category: str = "web"
    """Picks the prompt (see prompt_for_category) when category_column is not given."""
    category_column: str | None = None
    where: str | None = None
    """Optional Spark SQL filter on the table's columns, e.g. `lang = 'en'`."""


@dataclass(frozen=True, kw_only=True)
class JudgeSpec:
    sources: list[str]
    """Sources to judge: a bronze source, or a name given in `inputs`."""
    inputs: dict[str, TableInput] = field(default_factory=dict)
    """Source name → any lake table and its columns; such a source ignores `pool`."""
    prompts: str = "conf/prompts/tele_llms_v1.yaml"
    prompt_for_category: dict[str, str] = field(default_factory=lambda: {"arxiv": "relevance_arxiv",
                                                                         "*": "relevance_web"})
    """Prompt name per document category ("*": every other category)."""
    pool: Literal["keyword_pool", "all"] = "keyword_pool"
    """keyword_pool: documents the keyword ledger kept; all: every bronze document."""
    lexicon_version: str = "telecom-v1"
    """Which keyword ledger verdicts define the pool."""
    threshold: float = 0.5
    """p_yes at or above which a document is kept (see `telelake classify eval` to choose it)."""
    target_recall: float = 0.9
    """`telelake classify eval` reports the threshold that reaches this recall (the paper favours recall)."""
    run: RunSpec = field(default_factory=RunSpec)


@dataclass(frozen=True)
class JudgeResult:
    summary: JobSummary
    model_calls: int
    cached: int


def run_judge(spark, cfg: lake.LakeConfig, spec: JudgeSpec, backend: BackendConfig,
              config_json: str = "{}") -> list[JudgeResult]:
    model = resolve(backend.model)  # on the driver first: converts the embedded model once
    prompts = load_prompt_set(spec.prompts)
    return [_judge_source(spark, cfg, spec, backend, model, prompts, source, config_json) for source in spec.sources]


def _judge_source(spark, cfg, spec: JudgeSpec, backend: BackendConfig, model: ResolvedModel, prompts: PromptSet,
                  source: str, config_json: str) -> JudgeResult:
    basis = lake.load(cfg, _basis_table(spec, source))
    batch = lake.Batch(f"telelake.{JOB}.{source}.{prompts.version}.{model.revision}.{_threshold_tag(spec.threshold)}"
                       f".{_input_tag(spec, source)}", basis.version())
    if lake.committed_version(cfg, RELEVANCE.name, batch) is not None:
        return JudgeResult(_summary(cfg, source, model, prompts.version, spec.threshold, already=True), 0, 0)
    docs = pool_documents(spark, cfg, spec, source, prompt_chars(prompts, spec))
    rows, stats, requests = judge_frame(spark, cfg, spec, backend, model, prompts, docs)
    if lake.open_table(cfg, RELEVANCE.name) is not None:  # one row per document and judge settings
        rows = rows.join(_judged(spark, cfg, source, model, prompts.version, spec.threshold), "doc_id", "left_anti")
    lake.write_dataframe(cfg, rows, RELEVANCE, batch=batch,
                         metadata={"telelake.job": JOB, "telelake.config": config_json,
                                   "telelake.model_calls": str(stats.model_calls)})
    requests.unpersist()
    log.info("judge %s: %d requests, %d cached, %d sent to the model in %d commits, %.1f s",
             source, stats.requests, stats.cached, stats.model_calls, stats.chunks, stats.seconds)
    return JudgeResult(_summary(cfg, source, model, prompts.version, spec.threshold, already=False),
                       stats.model_calls, stats.cached)


def judge_frame(spark, cfg, spec: JudgeSpec, backend: BackendConfig, model: ResolvedModel, prompts: PromptSet, docs):
    """Judge the documents of `docs` (doc_id, source, category, text) through the result store:
    (relevance rows as a DataFrame, the run's stats, the persisted requests to unpersist after use)."""
    requests = docs.mapInArrow(_render_fn(model, backend, prompts, spec), spark_schema(_DOC_REQUEST_SCHEMA))
    requests = requests.persist()
    stats = run_requests(spark, cfg, requests, backend, spec.run, model=model.name, revision=model.revision,
                         prompt_version=prompts.version)
    joined = requests.join(stored_results(spark, cfg), "key", "left")
    rows = joined.mapInArrow(_verdict_fn(model, prompts.version, spec.threshold), spark_schema(RELEVANCE.schema))
    return rows, stats, requests


def score_texts(backend, prompts: PromptSet, spec: JudgeSpec, items: list[tuple[str, str]],
                max_prompt_tokens: int, batch_size: int = 16, progress=None) -> list[float]:
    """p_yes of (category, text) pairs on the driver, without Spark or the store: for small
    labelled sets (`telelake classify eval`)."""
    renderer = Renderer(backend.tokenizer(), max_prompt_tokens)
    out: list[float] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        by_prompt: dict[str, list[int]] = {}
        for i, (category, _) in enumerate(chunk):
            name = spec.prompt_for_category.get(category) or spec.prompt_for_category["*"]
            by_prompt.setdefault(name, []).append(i)
        scores = [0.0] * len(chunk)
        for name, idx in by_prompt.items():
            prompt = prompts.get(name)
            texts = [renderer.render(prompt, chunk[i][1]).text for i in idx]
            lp = backend.next_token_logprobs(texts, renderer.label_ids(prompt))
            for i, (yes, no) in zip(idx, lp[:, :2]):
                scores[i] = 1.0 / (1.0 + math.exp(float(no) - float(yes)))
        out.extend(scores)
        if progress:
            progress(len(chunk))
    return out


def prompt_chars(prompts: PromptSet, spec: JudgeSpec) -> int:
    """Characters of a document the judge's prompts take (the set may hold other stages' prompts)."""
    return max(prompts.get(name).max_chars for name in set(spec.prompt_for_category.values()))


def _threshold_tag(t: float) -> str:
    return f"t{t:.4f}".rstrip("0").rstrip(".")


def _input_tag(spec: JudgeSpec, source: str) -> str:
    """What picks and prompts this source's documents: a change makes a new relevance batch."""
    what = asdict(spec.inputs[source]) if source in spec.inputs else [spec.pool, spec.lexicon_version]
    return hashlib.sha256(json.dumps([what, spec.prompt_for_category], sort_keys=True).encode()).hexdigest()[:8]


def _basis_table(spec: JudgeSpec, source: str) -> str:
    """The table whose version a judge batch of this source is tied to."""
    if source in spec.inputs:
        return spec.inputs[source].table
    return KEYWORD_HITS.name if spec.pool == "keyword_pool" else f"bronze.{source}"


def pool_documents(spark, cfg, spec: JudgeSpec, source: str, max_chars: int):
    """doc_id, source, category and the first `max_chars` characters of the text of the pool."""
    if source in spec.inputs:
        return _table_documents(spark, cfg, spec.inputs[source], source, max_chars)

    def cut(batch: pa.RecordBatch) -> pa.RecordBatch:
        text = pc.utf8_slice_codeunits(batch.column("text"), 0, max_chars)
        return pa.RecordBatch.from_arrays([batch.column("doc_id"), batch.column("source"), batch.column("category"),
                                           text], names=["doc_id", "source", "category", "text"])

    schema = pa.schema([("doc_id", pa.string()), ("source", pa.string()), ("category", pa.string()),
                        ("text", pa.string())])
    docs = lake.map_table(spark, cfg, f"bronze.{source}", cut, schema, columns=["doc_id", "source", "category", "text"])
    if spec.pool == "all":
        return docs
    pool = (lake.read_spark(spark, cfg, KEYWORD_HITS.name, columns=["doc_id", "source", "lexicon_version", "verdict"])
            .where((F.col("source") == source) & (F.col("lexicon_version") == spec.lexicon_version)
                   & (F.col("verdict") == "keep")).select("doc_id").distinct())
    return docs.join(pool, "doc_id")


def _table_documents(spark, cfg, inp: TableInput, source: str, max_chars: int):
    """The rows of any lake table as judge documents; its own Delta schema stands for a contract."""
    from schemas import TableContract

    schema = pa.schema(lake.load(cfg, inp.table).schema().to_arrow())
    wanted = [c for c in (inp.id_column, inp.text_column, inp.category_column) if c]
    missing = [c for c in wanted if c not in schema.names]
    if missing:
        raise ValueError(f"judge.inputs.{source}: table {inp.table} has no column(s) {missing}; "
                         f"its columns are {schema.names}")
    contract = TableContract(name=inp.table, schema=schema, key=(), description="judge input")
    df = lake.read_spark(spark, cfg, inp.table, contract=contract, columns=None if inp.where else wanted)
    if inp.where:
        df = df.where(inp.where)
    category = F.col(inp.category_column).cast("string") if inp.category_column else F.lit(inp.category)
    docs = df.select(F.col(inp.id_column).cast("string").alias("doc_id"), F.lit(source).alias("source"),
                     F.coalesce(category, F.lit(inp.category)).alias("category"),
                     F.substring(F.coalesce(F.col(inp.text_column).cast("string"), F.lit("")), 1, max_chars)
                     .alias("text"))
    no_id = docs.where(F.col("doc_id").isNull()).count()
    if no_id:
        log.warning("judge.inputs.%s: %d rows of %s have no %s and are not judged", source, no_id, inp.table,
                    inp.id_column)
    return docs.where(F.col("doc_id").isNotNull()).dropDuplicates(["doc_id"])


_DOC_REQUEST_SCHEMA = pa.schema([pa.field("doc_id", pa.string(), nullable=False),
                                 pa.field("source", pa.string(), nullable=False),
                                 pa.field("category", pa.string(), nullable=False), *REQUEST_SCHEMA])

def _render_fn(model: ResolvedModel, backend: BackendConfig, prompts: PromptSet, spec: JudgeSpec):
    """mapInArrow: documents → requests. The labels must be single tokens: checked per worker."""
    budget = backend.max_context_tokens - 1
    used = sorted(set(spec.prompt_for_category.values()))

    def run(batches):
        renderer = Renderer(worker_tokenizer(model.path), budget)
        label_ids = {name: renderer.label_ids(prompts.get(name)) for name in used}
        for batch in batches:
            out = []
            for r in batch.to_pylist():
                name = spec.prompt_for_category.get(r["category"]) or spec.prompt_for_category["*"]
                prompt = prompts.get(name)
                params = json.dumps({"labels": list(prompt.labels), "token_ids": label_ids[name]})
                out.append({"doc_id": r["doc_id"], "source": r["source"], "category": r["category"],
                            **render_request(renderer, TASK, model, prompts.version, prompt, params, r["text"],
                                             r["doc_id"])})
            if out:
                yield pa.RecordBatch.from_pylist(out, schema=_DOC_REQUEST_SCHEMA)

    return run


def _verdict_fn(model: ResolvedModel, prompt_version: str, threshold: float):
    def run(batches):
        now = utc_now()
        for batch in batches:
            out = []
            for r in batch.to_pylist():
                error = r["error"] or r["store_error"] or (None if r["output"] else "no_result")
                p_yes = None
                if not error:
                    lp = json.loads(r["output"])
                    yes, no = list(lp.values())[:2]
                    p_yes = 1.0 / (1.0 + math.exp(no - yes))  # P(Yes) / (P(Yes) + P(No))
                verdict, reason = (("error", error.split(":")[0][:200]) if error else
                                   ("keep", "llm_yes") if p_yes >= threshold else ("drop", "llm_no"))
                out.append({"doc_id": r["doc_id"], "source": r["source"], "category": r["category"],
                            "model": model.name, "model_revision": model.revision, "prompt_version": prompt_version,
                            "prompt_name": r["prompt_name"], "p_yes": p_yes, "threshold": threshold,
                            "verdict": verdict, "reason": reason, "truncated": r["truncated"],
                            "prompt_tokens": r["prompt_tokens"], "result_key": r["key"], "judged_at": now})
            if out:
                yield pa.RecordBatch.from_pylist(out, schema=RELEVANCE.schema)

    return run


def _judged(spark, cfg, source: str, model: ResolvedModel, prompt_version: str, threshold: float):
    return (lake.read_spark(spark, cfg, RELEVANCE.name,
                            columns=["doc_id", "source", "model_revision", "prompt_version", "threshold"])
            .where((F.col("source") == source) & (F.col("model_revision") == model.revision)
                   & (F.col("prompt_version") == prompt_version) & (F.col("threshold") == threshold))
            .select("doc_id"))


def _summary(cfg, source: str, model: ResolvedModel, prompt_version: str, threshold: float,
             already: bool) -> JobSummary:
    """Counts over every judged document of the source under these judge settings."""
    summary = JobSummary(job=JOB, source=source, already_committed=already)
    version = lake.load(cfg, RELEVANCE.name).version()
    flt = ((pc.field("source") == source) & (pc.field("model_revision") == model.revision)
           & (pc.field("prompt_version") == prompt_version) & (pc.field("threshold") == threshold))
    table = lake.dataset(cfg, RELEVANCE.name, version=version).to_table(columns=["verdict", "reason"], filter=flt)
    summary.count_verdicts(table)
    summary.tables = {RELEVANCE.name: version}
    return summary.check()
