"""Tele-Eval filtering (paper §IV): generated pairs → gold.tele_eval, every decision in a ledger.

    silver.qna_pairs (+ the chunk each came from)
      regex (conf/qna/filters.yaml) → length → form (a question, in its own words) → language
      → answerability: prompt 4's P(Yes) ≥ threshold, through the LLM result store (judge.judge_frame)
      → dedup of near-identical questions (MinHash over the questions; the most answerable copy stays)
      → decontamination against gold.benchmarks (a shared word n-gram with a benchmark question)
    → silver.qna_verdicts (every pair: stage, reason, scores), gold.tele_eval (the kept pairs,
      rewritten), quarantine.rejected (pairs whose LLM request failed), the funnel report.

One filtering run is one idempotent batch named by its inputs (pairs, benchmarks versions) and the
whole filter conf: rerunning it is a no-op; a changed threshold is a new run whose LLM requests
all come from the store.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import functions as F

from pipelines import lake
from pipelines.dedup.minhash import MinHashParams
from pipelines.dedup.stage import SIGNATURE_FIELDS, DedupSpec, dedup, signature_columns
from pipelines.ingest.parse import utc_now
from pipelines.ingest.stage import previous_summary
from pipelines.lake.spark_types import spark_schema
from pipelines.llm.backend import BackendConfig
from pipelines.llm.judge import JudgeSpec, judge_frame
from pipelines.llm.models import resolve
from pipelines.llm.prompts import load_prompt_set
from pipelines.llm.requests import RunSpec
from pipelines.qna.decontam import BenchmarkIndex
from pipelines.qna.filters import (FormRules, LanguageRules, LengthRules, RegexFilters, check_form, check_language,
                                   check_length, example_keys, reference)
from pipelines.qna.parse import few_shot_questions
from pipelines.qna.report import write_report
from pipelines.quarantine import quarantine_rows, reject_id_column
from pipelines.spark import flat_map
from pipelines.summary import JobSummary
from schemas import BENCHMARKS, QNA_CHUNKS, QNA_PAIRS, QNA_VERDICTS, REJECTED, TELE_EVAL

log = logging.getLogger(__name__)
JOB = "qna_filter"
STAGES = ("regex", "length", "form", "language", "answerability", "dedup", "decontamination")
"""The chain, in order; the funnel counts pairs remaining after each."""
RULE_STAGES = STAGES[:4]


@dataclass(frozen=True, kw_only=True)
class Answerability:
    """The LLM filter: prompt 4 asks whether the question can be answered without the source."""
    enabled: bool = True
    prompts: str = "conf/prompts/tele_llms_v1.yaml"
    prompt: str = "answerability"
    threshold: float = 0.5
    """P(Yes) at or above which a pair is kept."""
    run: RunSpec = field(default_factory=RunSpec)


@dataclass(frozen=True, kw_only=True)
class QuestionDedup:
    enabled: bool = True
    minhash: MinHashParams = field(default_factory=lambda: MinHashParams(ngram=3, bands=20, rows=5, seed=1))
    """Word 3-grams of the question (questions are short), 20 bands of 5: pairs above ~0.55 Jaccard
    are candidates."""


@dataclass(frozen=True, kw_only=True)
class Decontamination:
    enabled: bool = True
    table: str = BENCHMARKS.name
    ngram: int = 8
    """Shared word n-gram length that makes a generated question overlap a benchmark question."""


@dataclass(frozen=True, kw_only=True)
class FilterSpec:
    generations: list[str] = field(default_factory=list)
    """Generation batches whose pairs are filtered (silver.qna_pairs.generation); empty: all."""
    generation_prompts: str = "conf/prompts/tele_llms_v1.yaml"
    generation_prompt: str = "qna_generation"
    """The generation prompt: its few-shot questions are what `copies_example` looks for."""
    regex: str = "conf/qna/filters.yaml"
    length: LengthRules = field(default_factory=LengthRules)
    form: FormRules = field(default_factory=FormRules)
    language: LanguageRules = field(default_factory=LanguageRules)
    answerability: Answerability = field(default_factory=Answerability)
    dedup: QuestionDedup = field(default_factory=QuestionDedup)
    decontamination: Decontamination = field(default_factory=Decontamination)
    report: str = "reports/tele_eval"
    """Folder of report.md and its PNGs (funnel, filters, P(Yes) histogram)."""


@dataclass
class FilterResult:
    summary: JobSummary
    filtering: str
    funnel: dict[str, int]
    """stage → pairs remaining after it ("generated" first)."""
    reasons: dict[str, dict[str, int]]
    """stage → reason → pairs dropped there."""
    regex_hits: dict[str, int]
    """regex filter → pairs it matches (a pair can match several)."""
    report: str
    model_calls: int = 0


RULES = pa.schema([("pair_id", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
                   ("regex_hits", pa.list_(pa.string())), ("language", pa.string()),
                   ("language_score", pa.float64())])


def rule_verdict(question: str, answer: str, chunk: str, regex: RegexFilters, spec: FilterSpec,
                 examples: frozenset[str]) -> dict:
    """stage and reason of the first rule filter that drops the pair ("kept", "kept" if none);
    `chunk` in `filters.reference` form. Pure."""
    hits = regex.hits(question, answer)
    out = {"stage": "kept", "reason": "kept", "regex_hits": hits, "language": None, "language_score": None}
    if hits:
        return out | {"stage": "regex", "reason": hits[0]}
    if why := check_length(question, answer, spec.length):
        return out | {"stage": "length", "reason": why}
    if why := check_form(question, answer, chunk, spec.form, examples):
        return out | {"stage": "form", "reason": why}
    why, lang, score = check_language(question, answer, spec.language)
    out |= {"language": lang, "language_score": score}
    return out | {"stage": "language", "reason": why} if why else out


def chunk_verdicts(row: dict, regex: RegexFilters, spec: FilterSpec, examples: frozenset[str]) -> list[dict]:
    """RULES rows for the pairs of one chunk (`row`: chunk text and its pairs); the chunk is normalized once."""
    ref = reference(row["text"] or "")
    return [{"pair_id": p["pair_id"], **rule_verdict(p["question"], p["answer"], ref, regex, spec, examples)}
            for p in row["pairs"]]


SIGS = pa.schema([pa.field("doc_id", pa.string(), nullable=False), pa.field("source", pa.string()),
                  pa.field("category", pa.string()), pa.field("score", pa.float64()),
                  pa.field("chars", pa.int64()), *SIGNATURE_FIELDS])


def _sig_fn(params: MinHashParams):
    def run(batches):
        for b in batches:
            questions = b.column("question").to_pylist()
            arrays = [b.column("pair_id"), b.column("source_id"), b.column("category"), b.column("p_answerable"),
                      pa.array([len(q) for q in questions], pa.int64()), *signature_columns(questions, params)]
            yield pa.RecordBatch.from_arrays(arrays, schema=SIGS)
    return run


def _contamination_fn(index: BenchmarkIndex):
    def run(batches):
        for b in batches:
            ids = b.column("pair_id").to_pylist()
            hits = [index.match(q) for q in b.column("question").to_pylist()]
            yield pa.RecordBatch.from_arrays([pa.array(ids, pa.string()), pa.array(hits, pa.string())],
                                             names=["pair_id", "contaminated_by"])
    return run


def run_filter(spark, cfg: lake.LakeConfig, spec: FilterSpec, backend: BackendConfig,
               config_json: str = "{}") -> FilterResult:
    if lake.open_table(cfg, QNA_PAIRS.name) is None:
        raise LookupError(f"{QNA_PAIRS.name} does not exist in {cfg.root}; run `telelake qna generate` first")
    regex = RegexFilters.load(spec.regex)
    examples = example_keys(few_shot_questions(load_prompt_set(spec.generation_prompts).get(spec.generation_prompt)
                                               .template))
    deco = spec.decontamination
    if deco.enabled and lake.open_table(cfg, deco.table) is None:
        raise LookupError(f"decontamination needs {deco.table}; run `telelake benchmarks import` first or set "
                          f"qna_filter.decontamination.enabled: false")
    judge_model = resolve(backend.model) if spec.answerability.enabled else None
    versions = {t: lake.load(cfg, t).version() for t in {QNA_PAIRS.name, QNA_CHUNKS.name}
                | ({deco.table} if deco.enabled else set())}
    what = json.dumps([versions, asdict(spec), regex.version, judge_model and judge_model.revision], sort_keys=True,
                      default=str)
    tag = hashlib.sha256(what.encode()).hexdigest()[:16]
    batch = lake.Batch(app_id=f"telelake.{JOB}.{tag}", version=1)
    done = previous_summary(cfg, TELE_EVAL.name, batch)
    if done is not None and lake.committed_version(cfg, REJECTED.name, batch) is not None:
        return _previous(cfg, batch, done, tag)
    log.info("qna filter %s: %s v%d, %d regex filters (%s), answerability %s, dedup %s, decontamination %s", tag,
             QNA_PAIRS.name, versions[QNA_PAIRS.name], len(regex.filters), regex.version,
             spec.answerability.enabled, spec.dedup.enabled, deco.enabled)

    pairs = lake.read_spark(spark, cfg, QNA_PAIRS.name)
    if spec.generations:
        pairs = pairs.where(F.col("generation").isin(spec.generations))
    pairs = pairs.persist(StorageLevel.MEMORY_AND_DISK)
    chunks = lake.read_spark(spark, cfg, QNA_CHUNKS.name, columns=["chunk_id", "text"])
    grouped = (pairs.groupBy("chunk_id").agg(F.collect_list(F.struct("pair_id", "question", "answer")).alias("pairs"))
               .join(chunks, "chunk_id", "left"))
    rules = grouped.mapInArrow(flat_map(lambda r: chunk_verdicts(r, regex, spec, examples), RULES), spark_schema(RULES))
    ledger = pairs.select("pair_id", "source_id", "category", "question", "answer").join(rules, "pair_id")
    ledger = ledger.withColumn("p_answerable", F.lit(None).cast("double")).persist(StorageLevel.MEMORY_AND_DISK)
    model_calls = 0
    cached = [ledger]  # everything persisted here is released when the run ends
    try:
        if spec.answerability.enabled:
            ledger, model_calls, requests = _answerability(spark, cfg, spec.answerability, backend, judge_model, ledger)
            cached.append(requests)
        ledger = ledger.withColumn("duplicate_of", F.lit(None).cast("string")).withColumn(
            "similarity", F.lit(None).cast("double"))
        if spec.dedup.enabled:
            ledger, sigs = _dedup(ledger, spec.dedup)
            cached.append(sigs)
        ledger = ledger.withColumn("contaminated_by", F.lit(None).cast("string"))
        if deco.enabled:
            index = BenchmarkIndex(((r["item_id"], r["question"]) for r in lake.read_arrow(
                cfg, deco.table, columns=["item_id", "question"]).to_pylist()), deco.ngram)
            log.info("decontamination: %s shingles of %s", f"{len(index):,}", deco.table)
            survivors = ledger.where(F.col("stage") == "kept").select("pair_id", "question")
            hits = survivors.mapInArrow(_contamination_fn(index), "pair_id string, contaminated_by string")
            ledger = (ledger.drop("contaminated_by").join(hits, "pair_id", "left")
                      .withColumn("stage", F.when(F.col("contaminated_by").isNotNull(), "decontamination")
                                  .otherwise(F.col("stage")))
                      .withColumn("reason", F.when(F.col("contaminated_by").isNotNull(), "benchmark_overlap")
                                  .otherwise(F.col("reason"))))
        ledger = ledger.persist(StorageLevel.MEMORY_AND_DISK)
        return _write(spark, cfg, spec, regex, pairs, ledger, batch, tag, config_json, model_calls)
    finally:
        for df in cached:
            df.unpersist()
        pairs.unpersist()


def _answerability(spark, cfg, spec: Answerability, backend: BackendConfig, model, ledger):
    """P(Yes) of prompt 4 for every pair the rules kept, through the result store."""
    judge = JudgeSpec(sources=["tele_eval"], prompts=spec.prompts, prompt_for_category={"*": spec.prompt},
                      threshold=spec.threshold, run=spec.run)
    docs = ledger.where(F.col("stage") == "kept").select(F.col("pair_id").alias("doc_id"), F.lit("tele_eval").alias("source"),
                                                         F.col("category"), F.col("question").alias("text"))
    rows, stats, requests = judge_frame(spark, cfg, judge, backend, model, load_prompt_set(spec.prompts), docs)
    scored = rows.select(F.col("doc_id").alias("pair_id"), F.col("p_yes").alias("_p"), F.col("verdict").alias("_v"),
                         F.col("reason").alias("_r"))
    out = (ledger.drop("p_answerable").join(scored, "pair_id", "left")
           .withColumn("p_answerable", F.col("_p"))
           .withColumn("stage", F.when(F.col("_v").isin("drop", "error"), "answerability").otherwise(F.col("stage")))
           .withColumn("reason", F.when(F.col("_v") == "error", F.concat(F.lit("llm_error:"), F.col("_r")))
                       .when(F.col("_v") == "drop", F.col("_r")).otherwise(F.col("reason")))
           .drop("_p", "_v", "_r"))
    return out, stats.model_calls, requests


def _dedup(ledger, spec: QuestionDedup):
    survivors = ledger.where(F.col("stage") == "kept")
    sigs = survivors.select("pair_id", "source_id", "category", "p_answerable", "question").mapInArrow(
        _sig_fn(spec.minhash), spark_schema(SIGS)).persist(StorageLevel.MEMORY_AND_DISK)
    d = dedup(sigs, DedupSpec(minhash=spec.minhash, keep_order=("-score", "-chars")))
    dropped = d.where(F.col("verdict") == "drop").select(
        F.col("doc_id").alias("pair_id"), F.col("kept_doc_id").alias("_of"), F.col("similarity").alias("_sim"),
        F.col("reason").alias("_why"))
    out = (ledger.drop("duplicate_of", "similarity").join(dropped, "pair_id", "left")
           .withColumn("duplicate_of", F.col("_of")).withColumn("similarity", F.col("_sim"))
           .withColumn("stage", F.when(F.col("_of").isNotNull(), "dedup").otherwise(F.col("stage")))
           .withColumn("reason", F.when(F.col("_of").isNotNull(), F.col("_why")).otherwise(F.col("reason")))
           .drop("_of", "_sim", "_why"))
    return out, sigs


def _write(spark, cfg, spec: FilterSpec, regex: RegexFilters, pairs, ledger, batch, tag: str, config_json: str,
           model_calls: int) -> FilterResult:
    counts = {(r["stage"], r["reason"]): r["count"] for r in ledger.groupBy("stage", "reason").count().collect()}
    hits = {r["hit"]: r["count"] for r in ledger.select(F.explode("regex_hits").alias("hit")).groupBy("hit").count().collect()}
    total = sum(counts.values())
    reasons: dict[str, dict[str, int]] = {}
    summary = JobSummary(job="qna filter", source="tele_eval", read=total)
    for (stage, reason), n in counts.items():
        if stage == "kept":
            summary.kept += n
        elif reason.startswith("llm_error"):
            summary.rejected[f"{stage}:{reason}"] += n
        else:
            summary.dropped[f"{stage}:{reason}"] += n
        if stage != "kept":
            reasons.setdefault(stage, {})[reason] = n
    summary.check()
    funnel, left = {"generated": total}, total
    for stage in STAGES:
        left -= sum(reasons.get(stage, {}).values())
        funnel[stage] = left
    now = utc_now()
    verdicts = ledger.select(
        "pair_id", F.lit(tag).alias("filtering"), F.when(F.col("stage") == "kept", "keep").otherwise("drop").alias("verdict"),
        "stage", "reason", "regex_hits", "language", "language_score", "p_answerable", "duplicate_of", "similarity",
        "contaminated_by", F.lit(now).alias("filtered_at"))
    kept = (ledger.where(F.col("stage") == "kept").select("pair_id", "p_answerable", "language_score")
            .join(pairs, "pair_id").join(lake.read_spark(spark, cfg, QNA_CHUNKS.name,
                                                         columns=["chunk_id", "char_start", "char_end"]), "chunk_id"))
    gold = kept.select(F.col("question").alias("Statement"), F.col("answer").alias("Answer"),
                       F.col("source_id").alias("ID"), "pair_id", "category", "chunk_id", "char_start", "char_end",
                       "model", "model_revision", "prompt_version",
                       "p_answerable", "language_score",
                       F.lit(tag).alias("filtering"), "generated_at")
    failed = ledger.where(F.col("reason").startswith("llm_error")).select(
        "pair_id", "category", "reason", F.col("reason").alias("detail"),
        F.lit(QNA_PAIRS.name).alias("source_file"), F.concat(F.lit("pair_id="), "pair_id").alias("source_location"),
        F.encode(F.concat_ws("\n", F.concat(F.lit("Question: "), "question"), F.concat(F.lit("Answer: "), "answer")),
                 "utf-8").alias("raw"))
    failed = failed.withColumn("reject_id", reject_id_column(JOB)).withColumn("raw_bytes", F.length("raw").cast("long"))
    report = write_report(spec.report, tag, funnel, reasons, hits, len(regex.filters),
                          ledger.select("p_answerable", "stage").where(F.col("p_answerable").isNotNull())
                          .toPandas(), spec.answerability.threshold)
    meta = {"telelake.job": JOB, "telelake.summary": summary.to_json(), "telelake.config": config_json,
            "telelake.funnel": json.dumps(funnel), "telelake.reasons": json.dumps(reasons),
            "telelake.regex_hits": json.dumps(hits), "telelake.report": report,
            "telelake.model_calls": str(model_calls)}
    tables = {}
    try:
        for contract, rows, mode in ((QNA_VERDICTS, verdicts, "append"), (TELE_EVAL, gold, "overwrite"),
                                     (REJECTED, quarantine_rows(spark, cfg, failed, job=JOB, source=F.col("category"),
                                                                batch=tag, now=now), "append")):
            r = lake.write_dataframe(cfg, rows, contract, batch=batch, mode=mode, metadata=meta)
            tables[r.table] = r.version
    finally:
        ledger.unpersist()
    summary.tables = tables
    log.info("qna filter %s: kept %d of %d generated pairs (%.2f%%); report %s", tag, summary.kept, total,
             100 * summary.kept / total if total else 0.0, report)
    return FilterResult(summary, tag, funnel, reasons, hits, report, model_calls)


def _previous(cfg, batch, done: JobSummary, tag: str) -> FilterResult:
    done.tables[REJECTED.name] = lake.committed_version(cfg, REJECTED.name, batch)
    entry = lake.batch_commit(cfg, TELE_EVAL.name, batch)
    if entry is None:
        raise RuntimeError(f"{TELE_EVAL.name}: filtering {tag} is committed but its commit carries no summary")
    return FilterResult(done, tag, json.loads(entry["telelake.funnel"]), json.loads(entry["telelake.reasons"]),
                        json.loads(entry["telelake.regex_hits"]), entry["telelake.report"])
