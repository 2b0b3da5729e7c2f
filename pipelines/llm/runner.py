"""Run LLM requests inside Spark tasks, committing results to the store in atomic chunks.

Each Python worker loads the model once and keeps it for every batch and chunk of the job
(`worker_backend`). Requests whose key is already in `silver.llm_results` are skipped, so a
resumed or repeated run makes no model call for finished work. Failures are recorded per request.
"""
from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import functions as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipelines import failpoints, lake
from pipelines.lake.spark_types import spark_schema
from pipelines.llm.backend import BackendConfig
from pipelines.llm.requests import REQUEST_SCHEMA, RunSpec, RunStats, answer, worker_backend
from schemas import LLM_RESULTS

log = logging.getLogger(__name__)

def stored_results(spark, cfg: lake.LakeConfig):
    """(key, output, store_error) with one row per key of the result store: a success over an
    earlier error (retry_errors appends the retry)."""
    return (lake.read_spark(spark, cfg, LLM_RESULTS.name, columns=["key", "output", "error"])
            .withColumn("_ok", F.col("error").isNull().cast("int")).groupBy("key")
            .agg(F.max_by("output", "_ok").alias("output"), F.max_by("error", "_ok").alias("store_error")))


def infer_fn(cfg: BackendConfig, model: str, revision: str, prompt_version: str) -> Callable:
    """mapInArrow function: requests → result-store rows."""

    def run(batches):
        for batch in batches:
            rows = batch.to_pylist()
            if rows:
                yield pa.RecordBatch.from_pylist(answer(worker_backend(cfg), rows, model, revision, prompt_version),
                                                 schema=LLM_RESULTS.schema)

    return run


def run_requests(spark, cfg: lake.LakeConfig, requests, backend_cfg: BackendConfig, spec: RunSpec, *,
                 model: str, revision: str, prompt_version: str) -> RunStats:
    """Send the requests not yet in the store, `spec.commit_every` per commit."""
    t0 = time.perf_counter()
    stats = RunStats()
    requests = requests.select(*REQUEST_SCHEMA.names).dropDuplicates(["key"])
    store = lake.open_table(cfg, LLM_RESULTS.name)
    pending = requests
    if store is not None:
        done = lake.read_spark(spark, cfg, LLM_RESULTS.name, columns=["key", "error"])
        if spec.retry_errors:
            done = done.where(F.col("error").isNull())
        pending = requests.join(done.select("key"), "key", "left_anti")
    pending = pending.persist(StorageLevel.DISK_ONLY)
    stats.requests = requests.count()
    n = pending.count()
    stats.cached = stats.requests - n
    stats.model_calls = pending.where(F.col("error").isNull()).count()
    if n == 0:
        pending.unpersist()
        stats.seconds = time.perf_counter() - t0
        return stats
    stats.chunks = math.ceil(n / spec.commit_every)
    # Exactly `commit_every` requests per chunk, in key order (zipWithIndex numbers rows across
    # partitions without collecting them on the driver).
    every = spec.commit_every
    chunk_of = (pending.select("key").orderBy("key").rdd.zipWithIndex()
                .map(lambda pair: (pair[0]["key"], pair[1] // every)).toDF("key string, _chunk long"))
    chunked = pending.join(chunk_of, "key")
    run_id = uuid.uuid4().hex[:12]
    parallelism = spark.sparkContext.defaultParallelism
    fn = infer_fn(backend_cfg, model, revision, prompt_version)
    log.info("llm: %d requests, %d already in the store; %d to run in %d commits", stats.requests,
             stats.cached, n, stats.chunks)
    with Progress(TextColumn("llm {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True) as progress:
        bar = progress.add_task(prompt_version, total=n)
        for c in range(stats.chunks):
            chunk = chunked.where(F.col("_chunk") == c).drop("_chunk").repartition(parallelism)
            results = chunk.mapInArrow(fn, spark_schema(LLM_RESULTS.schema))
            res = lake.write_dataframe(cfg, results, LLM_RESULTS, batch=lake.Batch(f"telelake.llm.{run_id}", c + 1),
                                       metadata={"telelake.job": "llm", "telelake.model": model,
                                                 "telelake.model_revision": revision})
            progress.advance(bar, res.rows)
            failpoints.hit("llm.after_chunk")
    pending.unpersist()
    errors = lake.read_spark(spark, cfg, LLM_RESULTS.name, columns=["key", "error"]).where(F.col("error").isNotNull())
    stats.errors = errors.join(requests.select("key"), "key").count()
    stats.seconds = time.perf_counter() - t0
    return stats
