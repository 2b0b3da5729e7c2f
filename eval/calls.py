"""Model calls of the evaluations, through the batch LLM stage and a result store.

An evaluation sends REQUEST_SCHEMA rows (`pipelines.llm.requests.request_row`) for one model through a
`ModelCalls` and gets each key's output back; requests already in the store cost nothing, so a rerun,
or a report over models evaluated before, asks only for what is new. Two stores, one contract:

- `LakeCalls`: Spark tasks answer the requests and `silver.llm_results` keeps them (a machine with the
  lake's stack: the jobs' default);
- `LocalCalls`: this process answers them and a folder of Parquet files keeps them
  (`pipelines/llm/local_store.py`): a GPU node with the training stack alone, no Spark or delta-rs.

`model_calls` chooses by `eval.results` (auto: the lake where pyspark and deltalake import).
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import replace
from pathlib import Path
from typing import Literal, Protocol

import pyarrow as pa

from pipelines import lake
from pipelines.llm.backend import BackendConfig
from pipelines.llm.models import ModelSpec, ResolvedModel
from pipelines.llm.requests import REQUEST_SCHEMA, RunSpec

log = logging.getLogger(__name__)

Outputs = dict[str, tuple[str | None, str | None]]
"""key → (output JSON, None) or (None, error)."""


class EvalInputError(ValueError):
    """The items to evaluate are missing or empty."""


class ModelCalls(Protocol):
    where: str
    """Where the results are kept (a table name or a folder), for the console."""

    def run(self, rows: list[dict], model: ResolvedModel, prompt_version: str, backend: BackendConfig,
            run: RunSpec) -> Outputs:
        """key → (output JSON, None) or (None, error) for every row."""


class LakeCalls:
    """Requests answered in Spark tasks, results in the lake's `silver.llm_results`."""

    def __init__(self, spark, cfg: lake.LakeConfig) -> None:
        self.spark, self.cfg = spark, cfg
        self.where = "silver.llm_results"

    def run(self, rows: list[dict], model: ResolvedModel, prompt_version: str, backend: BackendConfig,
            run: RunSpec) -> Outputs:
        from pipelines.lake.spark_types import spark_schema
        from pipelines.llm.runner import run_requests, stored_results

        if not rows:
            return {}
        spark = self.spark
        table = pa.Table.from_pylist(rows, schema=REQUEST_SCHEMA)
        requests = spark.createDataFrame(table.to_pandas(), spark_schema(REQUEST_SCHEMA))
        run_requests(spark, self.cfg, requests, _served(backend, model), run, model=model.name,
                     revision=model.revision, prompt_version=prompt_version)
        want = spark.createDataFrame([(k,) for k in {r["key"] for r in rows}], "key string")
        stored = {r["key"]: (r["output"], r["store_error"])
                  for r in want.join(stored_results(spark, self.cfg), "key", "left").collect()}
        return _per_row(rows, stored)


class LocalCalls:
    """Requests answered in this process, results in Parquet files under `folder`."""

    def __init__(self, folder: str | Path) -> None:
        from pipelines.llm.local_store import FolderStore

        self.store = FolderStore(folder)
        self.where = str(folder)

    def run(self, rows: list[dict], model: ResolvedModel, prompt_version: str, backend: BackendConfig,
            run: RunSpec) -> Outputs:
        from pipelines.llm.local_store import run_in_process

        if not rows:
            return {}
        run_in_process(self.store, rows, _served(backend, model), run, model=model.name, revision=model.revision,
                       prompt_version=prompt_version)
        return _per_row(rows, self.store.results({r["key"] for r in rows}))


def lake_stack_present() -> bool:
    """Whether this machine can run Spark jobs on the lake (pyspark and delta-rs are installed)."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("pyspark", "deltalake"))
    except ImportError:  # a broken or blocked package
        return False


def model_calls(results: Literal["auto", "lake", "local"], *, spark_factory, cfg: lake.LakeConfig,
                folder: str | Path) -> ModelCalls:
    """The result store an evaluation uses: `lake` (Spark, silver.llm_results), `local` (this process,
    `folder`) or `auto` (the lake where its stack is installed, else local)."""
    if results == "auto":
        results = "lake" if lake_stack_present() else "local"
        if results == "local":
            log.info("eval: pyspark or deltalake is not installed: requests run in this process, results in %s",
                     folder)
    if results == "lake":
        return LakeCalls(spark_factory(), cfg)
    if results == "local":
        return LocalCalls(folder)
    raise ValueError(f"eval.results {results!r}: auto, lake or local")


def _served(backend: BackendConfig, model: ResolvedModel) -> BackendConfig:
    return replace(backend, model=ModelSpec(path=model.path, revision=model.revision))


def _per_row(rows: list[dict], stored: Outputs) -> Outputs:
    return {r["key"]: (None, r["error"]) if r["error"] else stored.get(r["key"], (None, "no_result")) for r in rows}


def seeded_sample(items: list, limit: int | None, seed) -> list:
    """`limit` of `items` drawn with `seed` (an int or a sequence of ints), in their original order;
    all of them when limit is None or not smaller."""
    import numpy as np

    if not limit or limit >= len(items):
        return items
    pick = np.random.default_rng(seed).choice(len(items), limit, replace=False)
    return [items[i] for i in sorted(pick)]


def safe_name(name: str) -> str:
    """A model's name as a folder name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
