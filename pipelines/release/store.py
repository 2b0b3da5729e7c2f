"""Where releases live and how one is published: <lake root>/_telelake/releases/<name>/.

A release exists exactly when its manifest.json exists. Everything of a release (manifest, report,
Data Docs) is written into a staging folder first and published in one step: a folder rename on a
local lake (atomic; it fails if the name is taken, so two creators of one name cannot both win), or
on an object store by copying the staged files with the manifest last. Nothing under a published
release is ever rewritten.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

import pyarrow.fs as pafs

from pipelines.lake.storage import LakeConfig, filesystem, is_remote

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MANIFEST = "manifest.json"


class ReleaseError(RuntimeError):
    """A release cannot be created, read or verified; the message says why and what to do."""


def check_name(name: str) -> None:
    if not NAME.match(name) or name.endswith(".staging"):
        raise ReleaseError(f"release name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a "
                           f"letter or digit (e.g. tele-data-2026.11)")


def releases_root(cfg: LakeConfig) -> str:
    root = cfg.root if is_remote(cfg.root) else os.path.abspath(cfg.root)
    return f"{root.rstrip('/')}/_telelake/releases"


def read_manifest(cfg: LakeConfig, name: str) -> dict | None:
    fs, base = filesystem(releases_root(cfg), cfg.storage_options)
    path = f"{base}/{name}/{MANIFEST}"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as fh:
        return json.loads(fh.read())


def load_manifest(cfg: LakeConfig, name: str) -> dict:
    check_name(name)
    manifest = read_manifest(cfg, name)
    if manifest is None:
        known = [m["name"] for m in list_manifests(cfg)]
        raise ReleaseError(f"no release {name!r} under {releases_root(cfg)}; releases: {known or 'none'}")
    return manifest


def list_manifests(cfg: LakeConfig) -> list[dict]:
    fs, base = filesystem(releases_root(cfg), cfg.storage_options)
    if fs.get_file_info(base).type == pafs.FileType.NotFound:
        return []
    out = []
    for info in fs.get_file_info(pafs.FileSelector(base)):
        if info.type == pafs.FileType.Directory and not info.base_name.startswith("."):
            m = read_manifest(cfg, info.base_name)
            if m is not None:
                out.append(m)
    return sorted(out, key=lambda m: (m["created_at"], m["name"]))


def staging_dir(cfg: LakeConfig, name: str) -> Path:
    """A local folder to build the release in: inside the releases folder on a local lake (so the
    publishing rename stays on one file system), a temporary folder otherwise."""
    if is_remote(cfg.root):
        import tempfile

        return Path(tempfile.mkdtemp(prefix=f"telelake-release-{name}-"))
    path = Path(releases_root(cfg)) / f".{name}.{uuid.uuid4().hex[:8]}.staging"
    path.mkdir(parents=True)
    return path


def publish(cfg: LakeConfig, name: str, staged: Path) -> bool:
    """Publish the staged folder as release `name`. False when `name` was taken meanwhile (the staged
    folder is then removed and the caller compares contents)."""
    try:
        if not is_remote(cfg.root):
            try:
                os.rename(staged, Path(releases_root(cfg)) / name)
            except OSError:
                if (Path(releases_root(cfg)) / name / MANIFEST).is_file():
                    return False
                raise
            return True
        fs, base = filesystem(releases_root(cfg), cfg.storage_options)
        if read_manifest(cfg, name) is not None:
            return False
        files = sorted(p for p in staged.rglob("*") if p.is_file() and p.name != MANIFEST)
        for p in [*files, staged / MANIFEST]:  # the manifest last: until it lands, there is no release
            target = f"{base}/{name}/{p.relative_to(staged).as_posix()}"
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with fs.open_output_stream(target) as out:
                out.write(p.read_bytes())
        return True
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def release_path(cfg: LakeConfig, name: str, *parts: str) -> str:
    return "/".join([releases_root(cfg), name, *parts])
