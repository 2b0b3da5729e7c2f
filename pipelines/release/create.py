"""`telelake release create NAME`: gate, pin, checksum, report, publish. All or nothing.

1. Same name already released: the same content (table versions and config) returns it unchanged;
   different content is refused (a name is never reused).
2. Every table must exist and hold rows (an empty release is refused).
3. The great-expectations suites run on each table version; any failure refuses the release,
   lists the failed expectations and publishes nothing (their Data Docs stay under
   _telelake/validations/ for inspection).
4. The versions are pinned (vacuum keeps their files), every data file is checksummed, the report
   and the manifest are staged and published in one step. A failure after pinning removes the pins.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipelines import lake
from pipelines.lake.storage import is_remote
from pipelines.quality.datasets import (BenchmarkRules, InstructionRules, Suite, TeleEvalRules, benchmark_suite,
                                        instruction_suite, tele_data_suite, tele_eval_suite)
from pipelines.quality.suites import DEFAULT_RULES, SuiteRules
from pipelines.quality.validate import SuiteResult, validate_table
from pipelines.release.files import table_files
from pipelines.release.report import write_report
from pipelines.release.store import (MANIFEST, ReleaseError, check_name, publish, read_manifest, release_path,
                                     releases_root, staging_dir)
from pipelines.version import code_version
from schemas import BENCHMARKS, INSTRUCTIONS, TELE_DATA, TELE_EVAL, contract_for
from schemas.gold import GOLD_SCHEMA

log = logging.getLogger(__name__)
FORMAT = "telelake-release/1"


class ReleaseRefused(ReleaseError):
    """The data-quality gate failed: nothing was published."""

    def __init__(self, message: str, results: list[SuiteResult]) -> None:
        super().__init__(message)
        self.results = results


@dataclass(frozen=True, kw_only=True)
class ReleaseSpec:
    tables: list[str] = field(default_factory=lambda: ["gold.tele_data"])
    """Tables every release holds; each must exist and have rows."""
    optional_tables: list[str] = field(default_factory=lambda: ["gold.general_replay", TELE_EVAL.name,
                                                                 BENCHMARKS.name, INSTRUCTIONS.name])
    """Tables a release holds when they exist with rows (general replay data, Tele-Eval, benchmarks,
    instruction sets, when built)."""
    suites: dict[str, SuiteRules] = field(default_factory=dict)
    """Domain rules per table of the Tele-Data layout; a table not named here gets the defaults
    (pipelines/quality/suites.py)."""
    tele_eval: TeleEvalRules = field(default_factory=TeleEvalRules)
    benchmarks: BenchmarkRules = field(default_factory=BenchmarkRules)
    instructions: InstructionRules = field(default_factory=InstructionRules)
    checksum_threads: int = 4

    def rules(self, table: str) -> SuiteRules:
        return self.suites.get(table) or DEFAULT_RULES.get(table) or SuiteRules()

    def suite(self, cfg: lake.LakeConfig, table: str, versions: dict[str, int]) -> Suite:
        """The suite of `table` in a release of these table versions."""
        contract = contract_for(table)
        if table == TELE_EVAL.name:  # every pair's ID must name a released Tele-Data document
            ids = None
            if TELE_DATA.name in versions:
                ids = frozenset(lake.dataset(cfg, TELE_DATA.name, version=versions[TELE_DATA.name])
                                .to_table(columns=["id"])["id"].to_pylist())
            return tele_eval_suite(contract, self.tele_eval, ids)
        if table == BENCHMARKS.name:
            return benchmark_suite(contract, self.benchmarks)
        if table == INSTRUCTIONS.name:
            return instruction_suite(contract, self.instructions)
        if contract.schema != GOLD_SCHEMA:
            raise ReleaseError(f"no data-quality suite for {table}; releases hold the Tele-Data layout tables, "
                               f"{TELE_EVAL.name}, {BENCHMARKS.name} and {INSTRUCTIONS.name}")
        return tele_data_suite(contract, self.rules(table))


@dataclass
class ReleaseResult:
    manifest: dict
    created: bool
    """False when the release already existed with this content (nothing was done)."""

    @property
    def report(self) -> str:
        return self.manifest["report"]


def _commit_info(cfg: lake.LakeConfig, table: str, version: int) -> dict:
    for entry in lake.history(cfg, table):
        if entry.get("version") == version:
            return entry
    return {}


def _plan(cfg: lake.LakeConfig, spec: ReleaseSpec) -> dict[str, int]:
    """table → current version of every table the release will hold; refuses missing or empty ones."""
    versions = {}
    for name in [*spec.tables, *spec.optional_tables]:
        optional = name not in spec.tables
        table = lake.open_table(cfg, name)
        if table is None:
            if optional:
                continue
            raise ReleaseError(f"table {name} does not exist in {cfg.root}: run `telelake assemble` first")
        rows = sum(f["num_records"] for f in lake.data_files(cfg, name))
        if rows == 0:
            if optional:
                log.info("release: %s is empty; left out", name)
                continue
            raise ReleaseError(f"table {name} v{table.version()} is empty: a release of an empty table is refused; "
                               f"check the assembly's funnel (telelake lake history {name})")
        versions[name] = table.version()
    return versions


def _config_hash(cfg: lake.LakeConfig, spec: ReleaseSpec, versions: dict[str, int]) -> tuple[str, dict]:
    assembly = {}
    for t, v in versions.items():
        info = _commit_info(cfg, t, v)  # one history read per table
        assembly[t] = {k: info.get(f"telelake.{k}") for k in ("config", "funnel", "inputs", "tokenizer")}
    body = json.dumps({"release": asdict(spec), "assembly": {t: a["config"] for t, a in assembly.items()}},
                      sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16], assembly


def create_release(spark, cfg: lake.LakeConfig, name: str, spec: ReleaseSpec) -> ReleaseResult:
    check_name(name)
    versions = _plan(cfg, spec)
    config_hash, assembly = _config_hash(cfg, spec, versions)
    existing = read_manifest(cfg, name)
    if existing is not None:
        return _existing(existing, name, versions, config_hash)

    staged = staging_dir(cfg, name)
    holder = f"release:{name}"
    pinned: list[tuple[str, int]] = []
    try:
        results, profiles = [], {}
        for table, version in versions.items():
            r, profile = validate_table(spark, cfg, contract_for(table), version, spec.suite(cfg, table, versions),
                                        staged / "data_docs" / table)
            r.data_docs = f"data_docs/{table}/{r.data_docs}" if r.data_docs else ""
            results.append(r)
            profiles[table] = profile
        failed = [r for r in results if not r.success]
        if failed:
            kept = _keep_failed_docs(cfg, name, staged)
            lines = [f"  {r.table} v{r.version}: {f}" for r in failed for f in r.failed_lines()]
            raise ReleaseRefused(f"release {name} refused: {sum(len(r.failed) for r in failed)} expectation(s) "
                                 f"failed; nothing was published. Data Docs: {kept}\n" + "\n".join(lines), results)
        for table, version in versions.items():
            lake.pin(cfg, table, version, holder)
            pinned.append((table, version))
        tables = {}
        for table, version in versions.items():
            files = table_files(cfg, table, version, spec.checksum_threads)
            tables[table] = {"version": version, "rows": sum(f["rows"] for f in files),
                             "bytes": sum(f["size"] for f in files), "files": files}
        content = json.dumps({"tables": {t: {"version": e["version"], "files": [(f["path"], f["sha256"]) for f in e["files"]]}
                                         for t, e in tables.items()}, "config_hash": config_hash}, sort_keys=True)
        manifest = {
            "format": FORMAT, "name": name,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "content_hash": hashlib.sha256(content.encode()).hexdigest(),
            "code_version": code_version(), "config_hash": config_hash, "config": asdict(spec),
            "assembly": assembly, "tables": tables, "categories": _categories(profiles),
            "contents": _contents(profiles),
            "tokenizer": _tokenizer(assembly),
            "suites": [r.to_dict() for r in results],
        }
        manifest["report"] = write_report(staged / "report", manifest, profiles)
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if not publish(cfg, name, staged):
            return _existing(read_manifest(cfg, name), name, versions, config_hash)
        pinned.clear()
        log.info("release %s: published at %s", name, release_path(cfg, name))
        return ReleaseResult(manifest=read_manifest(cfg, name), created=True)
    finally:
        for table, version in pinned:  # published nothing: the pins go too
            lake.unpin(cfg, table, version, holder)
        shutil.rmtree(staged, ignore_errors=True)


def _existing(manifest: dict, name: str, versions: dict[str, int], config_hash: str) -> ReleaseResult:
    have = {t: e["version"] for t, e in manifest["tables"].items()}
    if have == versions and manifest["config_hash"] == config_hash:
        log.info("release %s already exists with this content; nothing to do", name)
        return ReleaseResult(manifest=manifest, created=False)
    diff = [f"{t} v{have.get(t)} → v{versions.get(t)}" for t in sorted(set(have) | set(versions)) if have.get(t) != versions.get(t)]
    if manifest["config_hash"] != config_hash:
        diff.append(f"config {manifest['config_hash']} → {config_hash}")
    raise ReleaseError(f"release {name} already exists with other content ({'; '.join(diff)}); releases are "
                       f"immutable: choose a new name")


def _keep_failed_docs(cfg: lake.LakeConfig, name: str, staged: Path) -> str:
    """Move a refused release's Data Docs to _telelake/validations/<name>-<time>/ (local lakes)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = Path(releases_root(cfg)).parent / "validations" / f"{name}-{stamp}"
    if is_remote(cfg.root) or not (staged / "data_docs").is_dir():
        return "(not kept for object-store lakes)"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staged / "data_docs"), target)
    return str(target)


