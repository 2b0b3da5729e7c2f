"""Model calls of the evaluations, through the batch LLM stage and its result store.

`run_model_requests` sends REQUEST_SCHEMA rows (`pipelines.llm.runner.request_row`) for one model with
Spark and returns each key's output: requests already in `silver.llm_results` cost nothing, so a
rerun, or a report over models evaluated before, asks only for what is new.
"""
from __future__ import annotations

from dataclasses import replace

import pyarrow as pa

from pipelines import lake
from pipelines.llm.backend import BackendConfig
from pipelines.llm.models import ModelSpec, ResolvedModel
from pipelines.llm.runner import REQUEST_SCHEMA, RunSpec, run_requests, stored_results


class EvalInputError(ValueError):
    """The items to evaluate are missing or empty."""


def run_model_requests(spark, cfg: lake.LakeConfig, rows: list[dict], model: ResolvedModel, prompt_version: str,
                       backend: BackendConfig, run: RunSpec) -> dict[str, tuple[str | None, str | None]]:
    """key → (output JSON, None) or (None, error) for every row."""
    from pipelines.lake.spark_types import spark_schema

    if not rows:
        return {}
    table = pa.Table.from_pylist(rows, schema=REQUEST_SCHEMA)
    requests = spark.createDataFrame(table.to_pandas(), spark_schema(REQUEST_SCHEMA))
    served = replace(backend, model=ModelSpec(path=model.path, revision=model.revision))
    run_requests(spark, cfg, requests, served, run, model=model.name, revision=model.revision,
                 prompt_version=prompt_version)
    want = spark.createDataFrame([(k,) for k in {r["key"] for r in rows}], "key string")
    stored = {r["key"]: (r["output"], r["store_error"])
              for r in want.join(stored_results(spark, cfg), "key", "left").collect()}
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
