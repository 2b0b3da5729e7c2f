"""Ingest raw source files: arXiv LaTeX sources and 3GPP Word files → bronze.<source>_sources.

One input path is one arXiv source (.tar.gz, .tgz, .tar, a gzipped single file, a .tex, or a
folder holding .tex files and no archives); any other folder is searched for sources: each archive,
.gz or .tex file in it is one source, each subfolder is looked at the same way. For
3GPP, every .zip/.doc/.docx under the paths is read; a .zip yields each Word document inside.
Extraction is safe and bounded (pipelines/latex/archive.py, pipelines/standards/package.py);
a refused input goes to quarantine.rejected with the reason and where it was. arXiv metadata
(id, title, abstract, categories) comes from an optional JSONL or Parquet listing, matched by id.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import orjson
import pyarrow as pa
import pyarrow.dataset as pads
from pyspark import StorageLevel
from pyspark.sql import functions as F

from pipelines import lake
from pipelines.ingest.inputs import InputFile, NoInputError, fingerprint, remote_files
from pipelines.ingest.records import reject_id
from pipelines.ingest.stage import finished, previous_summary, write_parsed
from pipelines.lake.spark_types import spark_schema
from pipelines.ingest.readers.common import open_binary
from pipelines.lake.storage import is_remote
from pipelines.latex.archive import ArchiveRefused, ExtractLimits, Source, read_source, read_source_bytes
from pipelines.standards.package import read_standard_bytes
from pipelines.standards.spec_meta import from_file_name
from pipelines.summary import JobSummary
from schemas import sources_contract
from schemas.sources import FILE_TYPE

log = logging.getLogger(__name__)
Kind = Literal["arxiv", "standards"]
ARXIV_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".gz", ".tex")
STANDARD_SUFFIXES = (".zip", ".doc", ".docx")
TEXT_SUFFIXES = (".tex", ".ltx", ".latex", ".bbl", ".bib", ".sty", ".cls", ".txt", ".def", ".cfg", ".clo",
                 ".bst", ".bbx", ".cbx", ".tikz")
MAX_RAW = 4096


@dataclass(frozen=True, kw_only=True)
class SourcesSpec:
    source: str
    """Table bronze.<source>_sources."""
    kind: Kind
    paths: list[str]
    listing: str | None = None
    """arXiv only: JSONL or Parquet with `id` and any of title, abstract, categories, authors, doi."""
    limits: ExtractLimits = field(default_factory=ExtractLimits)

    @property
    def category(self) -> str:
        return "arxiv" if self.kind == "arxiv" else "standard"


PARSED = pa.schema([
    ("kind", pa.string()), ("source_file", pa.string()), ("source_location", pa.string()), ("ordinal", pa.int64()),
    ("doc_id", pa.string()), ("category", pa.string()), ("source_id", pa.string()), ("url", pa.string()),
    ("title", pa.string()), ("abstract", pa.string()), ("files", pa.list_(FILE_TYPE)),
    ("skipped", pa.list_(pa.string())), ("total_bytes", pa.int64()), ("metadata", pa.string()),
    ("reject_id", pa.string()), ("reason", pa.string()), ("detail", pa.string()), ("raw", pa.binary()),
    ("raw_bytes", pa.int64()), ("raw_truncated", pa.bool_()),
])
JOB = "ingest_sources"


def list_sources(spec: SourcesSpec, storage_options: dict[str, str]) -> list[InputFile]:
    """The inputs, one per source (arXiv) or per Word/zip file (3GPP), sorted by path."""
    suffixes = ARXIV_SUFFIXES if spec.kind == "arxiv" else STANDARD_SUFFIXES
    found: dict[str, InputFile] = {}
    for p in spec.paths:
        if is_remote(p):  # object stores hold archives and Word files; source folders are local
            found.update((f.path, f) for f in remote_files(p, storage_options, suffixes))
        elif os.path.isfile(p):
            _add(found, p)
        elif os.path.isdir(p):
            _walk(p, spec.kind, suffixes, found)
    if not found:
        raise NoInputError(f"no {spec.kind} sources ({', '.join(suffixes)}"
                           f"{' or folders with .tex files' if spec.kind == 'arxiv' else ''}) under {spec.paths}; "
                           "check `paths` in the conf")
    return sorted(found.values(), key=lambda f: f.path)


def _walk(folder: str, kind: Kind, suffixes: tuple[str, ...], found: dict) -> None:
    names = sorted(n for n in os.listdir(folder) if not n.startswith(".") and n not in ("_delta_log", "_telelake"))
    archives = (".tar.gz", ".tgz", ".tar", ".gz")
    if kind == "arxiv" and any(n.lower().endswith((".tex", ".ltx")) for n in names) and \
            not any(n.lower().endswith(archives) for n in names):
        _add(found, folder)  # a source folder: .tex files and no archives beside them
        return
    for n in names:
        full = os.path.join(folder, n)
        if os.path.isdir(full) and not os.path.islink(full):
            _walk(full, kind, suffixes, found)
        elif os.path.isfile(full) and n.lower().endswith(suffixes):
            _add(found, full)


def _add(found: dict, path: str) -> None:
    path = os.path.abspath(path)
    if os.path.isdir(path):  # a source folder: its files' total size and newest change, in one walk
        stats = [os.stat(os.path.join(r, n)) for r, _, ns in os.walk(path) for n in ns]
        size, mtime = sum(st.st_size for st in stats), max((st.st_mtime_ns for st in stats), default=0)
    else:
        st = os.stat(path)
        size, mtime = st.st_size, st.st_mtime_ns
    found[path] = InputFile(path, size, mtime)


def arxiv_id(path: str) -> str:
    """The arXiv id a source is named after: 2411.01234v2.tar.gz → 2411.01234v2; hep-th9901001 → hep-th/9901001."""
    name = posixpath.basename(path.rstrip("/"))
    for suffix in (".tar.gz", ".tgz", ".tar", ".gz", ".tex"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    m = re.fullmatch(r"([a-z-]+(?:\.[A-Z]{2})?)(\d{7}(?:v\d+)?)", name)
    return f"{m.group(1)}/{m.group(2)}" if m else name


def _versionless(arxiv: str) -> str:
    return re.sub(r"v\d+$", "", arxiv)


def read_listing(path: str, ids: set[str]) -> dict[str, dict]:
    """Listing rows whose id (version stripped) is among `ids`; read in batches, not held whole."""
    fmt = "parquet" if path.endswith(".parquet") or os.path.isdir(path) else "json"
    dataset = pads.dataset(path, format=fmt)
    if "id" not in dataset.schema.names:
        raise ValueError(f"arXiv listing {path} has no `id` column (columns: {dataset.schema.names})")
    wanted = {_versionless(i) for i in ids}
    out: dict[str, dict] = {}
    for batch in dataset.to_batches():
        for row in batch.to_pylist():
            key = _versionless(str(row.get("id") or ""))
            if key in wanted:
                out[key] = {k: v for k, v in row.items() if v is not None}
    return out


@dataclass(frozen=True, kw_only=True)
class _TaskSpec:
    source: str
    kind: Kind
    category: str
    limits: ExtractLimits
    listing: dict[str, dict]
    storage_options: dict[str, str]


def _read_bytes(path: str, storage_options: dict[str, str]) -> bytes:
    with open_binary(path, storage_options) as fh:  # as stored: a .gz stays compressed
        return fh.read()


def _source_doc_id(source: str, files: list[dict]) -> str:
    h = hashlib.sha256(source.encode())
    for f in files:
        h.update(b"\x00" + f["path"].encode() + b"\x00" + hashlib.sha256(f["data"]).digest())
    return h.hexdigest()[:32]


def parse_path(spec: _TaskSpec, path: str) -> list[dict]:
    """Rows (kind doc | reject) for one input path. Never raises: failures become reject rows."""
    base = {c: None for c in PARSED.names}
    data = b""
    try:
        if spec.kind == "arxiv":
            src = read_source(path, spec.limits) if os.path.isdir(path) else \
                read_source_bytes(data := _read_bytes(path, spec.storage_options), path, spec.limits)
            return [{**base, **_arxiv_row(spec, path, src)}]
        data = _read_bytes(path, spec.storage_options)
        words = read_standard_bytes(data, path, spec.limits)
        return [{**base, **_standard_row(spec, path, w, i, multi=len(words) > 1)} for i, w in enumerate(words)]
    except ArchiveRefused as exc:
        reason, detail = exc.reason, exc.detail
    except Exception as exc:  # an I/O failure or a reader bug must not lose the input silently
        reason, detail = "unreadable_file", f"{type(exc).__name__}: {exc}"
    return [{**base, "kind": "reject", "source_file": path, "source_location": "file", "ordinal": 0,
             "reject_id": reject_id(JOB, path, "file"), "reason": reason, "detail": detail,
             "raw": data[:MAX_RAW], "raw_bytes": len(data), "raw_truncated": len(data) > MAX_RAW}]


def _arxiv_row(spec: _TaskSpec, path: str, src: Source) -> dict:
    files, skipped = [], list(src.skipped)
    for p, b in sorted(src.files.items()):
        if p.lower().endswith(TEXT_SUFFIXES):
            files.append({"path": p, "data": b})
        else:
            skipped.append(f"{p} (not a text file: {len(b):,} bytes)")
    if not any(f["path"].lower().endswith((".tex", ".ltx", ".latex")) for f in files):
        raise ArchiveRefused("no_latex", f"no .tex file among {len(src.files)} files ({sorted(src.files)[:5]})")
    aid = arxiv_id(path)
    listing = spec.listing.get(_versionless(aid), {})
    meta = {"arxiv_id": aid, "archive": src.kind, **{k: v for k, v in listing.items() if k != "id"}}
    return {"kind": "doc", "source_file": path, "source_location": "file", "ordinal": 0,
            "doc_id": _source_doc_id(spec.source, files), "category": spec.category, "source_id": aid,
            "url": f"https://arxiv.org/abs/{_versionless(aid)}", "title": listing.get("title"),
            "abstract": listing.get("abstract"), "files": files, "skipped": skipped,
            "total_bytes": sum(len(f["data"]) for f in files),
            "metadata": orjson.dumps(meta, default=str, option=orjson.OPT_SORT_KEYS).decode()}


def _standard_row(spec: _TaskSpec, path: str, word, ordinal: int, multi: bool) -> dict:
    meta = from_file_name(word.name)
    files = [{"path": word.name, "data": word.data}]
    return {"kind": "doc", "source_file": path, "source_location": f"member={word.name}" if multi or
            not path.endswith(word.name) else "file", "ordinal": ordinal,
            "doc_id": _source_doc_id(spec.source, files), "category": spec.category, "source_id": meta.source_id,
            "url": None, "title": None, "abstract": None, "files": files, "skipped": [],
            "total_bytes": len(word.data),
            "metadata": orjson.dumps({**meta.to_dict(), "word_format": word.kind}, option=orjson.OPT_SORT_KEYS).decode()}


def _parse_fn(spec: _TaskSpec):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            for path in b.column("path").to_pylist():
                yield pa.RecordBatch.from_pylist(parse_path(spec, path), schema=PARSED)
    return run


def run_sources_ingest(spark, cfg: lake.LakeConfig, spec: SourcesSpec, config_json: str = "{}") -> JobSummary:
    inputs = list_sources(spec, cfg.storage_options)
    limits = spec.limits
    fp = fingerprint(inputs, spec.source, spec.kind, spec.listing or "", json.dumps(limits.__dict__))
    batch = lake.Batch(app_id=f"telelake.{JOB}.{spec.source}.{fp}", version=1)
    bronze = sources_contract(spec.source)
    done = previous_summary(cfg, bronze.name, batch)
    if finished(cfg, done, batch):
        return done
    listing = {}
    if spec.kind == "arxiv" and spec.listing:
        listing = read_listing(spec.listing, {arxiv_id(f.path) for f in inputs})
    log.info("ingest %s (%s): %d inputs, %s bytes, %d listing matches, batch %s", spec.source, spec.kind,
             len(inputs), f"{sum(f.size for f in inputs):,}", len(listing), batch.app_id)
    task = _TaskSpec(source=spec.source, kind=spec.kind, category=spec.category, limits=limits, listing=listing,
                     storage_options=dict(cfg.storage_options))
    paths = spark.sparkContext.parallelize([(f.path,) for f in inputs], max(1, min(len(inputs), 4 * spark.sparkContext.defaultParallelism)))
    parsed = (spark.createDataFrame(paths, "path string").mapInArrow(_parse_fn(task), spark_schema(PARSED))
              .persist(StorageLevel.MEMORY_AND_DISK))
    columns = ["doc_id", F.lit(spec.source).alias("source"), "category", "source_id", "url", "title", "abstract",
               "files", "skipped", "total_bytes", "metadata", "source_file", "source_location"]
    try:
        return write_parsed(spark, cfg, JOB, spec.source, bronze, batch, parsed, columns, config_json,
                            bronze_summary=done)
    finally:
        parsed.unpersist()

