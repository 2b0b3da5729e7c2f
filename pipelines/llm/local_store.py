"""A result store in a folder, and LLM requests answered in this process: the LLM stage without Spark.

The contract is `silver.llm_results`' (schemas.LLM_RESULTS): one row per request, keyed by what produced
it; a key stored as a success (or as an error, unless `retry_errors`) costs no model call, and a later
success wins over an earlier error. Results are committed every `commit_every` requests as one Parquet
file, written under a temporary name and renamed into place: a killed run loses at most the chunk in
flight, and a reader never sees half a file. An evaluation node that holds the training stack but no
Spark or delta-rs (`telelake eval` on a GPU machine) keeps its results here; `telelake eval` on a
machine with Spark uses the lake's table.
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.llm.backend import BackendConfig
from pipelines.llm.requests import REQUEST_SCHEMA, RunSpec, RunStats, answer, worker_backend
from schemas.llm import LLM_RESULTS

log = logging.getLogger(__name__)

PART = "part-{:06d}-{}.parquet"


class FolderStore:
    """Result rows in Parquet files under `folder` (created on the first write). The results are kept in
    memory and a read opens only the files it has not seen (those another process added since)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._seen: set[str] = set()
        self._results: dict[str, tuple[str | None, str | None]] = {}

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet")) if self.folder.is_dir() else []

    def results(self, keys: set[str] | None = None) -> dict[str, tuple[str | None, str | None]]:
        """key → (output, error) of the stored keys (among `keys`), a success over an earlier error."""
        for f in self.files():
            if f.name not in self._seen:
                t = pq.read_table(f, columns=["key", "output", "error"], schema=LLM_RESULTS.schema)
                self._merge(f.name, zip(*(t[c].to_pylist() for c in ("key", "output", "error"))))
        if keys is None:
            return dict(self._results)
        return {k: self._results[k] for k in keys if k in self._results}

    def append(self, rows: list[dict]) -> Path:
        """Commit result rows as one new file (temporary name, fsync, rename)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(rows, schema=LLM_RESULTS.schema)
        path = self.folder / PART.format(len(self.files()), uuid.uuid4().hex[:8])
        tmp = self.folder / f".{path.name}.tmp"
        pq.write_table(table, tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        tmp.rename(path)
        self._merge(path.name, ((r["key"], r["output"], r["error"]) for r in rows))
        return path

    def _merge(self, name: str, rows) -> None:
        self._seen.add(name)
        for key, output, error in rows:
            held = self._results.get(key)
            if held is None or (held[1] is not None and error is None):
                self._results[key] = (output, error)


def run_in_process(store: FolderStore, requests: list[dict], backend_cfg: BackendConfig, spec: RunSpec, *,
                   model: str, revision: str, prompt_version: str, progress=None) -> RunStats:
    """Answer the requests (REQUEST_SCHEMA rows) not yet in `store` with this process's backend,
    `spec.commit_every` per commit."""
    t0 = time.perf_counter()
    stats = RunStats()
    unique = list({r["key"]: {k: r.get(k) for k in REQUEST_SCHEMA.names} for r in requests}.values())
    stats.requests = len(unique)
    stored = store.results({r["key"] for r in unique})
    pending = [r for r in unique if r["key"] not in stored or (spec.retry_errors and stored[r["key"]][1] is not None)]
    pending.sort(key=lambda r: r["key"])
    stats.cached = stats.requests - len(pending)
    stats.model_calls = sum(1 for r in pending if not r["error"])
    if not pending:
        stats.errors = _errors(store, unique)
        stats.seconds = time.perf_counter() - t0
        return stats
    every = max(1, spec.commit_every)
    stats.chunks = -(-len(pending) // every)
    log.info("llm: %d requests, %d already in %s; %d to run in %d commits", stats.requests, stats.cached,
             store.folder, len(pending), stats.chunks)
    backend = worker_backend(backend_cfg) if stats.model_calls else None
    task = progress.add_task(f"llm {prompt_version}", total=len(pending)) if progress else None
    for start in range(0, len(pending), every):
        chunk = pending[start:start + every]
        rows = answer(backend, chunk, model, revision, prompt_version)
        store.append(rows)
        if progress:
            progress.advance(task, len(chunk))
    stats.errors = _errors(store, unique)
    stats.seconds = time.perf_counter() - t0
    return stats


def _errors(store: FolderStore, requests: list[dict]) -> int:
    """Requests whose stored result is an error."""
    return sum(1 for _, error in store.results({r["key"] for r in requests}).values() if error is not None)