_GROUPS = {TELE_EVAL.name: ["category"], BENCHMARKS.name: ["category", "split"], INSTRUCTIONS.name: ["task", "split"]}


def _contents(profiles: dict) -> dict[str, dict[str, int]]:
    """Rows per group of the evaluation and training tables: Tele-Eval pairs per category, benchmark
    items per category and split, instructions per task and split."""
    out = {}
    for table, cols in _GROUPS.items():
        if table in profiles:
            counts = profiles[table].groupby(cols).size()
            out[table] = {"/".join(map(str, k if isinstance(k, tuple) else (k,))): int(v) for k, v in counts.items()}
    return out


def _categories(profiles: dict) -> dict[str, dict]:
    """Rows, tokens and characters per category over every released Tele-Data layout table (paper Table I)."""
    out: dict[str, dict] = {}
    for table, profile in profiles.items():
        if contract_for(table).schema != GOLD_SCHEMA:
            continue
        for cat, g in profile.groupby("category"):
            e = out.setdefault(str(cat), {"rows": 0, "tokens": 0, "chars": 0})
            e["rows"] += int(len(g))
            e["tokens"] += int(g["tokens"].sum())
            e["chars"] += int(g["content_chars"].sum())
    return dict(sorted(out.items()))


def _tokenizer(assembly: dict) -> str | None:
    return next((a["tokenizer"] for a in assembly.values() if a.get("tokenizer")), None)
