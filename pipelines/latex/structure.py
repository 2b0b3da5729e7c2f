"""Citations, references and labels in one form each; the document body without preamble and
back matter; bibliography entries as metadata. Pure.

One form: every citation command (`\\citep[p.~3]{a,b}`, `\\citet*`, `\\parencite`, …) becomes
`\\cite{a,b}`, every reference (`\\eqref`, `\\autoref`, `\\cref`, …) `\\ref{x}`, and labels
`\\label{x}`. The title moves from the preamble to the top; the abstract, headings, text and all
math stay; the preamble, the bibliography and anything after `\\end{document}` go.
"""
from __future__ import annotations

import re

from pipelines.latex.macros import bracket, group

CITE_COMMANDS = ("cite", "citep", "citet", "citealp", "citealt", "citeauthor", "citeyear", "citeyearpar",
                 "citenum", "parencite", "textcite", "autocite", "footcite", "smartcite", "supercite",
                 "fullcite", "Cite", "Citep", "Citet", "Parencite", "Textcite", "Autocite", "citetitle")
REF_COMMANDS = ("ref", "eqref", "autoref", "Autoref", "cref", "Cref", "crefrange", "vref", "Vref", "pageref",
                "nameref", "subref", "labelcref", "cpageref")
_CITE = re.compile(r"\\(" + "|".join(sorted(CITE_COMMANDS, key=len, reverse=True)) + r")\*?(?![a-zA-Z@])")
_REF = re.compile(r"\\(" + "|".join(sorted(REF_COMMANDS, key=len, reverse=True)) + r")\*?(?![a-zA-Z@])")
_LABEL = re.compile(r"\\label(?![a-zA-Z@])")


def _rewrite(tex: str, pattern: re.Pattern, form: str, keys_out: list[str] | None = None) -> str:
    out, pos = [], 0
    for m in pattern.finditer(tex):
        if m.start() < pos:
            continue
        j = m.end()
        while (b := bracket(tex, j)) is not None:  # [pre][post] notes go
            j = b[1]
        g = group(tex, j)
        if g is None:
            continue
        keys = [k.strip() for k in g[0].split(",") if k.strip()]
        if form == "ref" and m.group(1) == "crefrange":  # \crefrange{a}{b}: both ends
            g2 = group(tex, g[1])
            if g2:
                keys.append(g2[0].strip())
                g = g2
        if keys_out is not None:
            keys_out.extend(keys)
        out.append(tex[pos:m.start()])
        out.append(f"\\{form}{{{','.join(keys)}}}")
        pos = g[1]
    out.append(tex[pos:])
    return "".join(out)


def unify_citations(tex: str) -> tuple[str, list[str]]:
    """(text with `\\cite{…}` only, cited keys in order of first use)."""
    keys: list[str] = []
    tex = _rewrite(tex, _CITE, "cite", keys)
    return tex, list(dict.fromkeys(keys))


def unify_references(tex: str) -> str:
    return _rewrite(_rewrite(tex, _REF, "ref"), _LABEL, "label")


_BEGIN_DOC = re.compile(r"\\begin\s*\{document\}")
_END_DOC = re.compile(r"\\end\s*\{document\}")
_BIBLIOGRAPHY = re.compile(r"\\(?:bibliography|printbibliography|addbibresource)(?![a-zA-Z@])\s*(?:\[[^\]]*\])?"
                           r"\s*(?:\{[^{}]*\})?")
_THEBIB = re.compile(r"\\begin\s*\{thebibliography\}.*?(?:\\end\s*\{thebibliography\}|\Z)", re.S)


def document_body(tex: str) -> tuple[str, str | None]:
    """(title + the document body without bibliography, the thebibliography block if any)."""
    begin, end = _BEGIN_DOC.search(tex), None
    preamble, body = (tex[:begin.start()], tex[begin.end():]) if begin else ("", tex)
    end = _END_DOC.search(body)
    if end:
        body = body[:end.start()]
    title = _title(preamble) or _title(body)
    bib = _THEBIB.search(body)
    body = _BIBLIOGRAPHY.sub("", _THEBIB.sub("", body))
    if title and f"\\title{{{title}}}" not in body:
        body = f"\\title{{{title}}}\n" + body
    return body.strip() + "\n", bib.group(0) if bib else None


def _title(tex: str) -> str | None:
    m = re.search(r"\\title(?![a-zA-Z@])\s*(?:\[[^\]]*\])?", tex)
    g = m and group(tex, m.end())
    return g[0].strip() if g else None


_BIBITEM = re.compile(r"\\bibitem\s*(?:\[[^\]]*\])?\s*\{([^{}]+)\}")
_BIBENTRY = re.compile(r"@([a-zA-Z]+)\s*\{\s*([^,\s]+)\s*,")


def bbl_entries(bbl: str) -> list[dict]:
    """{key, text} per `\\bibitem` of a .bbl / thebibliography block."""
    items = list(_BIBITEM.finditer(bbl))
    out = []
    for n, m in enumerate(items):
        end = items[n + 1].start() if n + 1 < len(items) else len(bbl)
        text = re.sub(r"\\end\s*\{thebibliography\}.*", "", bbl[m.end():end], flags=re.S)
        out.append({"key": m.group(1).strip(), "text": " ".join(text.split())[:4000]})
    return out


def bib_entries(bib: str) -> list[dict]:
    """{key, type, title} per entry of a .bib file (best effort, no BibTeX macro expansion)."""
    out = []
    for m in _BIBENTRY.finditer(bib):
        if m.group(1).lower() in ("comment", "preamble", "string"):
            continue
        g = group(bib, m.start() + len(m.group(1)) + 1)
        body = g[0] if g else bib[m.end():m.end() + 4000]
        t = re.search(r"\btitle\s*=\s*", body, re.I)
        title = None
        if t:
            tg = group(body, t.end())
            title = tg[0] if tg else (re.match(r'"([^"]*)"', body[t.end():]) or [None, None])[1]
        out.append({"key": m.group(2), "type": m.group(1).lower(),
                    "text": " ".join(title.replace("{", "").replace("}", "").split()) if title else ""})
    return out
