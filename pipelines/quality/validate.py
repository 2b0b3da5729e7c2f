"""Run a gold table's suites with great-expectations and render Data Docs.

One file-mode GX project per validated table version (under the release being built): two
checkpoints, `<table>.rows` on the per-row profile and `<table>.table` on the aggregates, each
updating the project's Data Docs site. GX never reaches the network here: analytics are off and
nothing but local files is read or written.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipelines import lake
from pipelines.quality.datasets import Suite
from pipelines.quality.profile import table_profile
from schemas.contract import TableContract

log = logging.getLogger(__name__)
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 10}


@dataclass
class SuiteResult:
    suite: str
    table: str
    version: int
    success: bool
    evaluated: int
    failed: list[dict] = field(default_factory=list)
    data_docs: str = ""
    """index.html of the Data Docs site, relative to the folder the docs were written to."""
    seconds: float = 0.0

    def failed_lines(self) -> list[str]:
        out = []
        for f in self.failed:
            where = f" on {f['column']}" if f.get("column") else ""
            seen = f["observed_value"] if f.get("observed_value") is not None else \
                f"{f.get('unexpected_count')} unexpected, e.g. {f.get('partial_unexpected_list')}"
            out.append(f"{f['suite']}: {f['expectation']}{where} {f['kwargs']}: {seen}")
        return out

    def to_dict(self) -> dict:
        return {"suite": self.suite, "table": self.table, "version": self.version, "success": self.success,
                "evaluated": self.evaluated, "failed": self.failed, "data_docs": self.data_docs,
                "seconds": round(self.seconds, 2)}


def _gx():
    import great_expectations as gx  # ~3-7 s to import: only when a gate runs

    return gx


def run_suites(docs_dir: Path, name: str, frames: dict[str, tuple[pd.DataFrame, list]]) -> tuple[list[dict], int, str]:
    """Validate each frame (suite suffix → (frame, expectations)) in one GX project at `docs_dir`.
    Returns (failed expectations, number evaluated, Data Docs index path relative to docs_dir)."""
    gx = _gx()
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    docs_dir.mkdir(parents=True, exist_ok=True)
    ctx = gx.get_context(mode="file", project_root_dir=str(docs_dir))
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    ctx.variables.save()
    source = ctx.data_sources.add_or_update_pandas(name="telelake")
    failed, evaluated = [], 0
    for suffix, (frame, expectations) in frames.items():
        suite_name = f"{name}.{suffix}"
        asset = source.add_dataframe_asset(name=suite_name)
        batch = asset.add_batch_definition_whole_dataframe("whole")
        suite = ctx.suites.add_or_update(gx.ExpectationSuite(name=suite_name, expectations=expectations))
        vd = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(name=suite_name, data=batch, suite=suite))
        cp = ctx.checkpoints.add_or_update(gx.Checkpoint(name=suite_name, validation_definitions=[vd],
                                                         actions=[UpdateDataDocsAction(name="data_docs")],
                                                         result_format=RESULT_FORMAT))
        res = cp.run(batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=suite_name))
        for vr in res.run_results.values():
            evaluated += len(vr.results)
            for r in vr.results:
                if r.success:
                    continue
                c = r.expectation_config
                exc = r.exception_info or {}
                failed.append({
                    "suite": suite_name, "expectation": c.type, "column": c.kwargs.get("column"),
                    "kwargs": {k: v for k, v in c.kwargs.items() if k not in ("column", "batch_id")},
                    "observed_value": _plain(r.result.get("observed_value")),
                    "unexpected_count": r.result.get("unexpected_count"),
                    "partial_unexpected_list": _plain(r.result.get("partial_unexpected_list")),
                    "exception": exc.get("exception_message") if exc.get("raised_exception") else None})
    index = next(docs_dir.rglob("index.html"), None)
    return failed, evaluated, str(index.relative_to(docs_dir)) if index else ""


def _plain(value):
    """JSON-safe form of an observed value (numpy scalars, lists of them)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def validate_table(spark, cfg: lake.LakeConfig, contract: TableContract, version: int, suite: Suite,
                   docs_dir: Path, suite_name: str | None = None) -> tuple[SuiteResult, pd.DataFrame]:
    """Profile version `version` of the table (Spark), validate it (pandas), write Data Docs under
    `docs_dir`. Returns the result and the profile (for the release report)."""
    start = time.perf_counter()
    profile = table_profile(spark, cfg, contract, version, suite.profile_batch, suite.profile_schema)
    frames = {"rows": (profile, suite.rows), "table": (suite.aggregate(profile), suite.table)}
    failed, evaluated, index = run_suites(docs_dir, suite_name or contract.name, frames)
    result = SuiteResult(suite=suite_name or contract.name, table=contract.name, version=version,
                         success=not failed, evaluated=evaluated, failed=failed,
                         data_docs=index, seconds=time.perf_counter() - start)
    log.info("suite %s on %s v%d: %d/%d expectations passed in %.1f s", result.suite, contract.name, version,
             evaluated - len(failed), evaluated, result.seconds)
    return result, profile
