"""Read-side release operations: verify, diff, export, and the files vacuum must keep."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import lake
from pipelines.release.files import release_dataset, verify_files
from pipelines.release.store import list_manifests, load_manifest
from schemas import BENCHMARKS, INSTRUCTIONS, TELE_EVAL, contract_for
from schemas.gold import PUBLIC_COLUMNS
from schemas.qna import PUBLIC_TELE_EVAL_COLUMNS

log = logging.getLogger(__name__)


def verify(cfg: lake.LakeConfig, name: str) -> list[str]:
    """Every problem with release `name`: a released file missing, resized or changed, a pin gone."""
    manifest = load_manifest(cfg, name)
    problems = []
    for table, entry in manifest["tables"].items():
        problems += verify_files(cfg, table, entry["files"])
        if not any(p.version == entry["version"] and p.holder == f"release:{name}" for p in lake.pins(cfg, table)):
            problems.append(f"{table}: the pin of version {entry['version']} for release:{name} is gone "
                            f"(vacuum may delete its files): telelake lake pin {table} {entry['version']} "
                            f"--holder release:{name}")
    return problems


def read_release(cfg: lake.LakeConfig, name: str, table: str, columns: list[str] | None = None) -> pa.Table:
    """The released rows of `table`, read from exactly the files the manifest names."""
    manifest = load_manifest(cfg, name)
    if table not in manifest["tables"]:
        raise KeyError(f"release {name} holds {sorted(manifest['tables'])}, not {table}")
    return release_dataset(cfg, table, manifest["tables"][table]["files"]).to_table(columns=columns)


def diff(cfg: lake.LakeConfig, a: str, b: str) -> dict:
    """What changed from release `a` to release `b`: table versions, rows and tokens per category,
    documents added and removed (by id), config and code."""
    ma, mb = load_manifest(cfg, a), load_manifest(cfg, b)
    tables = {}
    for t in sorted(set(ma["tables"]) | set(mb["tables"])):
        ea, eb = ma["tables"].get(t), mb["tables"].get(t)
        (key,) = contract_for(t).key  # id, pair_id, item_id, instruction_id
        ids_a = set(read_release(cfg, a, t, [key])[key].to_pylist()) if ea else set()
        ids_b = set(read_release(cfg, b, t, [key])[key].to_pylist()) if eb else set()
        tables[t] = {"version": [ea and ea["version"], eb and eb["version"]],
                     "rows": [ea["rows"] if ea else 0, eb["rows"] if eb else 0],
                     "added": len(ids_b - ids_a), "removed": len(ids_a - ids_b),
                     "added_ids": sorted(ids_b - ids_a)[:20], "removed_ids": sorted(ids_a - ids_b)[:20]}
    cats = {}
    for c in sorted(set(ma["categories"]) | set(mb["categories"])):
        ca, cb = ma["categories"].get(c, {}), mb["categories"].get(c, {})
        cats[c] = {k: [ca.get(k, 0), cb.get(k, 0)] for k in ("rows", "tokens", "chars")}
    return {"releases": [a, b], "tables": tables, "categories": cats,
            "config_hash": [ma["config_hash"], mb["config_hash"]], "code_version": [ma["code_version"], mb["code_version"]],
            "suites": [{s["suite"]: s["success"] for s in m["suites"]} for m in (ma, mb)]}


EXPORT_LAYOUT = {
    TELE_EVAL.name: (PUBLIC_TELE_EVAL_COLUMNS, [("ID", "ascending"), ("Statement", "ascending")]),
    BENCHMARKS.name: (("item_id", "category", "subject", "difficulty", "question", "choices", "answer", "explanation",
                       "split", "source"), [("category", "ascending"), ("item_id", "ascending")]),
    INSTRUCTIONS.name: (("instruction_id", "task", "category", "instruction", "input", "output", "split", "source_ids"),
                        [("task", "ascending"), ("instruction_id", "ascending")]),
}
"""Public columns and order of the tables that are not in the Tele-Data layout."""


def export(cfg: lake.LakeConfig, name: str, out: Path, fmt: str = "jsonl", rows_per_file: int = 100_000) -> list[Path]:
    """Write the release in its public layouts: one folder per table, files of `rows_per_file` rows.
    Tele-Data tables: exactly id, category, content, metadata (a JSON object in JSONL, a JSON string
    in Parquet, where one column holds every category's keys); Tele-Eval: Statement, Answer, ID;
    benchmarks and instructions: their schema's public columns (EXPORT_LAYOUT)."""
    if fmt not in ("jsonl", "parquet"):
        raise ValueError(f"export format {fmt!r}: jsonl or parquet")
    manifest = load_manifest(cfg, name)
    written = []
    for table, entry in manifest["tables"].items():
        folder = out / table.split(".", 1)[1]
        folder.mkdir(parents=True, exist_ok=True)
        columns, order = EXPORT_LAYOUT.get(table, (PUBLIC_COLUMNS, [("category", "ascending"), ("id", "ascending")]))
        data = release_dataset(cfg, table, entry["files"]).to_table(columns=list(columns))
        data = data.take(pc.sort_indices(data, order))
        layout = "metadata" in data.column_names
        for i, start in enumerate(range(0, max(1, data.num_rows), rows_per_file)):
            part = data.slice(start, rows_per_file)
            path = folder / f"part-{i:05d}.{fmt}"
            if fmt == "parquet":
                pq.write_table(part, path, compression="zstd")
            else:
                with path.open("w", encoding="utf-8") as fh:
                    for r in part.to_pylist():
                        row = {**r, "metadata": json.loads(r["metadata"])} if layout else r
                        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            written.append(path)
    log.info("export %s: %d files under %s", name, len(written), out)
    return written


def protected_files(cfg: lake.LakeConfig, table: str) -> set[str]:
    """Paths (relative to the table folder) of every file of `table` that any release names."""
    return {f["path"] for m in list_manifests(cfg) for f in m["tables"].get(table, {}).get("files", [])}
