"""Find the main file of a LaTeX source and inline what it includes (latexpand-like). Pure.

Main file: a .tex file with `\\documentclass` (outside comments) that no other file includes;
several candidates → the one with `\\begin{document}`, then the one pulling in the most files,
then the shortest path. Includes followed: `\\input{f}`, `\\input f`, `\\include{f}`,
`\\subfile{f}`, `\\import{dir}{f}`, `\\subimport{dir}{f}`, and `\\usepackage{p}` when p.sty is part of
the source (authors keep their macros there). Paths resolve
against the source root, then against the including file's folder; `.tex` is tried when the name
has no extension. Missing files and cycles are recorded, not fatal; nesting is bounded.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from pipelines.latex.comments import remove_comments

_INCLUDE = re.compile(
    r"\\(?:(?P<icmd>import|subimport)\s*\{(?P<dir>[^{}]*)\}\s*\{(?P<ifile>[^{}]*)\}"
    r"|(?P<cmd>input|include|subfile)(?![a-zA-Z@])\s*(?:\{(?P<braced>[^{}]*)\}|(?P<bare>[^\s{}\\%]+)))")
_DOCCLASS = re.compile(r"\\documentclass(?![a-zA-Z@])")
_BEGIN_DOC = re.compile(r"\\begin\{document\}")
TEX_EXTENSIONS = (".tex", ".ltx", ".latex")
MAX_DEPTH = 32


class NoMainFile(ValueError):
    reason = "no_main_file"


@dataclass
class Flattened:
    main: str
    text: str
    included: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    cycles: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def decode(data: bytes) -> str:
    """LaTeX sources are UTF-8 or Latin-1 in practice; never fail."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def flatten_source(files: dict[str, bytes]) -> Flattened:
    """Comments removed from every file, the main file found, its includes inlined."""
    warnings: list[str] = []
    texts = {p: remove_comments(decode(b), warnings) for p, b in files.items() if p.lower().endswith(TEX_EXTENSIONS)}
    others = {p for p in files if p not in texts}
    main = find_main(texts, others)
    out = Flattened(main=main, text="", warnings=warnings)
    out.text = _inline(main, texts, others, files, out, stack=[main])
    return out


def find_main(texts: dict[str, str], others: set[str] = frozenset()) -> str:
    if not texts:
        raise NoMainFile("no .tex file in the source")
    included = {t for p, tex in texts.items() for t in _targets(p, tex, texts, others)}
    roots = [p for p, tex in texts.items() if _DOCCLASS.search(tex) and p not in included]
    if not roots:
        roots = [p for p, tex in texts.items() if _DOCCLASS.search(tex)]
    if not roots:
        if len(texts) == 1:
            path, tex = next(iter(texts.items()))
            problem = not_latex(tex)
            if problem:
                raise NoMainFile(f"{path} is not LaTeX: {problem}")
            return path
        raise NoMainFile(f"no file with \\documentclass among {len(texts)} .tex files")
    return max(roots, key=lambda p: (bool(_BEGIN_DOC.search(texts[p])), len(_targets(p, texts[p], texts, others)),
                                     -p.count("/"), -len(p)))


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")
_COMMAND = re.compile(r"\\[a-zA-Z]{2,}")


