"""Driver side of a lake write: one Delta transaction over the files the tasks wrote.

Idempotency: every commit carries an application transaction (app_id, version). Before doing
any work and again right before committing, the writer asks the table for
`transaction_version(app_id)`; a batch already committed is a no-op. (delta-rs accepts a commit
that reuses a pair and would duplicate the data, so the check is ours to make.)
"""
from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import (AddAction, CommitProperties, Transaction,
                                   create_table_with_add_actions)

from pipelines import failpoints
from pipelines.lake.storage import LakeConfig, table_uri
from schemas.contract import SchemaMismatchError, TableContract

log = logging.getLogger(__name__)

WriteMode = Literal["append", "overwrite"]
MAX_COMMIT_RETRIES = 50
CONFLICT_RETRIES = 20


@dataclass(frozen=True)
class Batch:
    """Identity of one job batch: committed at most once per table."""

    app_id: str
    version: int


@dataclass(frozen=True)
class CommitResult:
    table: str
    version: int
    files: int
    rows: int
    skipped: bool
    """True when the batch had already been committed: nothing was written this time."""


def open_table(cfg: LakeConfig, name: str, version: int | None = None) -> DeltaTable | None:
    """The Delta table `name` (at `version`), or None if it does not exist yet."""
    uri = table_uri(cfg, name)
    if not DeltaTable.is_deltatable(uri, storage_options=cfg.storage_options or None):
        return None
    return DeltaTable(uri, version=version, storage_options=cfg.storage_options or None)


def committed_version(cfg: LakeConfig, name: str, batch: Batch) -> int | None:
    """Table version if `batch` is already committed to `name`, else None."""
    dt = open_table(cfg, name)
    if dt is None:
        return None
    done = dt.transaction_version(batch.app_id)
    return dt.version() if done is not None and done >= batch.version else None


def check_table_schema(dt: DeltaTable, contract: TableContract) -> None:
    """Refuse to write to a table whose schema or partitioning differs from its contract."""
    want = json.loads(Schema.from_arrow(contract.schema).to_json())
    have = json.loads(dt.schema().to_json())
    problems = []
    want_fields = {f["name"]: f["type"] for f in want["fields"]}
    have_fields = {f["name"]: f["type"] for f in have["fields"]}
    for name, typ in want_fields.items():
        if name not in have_fields:
            problems.append(f"column {name!r} missing from the table")
        elif have_fields[name] != typ:
            problems.append(f"column {name!r} is {have_fields[name]} in the table, contract says {typ}")
    for name in have_fields.keys() - want_fields.keys():
        problems.append(f"table has column {name!r} that the contract lacks")
    parts = list(dt.metadata().partition_columns)
    if parts != list(contract.partition_by):
        problems.append(f"table is partitioned by {parts}, contract says {list(contract.partition_by)}")
    if problems:
        raise SchemaMismatchError(
            f"table {contract.name} at {dt.table_uri} does not match its contract in schemas/: "
            + "; ".join(problems)
            + ". Write to a new table, or migrate this one (overwrite it with the new schema).")


def commit_files(cfg: LakeConfig, contract: TableContract, files: Sequence[dict], *,
                 mode: WriteMode, batch: Batch, metadata: dict[str, str] | None = None) -> CommitResult:
    """Commit `files` (records from the sink) to the table in one transaction."""
    files = [f for f in files if f["table"] == contract.name]
    rows = sum(f["num_records"] for f in files)
    uri = table_uri(cfg, contract.name)
    actions = [AddAction(f["path"], f["size"], json.loads(f["partition_values"]),
                         f["modification_time"], True, f["stats"]) for f in files]
    props = CommitProperties(
        custom_metadata={"telelake.app_id": batch.app_id, "telelake.batch_version": str(batch.version),
                         **(metadata or {})},
        app_transactions=[Transaction(batch.app_id, batch.version)],
        max_commit_retries=MAX_COMMIT_RETRIES,
    )
    storage = cfg.storage_options or None
    dt = open_table(cfg, contract.name)
    if dt is None:
        try:
            failpoints.hit("lake.during_commit")
            create_table_with_add_actions(
                uri, Schema.from_arrow(contract.schema), actions, mode="error",
                partition_by=list(contract.partition_by) or None, name=contract.name,
                description=contract.description, storage_options=storage, commit_properties=props)
            return _result(cfg, contract, batch, len(files), rows, skipped=False)
        except DeltaError as exc:
            dt = open_table(cfg, contract.name)
            if dt is None:  # not a lost creation race: a real failure
                raise
            log.info("table %s was created concurrently (%s); appending instead", contract.name, exc)
    for attempt in range(CONFLICT_RETRIES):
        check_table_schema(dt, contract)
        done = dt.transaction_version(batch.app_id)
        if done is not None and done >= batch.version:
            log.info("%s: batch %s v%d already committed; nothing to do", contract.name, batch.app_id, batch.version)
            return CommitResult(contract.name, dt.version(), 0, 0, skipped=True)
        failpoints.hit("lake.during_commit")
        try:
            dt.create_write_transaction(actions, mode, contract.schema,
                                        partition_by=list(contract.partition_by) or None, commit_properties=props)
            return _result(cfg, contract, batch, len(files), rows, skipped=False)
        except CommitFailedError as exc:
            # delta-rs retries plain append races itself; a conflict it will not resolve (e.g. a
            # racing table creation that changed metadata) is retried here from a fresh snapshot,
            # after the idempotency check above, so a batch never lands twice.
            log.warning("%s: commit conflict (%s); retry %d/%d", contract.name, exc, attempt + 1, CONFLICT_RETRIES)
            time.sleep(random.uniform(0.05, 0.5) * (attempt + 1))
            dt = open_table(cfg, contract.name)
    raise CommitFailedError(f"{contract.name}: gave up after {CONFLICT_RETRIES} conflicting commits")


def _result(cfg: LakeConfig, contract: TableContract, batch: Batch, files: int, rows: int,
            skipped: bool) -> CommitResult:
    dt = open_table(cfg, contract.name)
    version = dt.version()
    # The version our transaction landed in (others may have committed after it).
    for entry in dt.history(limit=MAX_COMMIT_RETRIES + 10):
        if entry.get("telelake.app_id") == batch.app_id and \
                entry.get("telelake.batch_version") == str(batch.version):
            version = entry["version"]
            break
    return CommitResult(contract.name, version, files, rows, skipped)
