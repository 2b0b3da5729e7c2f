"""Clean stage: bronze.<source>_sources → silver.cleaned (+ quarantine.rejected), one idempotent batch.

Each row is cleaned in a Spark task: arXiv sources through the LaTeX pipeline, 3GPP Word files
through conversion and then the same pipeline. A document that cleans gets a verdict: keep when
every quality check is 0 and it is long enough, drop with the reason otherwise (the row stays, so
the decision can be revisited). A document that cannot be cleaned (no main file, a converter
failure, an unsafe part) goes to quarantine with the reason. Documents already cleaned under the
same rules versions are skipped, so a rerun cleans only what is new.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import functions as F

from pipelines import lake
from pipelines.ingest.parse import utc_now
from pipelines.ingest.records import reject_id
from pipelines.ingest.stage import anti_join_existing, finished, previous_summary
from pipelines.latex.archive import ArchiveRefused
from pipelines.latex.clean import CleanedLatex, clean_latex
from pipelines.latex.commands import DEFAULT_RULES as LATEX_RULES
from pipelines.latex.commands import CommandRules
from pipelines.latex.flatten import NoMainFile
from pipelines.standards.clean import DEFAULT_RULES as STANDARDS_RULES
from pipelines.standards.clean import ConvertLimits, StandardsRules, clean_standard
from pipelines.standards.convert import ConversionFailed, ConverterMissing, pandoc_path, soffice_path
from pipelines.standards.package import WordFile
from pipelines.summary import JobSummary
from schemas import CLEANED, REJECTED, sources_table

log = logging.getLogger(__name__)
JOB = "clean"


@dataclass(frozen=True, kw_only=True)
class CleanSpec:
    source: str
    """Reads bronze.<source>_sources."""
    kind: str
    """latex (arXiv sources) | standards (3GPP Word files)."""
    latex_rules: str = str(LATEX_RULES)
    standards_rules: str = str(STANDARDS_RULES)
    min_chars: int = 500
    """Shorter cleaned documents are dropped (too_short): a withdrawn paper, a cover-only spec."""
    convert: ConvertLimits = field(default_factory=ConvertLimits)

    def __post_init__(self) -> None:
        if self.kind not in ("latex", "standards"):
            raise ValueError(f"clean kind {self.kind!r}: latex or standards")


OUT = pa.schema([("kind", pa.string()), *[(f.name, f.type) for f in CLEANED.schema
                                         if f.name not in ("clean_batch", "cleaned_at")],
                 ("source_file", pa.string()), ("source_location", pa.string()), ("reject_id", pa.string()),
                 ("detail", pa.string())])


@dataclass(frozen=True)
class _Task:
    """What a Spark task needs: the spec, the rules (read once, on the driver), the ids to skip."""
    spec: CleanSpec
    latex: CommandRules
    standards: StandardsRules | None
    done: frozenset[str]

    @property
    def rules_version(self) -> str:
        return self.latex.version + (f"+{self.standards.version}" if self.standards else "")


def verdict(cleaned: CleanedLatex, min_chars: int) -> tuple[str, str]:
    failed = [k for k, v in cleaned.checks.items() if v]
    if failed:
        return "drop", "not_clean:" + ",".join(failed)
    if len(cleaned.text) < min_chars:
        return "drop", "too_short"
    return "keep", "clean"


def clean_row(row: dict, spec: CleanSpec, version: str, latex: CommandRules,
              standards: StandardsRules | None) -> dict:
    """One bronze source row → one output row (kind clean | reject). Never raises but for a missing
    converter (checked on the driver before the job starts)."""
    base = {n: None for n in OUT.names} | {k: row[k] for k in ("doc_id", "source", "category", "source_id",
                                                               "title", "source_file", "source_location")}
    files = {f["path"]: f["data"] for f in row["files"]}
    meta = json.loads(row["metadata"] or "{}")
    try:
        if spec.kind == "latex":
            cleaned = clean_latex(files, latex)
            record = {}
        else:
            [(name, data)] = files.items()
            std = clean_standard(WordFile(name, "doc" if name.lower().endswith(".doc") else "docx", data),
                                 standards, latex, spec.convert)
            cleaned = std.cleaned
            meta.update(std.meta.to_dict())
            base["source_id"] = std.meta.source_id
            base["title"] = std.meta.title or base["title"]
            record = {"sections_removed": std.prepared.removed_sections, "fields_removed": std.prepared.fields_removed,
                      "tables_removed": std.prepared.tables, "figures_removed": std.prepared.figures,
                      "converted_from_doc": std.converted_from_doc}
    except ConverterMissing:
        raise
    except (ArchiveRefused, ConversionFailed) as exc:
        return _reject(base, exc.reason, exc.detail)
    except NoMainFile as exc:
        return _reject(base, NoMainFile.reason, str(exc))
    except Exception as exc:  # a cleaner bug must not lose the document: quarantine it, with the error
        return _reject(base, "cleaning_failed", f"{type(exc).__name__}: {exc}")
    v, reason = verdict(cleaned, spec.min_chars)
    meta["cleaning"] = {"main": cleaned.main, "included": cleaned.included, "missing": cleaned.missing,
                        "cycles": cleaned.cycles, "macros_expanded": cleaned.macros,
                        "floats_removed": cleaned.floats_removed, "warnings": cleaned.warnings[:50], **record}
    return base | {"kind": "clean", "text": cleaned.text, "text_chars": len(cleaned.text), "verdict": v,
                   "reason": reason, "checks": cleaned.checks, "cited": cleaned.cited,
                   "bibliography": orjson.dumps(cleaned.bibliography).decode(),
                   "metadata": orjson.dumps(meta, default=str, option=orjson.OPT_SORT_KEYS).decode(),
                   "rules_version": version}


def _reject(base: dict, reason: str, detail: str) -> dict:
    location = f"doc_id={base['doc_id']}"
    return base | {"kind": "reject", "reason": reason, "detail": detail,
                   "reject_id": reject_id(JOB, base["source_file"], location), "source_location": location}


def _clean_fn(task: _Task):
    version = task.rules_version

    def run(batch: pa.RecordBatch) -> pa.RecordBatch | None:
        rows = [clean_row(r, task.spec, version, task.latex, task.standards)
                for r in batch.to_pylist() if r["doc_id"] not in task.done]
        return pa.RecordBatch.from_pylist(rows, schema=OUT) if rows else None

    return run


def _check_converters(cfg: lake.LakeConfig, source_table: str) -> None:
    """A missing converter is a set-up problem, not bad input: stop before any work, saying what to
    install, rather than quarantine every .doc (a rerun of the same batch would not retry them)."""
    try:
        pandoc_path()
        meta = lake.read_arrow(cfg, source_table, columns=["metadata"])["metadata"]
        if pc.any(pc.match_substring(meta, '"word_format":"doc"')).as_py():
            soffice_path()
    except ConverterMissing as exc:
        raise FileNotFoundError(f"{source_table} holds .doc files: {exc.detail}") from exc


def run_clean(spark, cfg: lake.LakeConfig, spec: CleanSpec, config_json: str = "{}") -> JobSummary:
    source_table = sources_table(spec.source)
    source = lake.open_table(cfg, source_table)
    if source is None:
        raise LookupError(f"{source_table} does not exist in {cfg.root}; run `telelake ingest "
                          f"{'arxiv' if spec.kind == 'latex' else 'standards'}` first")
    task = _Task(spec, CommandRules.load(spec.latex_rules),
                 StandardsRules.load(spec.standards_rules) if spec.kind == "standards" else None, frozenset())
    version = task.rules_version
    if spec.kind == "standards":
        _check_converters(cfg, source_table)
    source_version = source.version()
    # One batch per (source table version, rules versions, verdict settings): a new ingest or new rules clean again.
    tag = hashlib.sha256(f"{spec.source}\0{spec.kind}\0{version}\0{source_version}\0{spec.min_chars}".encode()).hexdigest()[:16]
    batch = lake.Batch(app_id=f"telelake.{JOB}.{spec.source}.{tag}", version=1)
    log.info("clean %s (%s): %s v%d, rules %s, batch %s", spec.source, spec.kind, source_table, source_version,
             version, batch.app_id)
    previous = previous_summary(cfg, CLEANED.name, batch)
    if finished(cfg, previous, batch):
        return previous
    summary = JobSummary(job=f"{JOB} {spec.kind}", source=spec.source)
    if lake.open_table(cfg, CLEANED.name) is not None:
        # Rows of this very batch are not "done": a run killed between the two commits cleans them
        # again so that its quarantine rows are written too (the silver commit is then skipped).
        prior = lake.read_arrow(cfg, CLEANED.name, columns=["doc_id", "rules_version", "source", "clean_batch"])
        prior = prior.filter(pc.and_(pc.and_(pc.equal(prior["rules_version"], version),
                                             pc.equal(prior["source"], spec.source)),
                                     pc.not_equal(prior["clean_batch"], tag)))
        task = replace(task, done=frozenset(prior["doc_id"].to_pylist()))
    out = (lake.map_table(spark, cfg, source_table, _clean_fn(task), OUT, batch_rows=8)
           .persist(StorageLevel.MEMORY_AND_DISK))
    try:
        for r in out.groupBy("kind", "verdict", "reason").count().collect():
            summary.read += r["count"]
            if r["kind"] == "reject":
                summary.rejected[r["reason"]] += r["count"]
            elif r["verdict"] == "keep":
                summary.kept += r["count"]
            else:
                summary.dropped[r["reason"]] += r["count"]
        summary.check()
        now = utc_now()
        meta = {"telelake.job": JOB, "telelake.summary": summary.to_json(), "telelake.config": config_json}
        cleaned = out.where(F.col("kind") == "clean").select(
            *[c for c in CLEANED.schema.names if c not in ("clean_batch", "cleaned_at")],
            F.lit(tag).alias("clean_batch"), F.lit(now).alias("cleaned_at"))
        rejects = out.where(F.col("kind") == "reject").select(
            "reject_id", F.lit(JOB).alias("job"), F.lit(spec.source).alias("source"), F.lit(tag).alias("batch"),
            "source_file", "source_location", "reason", "detail", F.lit(None).cast("binary").alias("raw"),
            F.lit(0).cast("long").alias("raw_bytes"), F.lit(False).alias("raw_truncated"), F.lit(now).alias("rejected_at"))
        rejects = anti_join_existing(spark, cfg, rejects, REJECTED.name, "reject_id")
        c = lake.write_dataframe(cfg, cleaned, CLEANED, batch=batch, metadata=meta)
        r = lake.write_dataframe(cfg, rejects, REJECTED, batch=batch, metadata=meta)
        summary.tables = {c.table: c.version, r.table: r.version}
    finally:
        out.unpersist()
    return summary