def not_latex(tex: str) -> str | None:
    """Why a lone .tex without \\documentclass is not a LaTeX fragment, or None: binary bytes, or no
    command at all in its first 64 KiB."""
    head = tex[:65536]
    control = len(_CONTROL.findall(head))
    if control > max(8, len(head) // 100):
        return f"{control} control characters in its first {len(head):,} characters (binary data)"
    if not _COMMAND.search(head):
        return "no LaTeX command in it"
    return None


def _targets(path: str, tex: str, texts: dict[str, str], others: set[str]) -> list[str]:
    return [t for m in _INCLUDE.finditer(tex) if (t := _resolve(path, m, texts, others))]


def _parts(m: re.Match) -> tuple[str, str, str]:
    """(command, folder, file name) of an include match."""
    if m.group("icmd"):
        return m.group("icmd"), (m.group("dir") or "").strip(), (m.group("ifile") or "").strip()
    return m.group("cmd"), "", (m.group("braced") or m.group("bare") or "").strip().strip('"')


def _resolve(including: str, m: re.Match, texts: dict[str, str], others: set[str]) -> str | None:
    cmd, folder, name = _parts(m)
    if not name:
        return None
    bases = [""] + ([posixpath.dirname(including)] if posixpath.dirname(including) else [])
    for base in bases:
        candidate = posixpath.normpath(posixpath.join(base, folder, name))
        with_ext = cmd == "include" or "." not in posixpath.basename(candidate)
        for c in ([candidate + ".tex", candidate] if with_ext else [candidate, candidate + ".tex"]):
            if c in texts or c in others:
                return c
    return None


def _inline(path: str, texts: dict[str, str], others: set[str], files: dict[str, bytes], out: Flattened,
            stack: list[str]) -> str:
    tex = texts[path]

    def replace(m: re.Match) -> str:
        target = _resolve(path, m, texts, others)
        if target is None:
            out.missing.append(f"{path}: {m.group(0)}")
            return ""
        if target in stack:
            out.cycles.append(" → ".join(stack + [target]))
            return ""
        if len(stack) >= MAX_DEPTH:
            out.warnings.append(f"includes nested deeper than {MAX_DEPTH} at {target}: not inlined")
            return ""
        out.included.append(target)
        if target in texts:
            body = _inline(target, texts, others, files, out, stack + [target])
        else:  # e.g. \input{paper.bbl}: comment-stripped text, not followed further
            body = remove_comments(decode(files[target]), out.warnings)
        cmd = _parts(m)[0]
        if cmd == "subfile":
            body = _document_body(body)
        return ("\n" if cmd == "include" else "") + body + "\n"

    return _inline_packages(_INCLUDE.sub(replace, tex), path, files, out, stack)


_PACKAGE = re.compile(r"\\(?:usepackage|RequirePackage)(?![a-zA-Z@])\s*(?:\[[^\]]*\])?\s*\{([^{}]*)\}")


def _inline_packages(tex: str, path: str, files: dict[str, bytes], out: Flattened, stack: list[str]) -> str:
    """`\\usepackage{mymacros}` with mymacros.sty in the source: the package's text is inlined (once,
    as LaTeX loads a package once), so the author macros it defines are expanded like any other.
    Packages not in the source stay as they are."""

    def replace(m: re.Match) -> str:
        names = [n.strip() for n in m.group(1).split(",") if n.strip()]
        local = {n: p for n in names if (p := _local_package(n, path, files))}
        if not local:
            return m.group(0)
        parts = []
        for name, sty in local.items():
            if sty in out.included or sty in stack:
                continue
            if len(stack) >= MAX_DEPTH:
                out.warnings.append(f"packages nested deeper than {MAX_DEPTH} at {sty}: not inlined")
                continue
            out.included.append(sty)
            body = remove_comments(decode(files[sty]), out.warnings)
            parts.append(_inline_packages(body, sty, files, out, stack + [sty]))
        rest = [n for n in names if n not in local]
        return "\n".join(parts) + (f"\n\\usepackage{{{','.join(rest)}}}" if rest else "") + "\n"

    return _PACKAGE.sub(replace, tex)


def _local_package(name: str, including: str, files: dict[str, bytes]) -> str | None:
    for base in ("", posixpath.dirname(including)):
        candidate = posixpath.normpath(posixpath.join(base, name + ".sty"))
        if candidate in files:
            return candidate
    return None


def _document_body(tex: str) -> str:
    """A \\subfile's own preamble and document wrapper go; its body stays."""
    start = _BEGIN_DOC.search(tex)
    end = tex.rfind("\\end{document}")
    if not start:
        return tex
    return tex[start.end(): end if end > start.end() else len(tex)]
