"""The data files of a released table version: list with size and sha256, verify, read back.

A manifest names every Parquet file of every table version it releases (path relative to the table
folder, size, sha256, rows, partition values). Readers of a release go through this list, not the
Delta log, so a release stays readable after log cleanup, and `verify` can tell exactly which file
changed or went missing.
"""
from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from pipelines import lake
from pipelines.lake.read import partition_expression, plain_type
from pipelines.lake.storage import LakeConfig, filesystem, table_uri
from schemas import contract_for

CHUNK = 8 << 20


def sha256(fs: pafs.FileSystem, path: str) -> str:
    h = hashlib.sha256()
    with fs.open_input_stream(path) as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def table_files(cfg: LakeConfig, name: str, version: int, threads: int = 4) -> list[dict]:
    """path, size, sha256, rows, partition_values of every data file of `name` at `version`."""
    base = table_uri(cfg, name)
    files = lake.data_files(cfg, name, version=version)
    fs, _ = filesystem(base, cfg.storage_options)

    def entry(f: dict) -> dict:
        _, path = filesystem(f["uri"], cfg.storage_options)
        return {"path": f["uri"][len(base) + 1:], "size": fs.get_file_info(path).size, "sha256": sha256(fs, path),
                "rows": f["num_records"], "partition_values": json.loads(f["partition_values"])}

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(entry, files))


def verify_files(cfg: LakeConfig, name: str, files: list[dict]) -> list[str]:
    """Problems with the released files of table `name`: missing, size changed, content changed."""
    base = table_uri(cfg, name)
    fs, root = filesystem(base, cfg.storage_options)
    problems = []
    for f in files:
        path = f"{root}/{f['path']}"
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            problems.append(f"{name}: file {f['path']} is missing")
        elif info.size != f["size"]:
            problems.append(f"{name}: file {f['path']} is {info.size:,} bytes, released as {f['size']:,}")
        elif sha256(fs, path) != f["sha256"]:
            problems.append(f"{name}: file {f['path']} changed (sha256 differs from the manifest)")
    return problems


def release_dataset(cfg: LakeConfig, name: str, files: list[dict]) -> pads.Dataset:
    """A pyarrow Dataset over exactly the released files of table `name`."""
    schema = pa.schema([pa.field(f.name, plain_type(f.type), f.nullable) for f in contract_for(name).schema])
    if not files:
        return pads.dataset(pa.table({f.name: pa.array([], f.type) for f in schema}, schema=schema))
    fs, root = filesystem(table_uri(cfg, name), cfg.storage_options)
    return pads.FileSystemDataset.from_paths(
        [f"{root}/{f['path']}" for f in files], schema=schema, format=pads.ParquetFileFormat(), filesystem=fs,
        partitions=[partition_expression(schema, f["partition_values"]) for f in files])
