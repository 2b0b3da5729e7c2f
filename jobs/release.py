"""Releases of the gold tables: create (gated by the data-quality suites), list, show, diff, verify, export.

    telelake release create tele-data-2026.11 --conf conf/release.yaml
    telelake release list | show NAME | diff A B | verify NAME
    telelake release export NAME --out exports/NAME --format jsonl|parquet
    spark-submit --py-files dist/telelake.zip jobs/release.py create NAME --conf conf/release.yaml

`create` exits 1 and publishes nothing when an expectation fails; `verify` exits 1 naming every
missing or changed file.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from jobs._common import Runtime, setup_logging
from jobs.release_args import add_arguments
from pipelines import config
from pipelines.release.create import ReleaseRefused, ReleaseSpec, create_release
from pipelines.release.ops import diff, export, verify
from pipelines.release.store import ReleaseError, list_manifests, load_manifest, release_path
from pipelines.spark import build_session


@dataclass(frozen=True, kw_only=True)
class ReleaseJobConfig(Runtime):
    release: ReleaseSpec = field(default_factory=ReleaseSpec)


def run(args: argparse.Namespace) -> int:
    setup_logging()
    conf = args.conf or ("conf/release.yaml" if Path("conf/release.yaml").is_file() else None)
    cfg = config.load(ReleaseJobConfig, conf, args.overrides)
    want = {"create": 1, "show": 1, "verify": 1, "export": 1, "diff": 2, "list": 0}[args.action]
    if len(args.names) != want:
        raise ValueError(f"`telelake release {args.action}` takes {want} release name(s), got {args.names}")
    console = Console()
    try:
        return _ACTIONS[args.action](cfg, args, console)
    except ReleaseRefused as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except ReleaseError as exc:
        print(f"telelake: error: {exc}", file=sys.stderr)
        return 1


def _create(cfg: ReleaseJobConfig, args, console: Console) -> int:
    spark = build_session(cfg.spark, "telelake-release")
    r = create_release(spark, cfg.lake, args.names[0], cfg.release)
    m = r.manifest
    state = "created" if r.created else "already exists with this content (nothing done)"
    console.print(f"release {m['name']} {state}: " + ", ".join(f"{t} v{e['version']} ({e['rows']:,} rows)"
                                                              for t, e in m["tables"].items()))
    console.print(f"report: {release_path(cfg.lake, m['name'], m['report'])}")
    return 0


def _list(cfg: ReleaseJobConfig, args, console: Console) -> int:
    t = Table(title=f"releases in {cfg.lake.root}")
    for col in ("name", "created (UTC)", "tables", "documents", "tokens", "code"):
        t.add_column(col)
    for m in list_manifests(cfg.lake):
        t.add_row(m["name"], m["created_at"], ", ".join(f"{n} v{e['version']}" for n, e in m["tables"].items()),
                  f"{sum(c['rows'] for c in m['categories'].values()):,}",
                  f"{sum(c['tokens'] for c in m['categories'].values()):,}", m["code_version"])
    console.print(t)
    return 0


def _show(cfg: ReleaseJobConfig, args, console: Console) -> int:
    m = load_manifest(cfg.lake, args.names[0])
    if args.json:
        print(json.dumps(m, indent=1))
        return 0
    console.print(f"release {m['name']}, created {m['created_at']}, code {m['code_version']}, config {m['config_hash']}")
    t = Table(title="categories")
    for col in ("category", "documents", "tokens", "MB of text"):
        t.add_column(col, justify="right" if col != "category" else "left")
    for c, e in m["categories"].items():
        t.add_row(c, f"{e['rows']:,}", f"{e['tokens']:,}", f"{e['chars'] / 1e6:.2f}")
    console.print(t)
    for n, e in m["tables"].items():
        console.print(f"{n} v{e['version']}: {e['rows']:,} rows in {len(e['files'])} files ({e['bytes']:,} bytes)")
    for s in m["suites"]:
        console.print(f"suite {s['suite']}: {s['evaluated']} expectations, {'passed' if s['success'] else 'FAILED'}; "
                      f"Data Docs {release_path(cfg.lake, m['name'], s['data_docs'])}")
    console.print(f"report: {release_path(cfg.lake, m['name'], m['report'])}")
    return 0


def _diff(cfg: ReleaseJobConfig, args, console: Console) -> int:
    d = diff(cfg.lake, *args.names)
    if args.json:
        print(json.dumps(d, indent=1))
        return 0
    a, b = args.names
    for t, e in d["tables"].items():
        console.print(f"{t}: v{e['version'][0]} → v{e['version'][1]}, rows {e['rows'][0]:,} → {e['rows'][1]:,} "
                      f"(+{e['added']:,} −{e['removed']:,} ids)")
    tab = Table(title=f"{a} → {b}")
    for col in ("category", f"docs {a}", f"docs {b}", f"tokens {a}", f"tokens {b}"):
        tab.add_column(col)
    for c, e in d["categories"].items():
        tab.add_row(c, f"{e['rows'][0]:,}", f"{e['rows'][1]:,}", f"{e['tokens'][0]:,}", f"{e['tokens'][1]:,}")
    console.print(tab)
    if d["config_hash"][0] != d["config_hash"][1]:
        console.print(f"config changed: {d['config_hash'][0]} → {d['config_hash'][1]}")
    if d["code_version"][0] != d["code_version"][1]:
        console.print(f"code changed: {d['code_version'][0]} → {d['code_version'][1]}")
    return 0


def _verify(cfg: ReleaseJobConfig, args, console: Console) -> int:
    m = load_manifest(cfg.lake, args.names[0])
    problems = verify(cfg.lake, args.names[0])
    files = sum(len(e["files"]) for e in m["tables"].values())
    if problems:
        print(f"release {m['name']}: {len(problems)} problem(s) in {files} files:\n" + "\n".join(f"  {p}" for p in problems),
              file=sys.stderr)
        return 1
    console.print(f"release {m['name']}: {files} files verified (sizes and sha256 match the manifest), pins held")
    return 0


def _export(cfg: ReleaseJobConfig, args, console: Console) -> int:
    name = args.names[0]
    out = Path(args.out or f"exports/{name}")
    files = export(cfg.lake, name, out, args.format)
    console.print(f"release {name}: wrote {len(files)} {args.format} files under {out}")
    return 0


_ACTIONS = {"create": _create, "list": _list, "show": _show, "diff": _diff, "verify": _verify, "export": _export}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
