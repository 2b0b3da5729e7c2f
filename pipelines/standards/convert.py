"""The two external converters: LibreOffice (.doc → .docx) and pandoc (.docx → LaTeX, OMML → TeX math).

Both run as subprocesses in a private temporary folder with a time limit; a converter that fails
or overruns raises ConversionFailed with a reason for the quarantine table. LibreOffice comes from
Debian's packages (`apt-get install libreoffice-writer-nogui`; the project's set-up installs it);
pandoc from the pypandoc-binary wheel.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOFFICE_NAMES = ("soffice", "libreoffice")


class ConversionFailed(RuntimeError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


class ConverterMissing(ConversionFailed):
    """A converter is not installed: a set-up problem, not bad input."""


def soffice_path() -> str:
    override = os.environ.get("TELELAKE_SOFFICE")
    if override and not (os.path.isfile(override) and os.access(override, os.X_OK)):
        raise ConverterMissing("libreoffice_missing", f"TELELAKE_SOFFICE={override} is not an executable file")
    found = override or next((p for n in SOFFICE_NAMES if (p := shutil.which(n))), None)
    if not found:
        raise ConverterMissing("libreoffice_missing",
                               "LibreOffice is needed to read .doc files and was not found on PATH (soffice). "
                               "Install it: `apt-get install -y --no-install-recommends libreoffice-writer-nogui` "
                               "(the README's set-up commands and .ci/run do this), or set TELELAKE_SOFFICE "
                               "to the soffice binary.")
    return found


def pandoc_path() -> str:
    try:
        import pypandoc
        return pypandoc.get_pandoc_path()
    except (ImportError, OSError) as exc:
        raise ConverterMissing("pandoc_missing", f"pandoc not found ({exc}); `pip install pypandoc-binary` "
                                                 "(a dependency of telelake)") from exc


def doc_to_docx(data: bytes, name: str, timeout_s: float = 120.0) -> bytes:
    """Convert Word 97-2003 bytes to .docx bytes with LibreOffice headless."""
    soffice = soffice_path()
    with tempfile.TemporaryDirectory(prefix="telelake-doc-") as tmp:
        src = Path(tmp) / "in.doc"
        src.write_bytes(data)
        profile = Path(tmp) / "profile"  # a private profile: parallel conversions do not share a lock
        cmd = [soffice, "--headless", "--norestore", "--nolockcheck", f"-env:UserInstallation={profile.as_uri()}",
               "--convert-to", "docx:MS Word 2007 XML", "--outdir", str(Path(tmp) / "out"), str(src)]
        proc = _run(cmd, timeout_s, name, "libreoffice")
        out = Path(tmp) / "out" / "in.docx"
        if not out.is_file():
            raise ConversionFailed("doc_conversion_failed",
                                   f"{name}: LibreOffice wrote no .docx (exit {proc.returncode}): "
                                   f"{(proc.stderr or proc.stdout)[-500:].strip()}")
        return out.read_bytes()


def docx_to_latex(data: bytes, name: str, timeout_s: float = 300.0) -> str:
    """Convert .docx bytes to a LaTeX body with pandoc (equations become TeX math)."""
    pandoc = pandoc_path()
    with tempfile.TemporaryDirectory(prefix="telelake-docx-") as tmp:
        src = Path(tmp) / "in.docx"
        src.write_bytes(data)
        proc = _run([pandoc, "--from=docx", "--to=latex", "--wrap=none", str(src)], timeout_s, name, "pandoc")
        if proc.returncode != 0:
            raise ConversionFailed("docx_conversion_failed", f"{name}: pandoc exit {proc.returncode}: "
                                                             f"{proc.stderr[-500:].strip()}")
        return proc.stdout


def _run(cmd: list[str], timeout_s: float, name: str, tool: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, errors="replace",
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ConversionFailed("conversion_timeout", f"{name}: {tool} ran over {timeout_s:g} s") from exc
