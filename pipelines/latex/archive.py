"""Read an arXiv source (.tar.gz, .tar, a gzipped single file, a bare file or a folder) into memory,
safely: nothing is written to disk, and sources that try to leave their folder or blow up in size
are refused with a reason instead of being read.

Refused: absolute member paths, `..` components, links whose target leaves the source, more than
`max_files` files, more than `max_total_bytes` unpacked, an unpacked/packed ratio above
`max_ratio` (decompression bombs), a damaged archive. Device files and FIFOs are skipped.
Links that stay inside are read as the file they point to.
"""
from __future__ import annotations

import gzip
import io
import os
import posixpath
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path


class ArchiveRefused(ValueError):
    """The source is not read; `reason` is a short code for the quarantine table."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True, kw_only=True)
class ExtractLimits:
    max_files: int = 2000
    """arXiv sources rarely hold more than a few hundred files (figures included)."""
    max_total_bytes: int = 256 << 20
    """Unpacked size of all files together."""
    max_ratio: float = 200.0
    """Unpacked / packed bytes; text compresses ~5-10×, a bomb by 1000× and more."""


@dataclass
class Source:
    """Files of one source by POSIX path relative to its root; `skipped` names what was not read."""
    files: dict[str, bytes] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    kind: str = ""

    @property
    def total_bytes(self) -> int:
        return sum(len(b) for b in self.files.values())


def read_source(path: str | os.PathLike, limits: ExtractLimits = ExtractLimits()) -> Source:
    """Files of the source at `path` (an archive, a single gzipped or bare file, or a folder)."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, limits)
    return read_source_bytes(path.read_bytes(), path.name, limits)


def read_source_bytes(data: bytes, name: str, limits: ExtractLimits = ExtractLimits()) -> Source:
    """As read_source, for bytes already in memory (a Spark task reading from object storage)."""
    packed = max(1, len(data))
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, packed, limits)
        name = name[:-3] if name.endswith(".gz") else name
    if _is_tar(data):
        return _read_tar(data, packed, limits)
    base = posixpath.basename(name) or "main.tex"
    if base.endswith(".tar"):
        raise ArchiveRefused("damaged_archive", f"{name} is named .tar but holds no tar archive")
    # arXiv names a single-file source after its id ("2401.00002"): it is the LaTeX file
    keep = base.lower().endswith((".tex", ".ltx", ".latex", ".txt", ".bbl", ".bib"))
    return Source(files={base if keep else base + ".tex": data}, kind="single_file")


def _gunzip(data: bytes, packed: int, limits: ExtractLimits) -> bytes:
    cap = min(limits.max_total_bytes, int(packed * limits.max_ratio))
    out, size = [], 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            while chunk := fh.read(1 << 20):
                size += len(chunk)
                if size > cap:
                    raise ArchiveRefused("decompression_limit", _limit_detail(size, packed, limits))
                out.append(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveRefused("damaged_archive", f"gzip: {exc}") from exc
    return b"".join(out)


def _limit_detail(size: int, packed: int, limits: ExtractLimits) -> str:
    return (f"over {size:,} bytes unpacked from {packed:,} packed (limits: {limits.max_total_bytes:,} bytes, "
            f"ratio {limits.max_ratio:g})")


def _is_tar(data: bytes) -> bool:
    return (len(data) >= 512 and data[257:262] == b"ustar") or _tar_opens(data)


def _tar_opens(data: bytes) -> bool:
    if len(data) < 512 or not data[:100].strip(b"\0"):
        return False
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            return tf.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


def _safe_member(name: str) -> str:
    """The normalised relative path of a member, or ArchiveRefused if it leaves the root."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or name.startswith("\\"):
        raise ArchiveRefused("unsafe_path", f"absolute member path {name!r}")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveRefused("unsafe_path", f"member path {name!r} climbs out of the source with '..'")
    return "/".join(parts)


def _read_tar(data: bytes, packed: int, limits: ExtractLimits) -> Source:
    src = Source(kind="tar")
    cap = min(limits.max_total_bytes, int(packed * limits.max_ratio))
    links: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            for member in tf:
                path = _safe_member(member.name)
                if member.isdir() or not path:
                    continue
                if member.issym() or member.islnk():  # symlinks are relative to their folder, hard links to the root
                    base = posixpath.dirname(path) if member.issym() else ""
                    target = posixpath.normpath(posixpath.join(base, member.linkname))
                    if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
                        raise ArchiveRefused("unsafe_link", f"{path} links to {member.linkname!r}, outside the source")
                    links[path] = target
                    continue
                if not member.isfile():
                    src.skipped.append(f"{path} (not a regular file)")
                    continue
                if len(src.files) + 1 > limits.max_files:
                    raise ArchiveRefused("too_many_files", f"more than {limits.max_files:,} files")
                if src.total_bytes + member.size > cap:
                    raise ArchiveRefused("decompression_limit", _limit_detail(src.total_bytes + member.size, packed, limits))
                fh = tf.extractfile(member)
                src.files[path] = fh.read() if fh else b""
    except ArchiveRefused:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ArchiveRefused("damaged_archive", f"tar: {exc}") from exc
    for path, target in links.items():
        if target in src.files:
            src.files[path] = src.files[target]
        else:
            src.skipped.append(f"{path} (link to {target}, not in the source)")
    return src


def _read_folder(root: Path, limits: ExtractLimits) -> Source:
    src = Source(kind="folder")
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            resolved = full.resolve()
            if not resolved.is_relative_to(real_root):
                raise ArchiveRefused("unsafe_link", f"{rel} links to {resolved}, outside the source folder")
            if not resolved.is_file():
                src.skipped.append(f"{rel} (not a regular file)")
                continue
            if len(src.files) + 1 > limits.max_files:
                raise ArchiveRefused("too_many_files", f"more than {limits.max_files:,} files")
            size = resolved.stat().st_size
            if src.total_bytes + size > limits.max_total_bytes:
                raise ArchiveRefused("size_limit", f"over {limits.max_total_bytes:,} bytes of files")
            src.files[rel] = resolved.read_bytes()
    return src
