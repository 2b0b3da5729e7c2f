"""Find a batch's input files and fingerprint them (the fingerprint names the batch)."""
from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass

import pyarrow.fs as pafs

from pipelines.lake.storage import filesystem, is_remote

EXTENSIONS = {
    "parquet": (".parquet",),
    "jsonl": (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.zst", ".json.zst", ".jsonl.zstd"),
    "warc": (".warc", ".warc.gz", ".wet", ".wet.gz", ".arc", ".arc.gz"),
}


class NoInputError(FileNotFoundError):
    """The configured paths matched no input file."""


@dataclass(frozen=True)
class InputFile:
    path: str
    size: int
    mtime_ns: int


def extensions_for(fmt: str) -> tuple[str, ...]:
    return EXTENSIONS["parquet" if fmt.endswith("parquet") else "jsonl" if fmt.endswith("jsonl") else "warc"]


def list_inputs(paths: list[str], fmt: str, storage_options: dict[str, str]) -> list[InputFile]:
    """Files named by `paths` (files, folders searched recursively, or local globs), sorted."""
    exts = extensions_for(fmt)
    found: dict[str, InputFile] = {}
    for p in paths:
        if is_remote(p):
            found.update((f.path, f) for f in remote_files(p, storage_options, exts))
            continue
        matches = glob.glob(p, recursive=True) if any(c in p for c in "*?[") else [p]
        for m in matches:
            if os.path.isdir(m):
                for root, _, names in os.walk(m):
                    for n in names:
                        if n.endswith(exts) and not n.startswith("."):
                            _add_local(found, os.path.join(root, n))
            elif os.path.isfile(m):
                _add_local(found, m)
    if not found:
        raise NoInputError(f"no {fmt} input files (extensions {', '.join(exts)}) under {paths}; "
                           "check `paths` in the ingest conf")
    return sorted(found.values(), key=lambda f: f.path)


def list_source_inputs(sources: list[tuple[list[str], str]], storage_options: dict[str, str]
                       ) -> tuple[list[tuple[int, str]], list[InputFile]]:
    """For (paths, format) per configured source: ((source index, path) of every input file, the
    input files for the batch fingerprint)."""
    units, files = [], []
    for i, (paths, fmt) in enumerate(sources):
        found = list_inputs(paths, fmt, storage_options)
        units += [(i, f.path) for f in found]
        files += found
    return units, files


def remote_files(uri: str, storage_options: dict[str, str], suffixes: tuple[str, ...]) -> list[InputFile]:
    """The object at `uri`, or the objects below it whose name ends with one of `suffixes`."""
    fs, inner = filesystem(uri, storage_options)
    scheme = uri.split("://", 1)[0]
    info = fs.get_file_info(inner)
    infos = [info] if info.type == pafs.FileType.File else \
        fs.get_file_info(pafs.FileSelector(inner, recursive=True, allow_not_found=True))
    return [InputFile(f"{scheme}://{i.path}", i.size, i.mtime_ns or 0) for i in infos
            if i.type == pafs.FileType.File and (i.path == inner or i.path.lower().endswith(suffixes))
            and not any(part in i.path for part in _SKIP_PARTS)]


# Lake internals are never inputs, even when a lake sits under an input folder.
_SKIP_PARTS = ("/_delta_log/", "/_telelake/")


def _add_local(found: dict, path: str) -> None:
    path = os.path.abspath(path)
    if any(part in path for part in _SKIP_PARTS):
        return
    st = os.stat(path)
    found[path] = InputFile(path, st.st_size, st.st_mtime_ns)


def fingerprint(files: list[InputFile], *parts: str) -> str:
    """16-hex id of a batch: the input files (path, size, mtime) plus what shapes the output."""
    h = hashlib.sha256("\x00".join(parts).encode())
    for f in files:
        h.update(f"\x00{f.path}\x00{f.size}\x00{f.mtime_ns}".encode())
    return h.hexdigest()[:16]
