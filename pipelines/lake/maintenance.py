"""Table history, release pins and vacuum.

A pin says "version V of table T must stay readable" (releases pin the versions they publish).
Pins are small JSON files under <root>/_telelake/pins/<table>/, one per (version, holder), so
creating or removing one is a single atomic object write or delete on any storage.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

import pyarrow.fs as pafs

from urllib.parse import unquote

from pipelines.lake.read import TableNotFoundError, load
from pipelines.lake.storage import LakeConfig, filesystem, table_uri

log = logging.getLogger(__name__)

DEFAULT_RETENTION_HOURS = 168


@dataclass(frozen=True)
class Pin:
    table: str
    version: int
    holder: str
    pinned_at: str


def history(cfg: LakeConfig, name: str, limit: int | None = None) -> list[dict]:
    """Commits of the table, newest first: version, timestamp, operation, telelake metadata."""
    return load(cfg, name).history(limit)


def batch_commit(cfg: LakeConfig, name: str, batch) -> dict | None:
    """The history entry (version, telelake.* metadata) of the commit of `name` that wrote `batch`."""
    return next((e for e in history(cfg, name) if e.get("telelake.app_id") == batch.app_id), None)


def _pins_dir(cfg: LakeConfig, name: str) -> tuple[pafs.FileSystem, str]:
    fs, root = filesystem(cfg.root, cfg.storage_options)
    return fs, f"{root.rstrip('/')}/_telelake/pins/{name}"


def pin(cfg: LakeConfig, name: str, version: int, holder: str) -> Pin:
    """Protect `version` of table `name` from vacuum on behalf of `holder` (e.g. release:v1)."""
    table = load(cfg, name, version=version)  # fails clearly if the version does not exist
    del table
    safe_holder = holder.replace("/", "_")
    p = Pin(name, version, holder, dt.datetime.now(dt.timezone.utc).isoformat())
    fs, folder = _pins_dir(cfg, name)
    fs.create_dir(folder, recursive=True)
    with fs.open_output_stream(f"{folder}/{version:020d}__{safe_holder}.json") as out:
        out.write(json.dumps(p.__dict__).encode())
    return p


def unpin(cfg: LakeConfig, name: str, version: int, holder: str) -> bool:
    fs, folder = _pins_dir(cfg, name)
    path = f"{folder}/{version:020d}__{holder.replace('/', '_')}.json"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return False
    fs.delete_file(path)
    return True


def pins(cfg: LakeConfig, name: str) -> list[Pin]:
    fs, folder = _pins_dir(cfg, name)
    if fs.get_file_info(folder).type == pafs.FileType.NotFound:
        return []
    out = []
    for info in fs.get_file_info(pafs.FileSelector(folder)):
        if info.path.endswith(".json"):
            with fs.open_input_stream(info.path) as fh:
                out.append(Pin(**json.loads(fh.read())))
    return sorted(out, key=lambda p: (p.version, p.holder))


def vacuum(cfg: LakeConfig, name: str, *, retention_hours: int = DEFAULT_RETENTION_HOURS,
           dry_run: bool = False, protect: set[str] | None = None) -> list[str]:
    """Delete files no version within the retention window (nor any pinned version) needs.

    Runs delta-rs's full vacuum, which also finds files that were never committed (the Parquet
    files of a job killed before its commit). Files younger than the retention window are kept,
    so a job still writing is safe when the window exceeds its run time. `protect` (paths relative
    to the table folder, e.g. every file a release manifest names) is never deleted, even when the
    log entries of the version that added it are gone.
    """
    table = load(cfg, name)
    keep = []
    for v in sorted({p.version for p in pins(cfg, name)}):
        try:
            load(cfg, name, version=v)
            keep.append(v)
        except TableNotFoundError:  # its log entries were cleaned up: `protect` carries its files
            log.warning("vacuum %s: pinned version %d can no longer be loaded; keeping the files named in `protect`",
                        name, v)
    def run(dry: bool) -> list[str]:
        return table.vacuum(retention_hours=retention_hours, dry_run=dry, enforce_retention_duration=False,
                            full=True, keep_versions=keep or None)

    if not protect:
        deleted = run(dry_run)
    else:
        # delta-rs cannot be told to spare files: list what it would delete, keep the protected ones,
        # delete the rest here (a path already gone is skipped).
        base = table_uri(cfg, name).rstrip("/") + "/"
        fs, root = filesystem(base, cfg.storage_options)
        deleted = []
        for c in run(True):
            rel = unquote(c.removeprefix(base)).strip("/")
            if not rel or rel in protect:
                continue
            if not dry_run:
                try:
                    fs.delete_file(f"{root}/{rel}")
                except FileNotFoundError:
                    continue
            deleted.append(rel)
    log.info("vacuum %s: %s %d files (retention %d h, pinned versions %s, %d protected files)", name,
             "would delete" if dry_run else "deleted", len(deleted), retention_hours, keep or "none",
             len(protect or ()))
    return sorted(deleted)


def cleanup_logs(cfg: LakeConfig, name: str, *, retention_hours: int = 720) -> int:
    """Checkpoint the table and delete log entries older than `retention_hours` (Delta's
    logRetentionDuration; 30 days by default). Older versions can then no longer be loaded through
    the log; released versions stay readable through their manifests, which list every file, and
    `vacuum(protect=…)` keeps those files. Returns the number of log files deleted."""
    table = load(cfg, name)
    table.alter.set_table_properties({"delta.logRetentionDuration": f"interval {retention_hours} hours"},
                                     raise_if_not_exists=False)
    table = load(cfg, name)
    table.create_checkpoint()
    deleted = table.cleanup_metadata()
    log.info("cleanup_logs %s: deleted %s log files older than %d h", name, deleted, retention_hours)
    return int(deleted or 0)
