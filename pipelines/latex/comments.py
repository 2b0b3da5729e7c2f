"""Remove LaTeX comments: `%` to the end of the line (not `\\%`, not inside verbatim), `comment`
environments and `\\iffalse … \\fi` blocks (nested conditionals counted). Pure functions.

A line that is only a comment disappears with its newline. A comment after text joins the next
line the way TeX does: `word%` + newline + `  next` reads `wordnext`, and `word %` keeps its space.
"""
from __future__ import annotations

import re

VERBATIM_ENVS = ("verbatim", "verbatim*", "Verbatim", "lstlisting", "minted", "alltt", "comment")
_BEGIN_VERB = re.compile(r"\\begin\{(" + "|".join(re.escape(e) for e in VERBATIM_ENVS) + r")\}")
_VERB = re.compile(r"\\verb\*?([^a-zA-Z\s*])")
_COMMENT_ENV = re.compile(r"\\begin\{comment\}.*?(?:\\end\{comment\}|\Z)", re.S)
_COND = re.compile(r"\\(iffalse|if[a-zA-Z@]*|fi)(?![a-zA-Z@])")


def strip_comments(tex: str) -> str:
    """`%` comments removed, verbatim text untouched."""
    return _strip(tex)[0]


def count_comments(tex: str) -> int:
    """How many `%` comments the text holds (verbatim and `\%` excluded): 0 after cleaning."""
    return _strip(tex)[1]


def _strip(tex: str) -> tuple[str, int]:
    out: list[str] = []
    found = 0
    verbatim_end: str | None = None
    join_next = False
    for line in tex.splitlines(keepends=True):
        if join_next:
            line = line.lstrip(" \t")
            join_next = False
        if verbatim_end:
            out.append(line)
            if verbatim_end in line:
                verbatim_end = None
            continue
        body, cut = _cut_comment(line)
        m = _BEGIN_VERB.search(body)
        if m and m.group(1) != "comment" and f"\\end{{{m.group(1)}}}" not in body[m.end():]:
            verbatim_end = f"\\end{{{m.group(1)}}}"
            body, cut = line, False  # a comment sign on a \begin{verbatim} line is rare: keep it whole
        found += cut
        if not cut:
            out.append(body)
        elif body.strip():
            out.append(body)
            join_next = True  # TeX also drops the newline and the next line's indentation
        # else: a comment-only line vanishes with its newline
    return "".join(out), found


def _cut_comment(line: str) -> tuple[str, bool]:
    """(line without its comment, whether there was one)."""
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\":
            m = _VERB.match(line, i)
            if m:  # \verb|...| : skip to the closing delimiter
                end = line.find(m.group(1), m.end())
                i = len(line) if end < 0 else end + 1
                continue
            i += 2  # \% and any other escaped character
            continue
        if c == "%":
            return line[:i], True
        i += 1
    return line, False


def strip_comment_envs(tex: str) -> str:
    return _COMMENT_ENV.sub("", tex)


def strip_iffalse(tex: str, warnings: list[str] | None = None) -> str:
    """Remove `\\iffalse … \\fi`, counting the conditionals nested inside. An unclosed block runs to
    the end, as in TeX, and is reported in `warnings`."""
    out, pos = [], 0
    while True:
        start = tex.find("\\iffalse", pos)
        while start >= 0 and re.match(r"[a-zA-Z@]", tex[start + 8:start + 9]):  # \iffalsetrue etc.
            start = tex.find("\\iffalse", start + 8)
        if start < 0:
            out.append(tex[pos:])
            return "".join(out)
        out.append(tex[pos:start])
        depth, end = 0, -1
        for m in _COND.finditer(tex, start):
            depth += -1 if m.group(1) == "fi" else 1
            if depth == 0:
                end = m.end()
                break
        if end < 0:
            if warnings is not None:
                warnings.append(f"\\iffalse at character {start} has no matching \\fi: removed to the end")
            return "".join(out)
        pos = end


def remove_comments(tex: str, warnings: list[str] | None = None) -> str:
    """All three, in the order that keeps each correct: `%` first (a commented `\\fi` does not count)."""
    return strip_iffalse(strip_comment_envs(strip_comments(tex)), warnings)
