"""The LaTeX cleaning pipeline: one arXiv source (its files) → clean LaTeX text and metadata. Pure.

Order (issue 4 / paper §III-A): main file and flattening (comments removed per file on the way),
author macros expanded, floats and uninformative commands removed, citations / references /
labels unified, preamble and back matter dropped. Quality checks are counted on the result:
each must be 0 for a clean document.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipelines.latex.commands import CommandRules, drop_environments, format_commands
from pipelines.latex.comments import count_comments
from pipelines.latex.flatten import Flattened, decode, flatten_source
from pipelines.latex.macros import expand_macros
from pipelines.latex.structure import bbl_entries, bib_entries, document_body, unify_citations, unify_references

DISPLAY_MATH = re.compile(r"\\begin\s*\{(equation|align|gather|multline|eqnarray|displaymath|flalign|alignat)"
                          r"\*?\}|\\\[|\$\$")
_DEFINITION = re.compile(r"\\(?:(?:re)?newcommand|providecommand|DeclareMathOperator|(?:g|e|x)?def\s*\\[a-zA-Z@])"
                         r"(?![a-zA-Z@])")


@dataclass
class CleanedLatex(Flattened):
    """The flattening record (main, included, missing, cycles, warnings) with the clean text."""
    cited: list[str] = field(default_factory=list)
    bibliography: list[dict] = field(default_factory=list)
    """{key, text} from the .bbl / thebibliography, else {key, type, text=title} from .bib files."""
    macros: int = 0
    floats_removed: int = 0
    checks: dict[str, int] = field(default_factory=dict)
    """comments, macro_definitions, unexpanded_macros, floats, display_equations_lost: 0 when clean."""

    @property
    def clean(self) -> bool:
        return not any(self.checks.values())


def clean_latex(files: dict[str, bytes], rules: CommandRules) -> CleanedLatex:
    flat = flatten_source(files)
    expanded = expand_macros(flat.text)
    warnings = flat.warnings + expanded.warnings
    kept_math, floats = drop_environments(expanded.text, rules.drop_environments, warnings)
    text = format_commands(kept_math, rules)
    text, cited = unify_citations(text)
    text = unify_references(text)
    text, thebib = document_body(text)
    text = re.sub(r"\n[ \t]*(?:\n[ \t]*)+", "\n\n", text)  # the removals leave runs of blank lines
    bib = bbl_entries(thebib) if thebib else []
    if not bib:
        for path, data in sorted(files.items()):
            if path.lower().endswith(".bbl"):
                bib += bbl_entries(decode(data))
        if not bib:
            for path, data in sorted(files.items()):
                if path.lower().endswith(".bib"):
                    bib += bib_entries(decode(data))
    author_macros = [re.escape(n) for n in expanded.macros]
    still_used = (len(re.findall(r"\\(?:" + "|".join(author_macros) + r")(?![a-zA-Z@])", text))
                  if author_macros else 0)
    checks = {
        "comments": count_comments(text),
        "macro_definitions": len(_DEFINITION.findall(text)),
        "unexpanded_macros": still_used,
        "floats": sum(len(re.findall(r"\\begin\s*\{" + re.escape(e) + r"\}", text)) for e in rules.drop_environments),
        "display_equations_lost": max(0, len(DISPLAY_MATH.findall(_body_only(kept_math)))
                                      - len(DISPLAY_MATH.findall(text))),
    }
    return CleanedLatex(text=text, main=flat.main, cited=cited, bibliography=bib, included=flat.included,
                        missing=flat.missing, cycles=flat.cycles, macros=len(expanded.macros),
                        floats_removed=floats, warnings=warnings, checks=checks)


def _body_only(tex: str) -> str:
    begin = re.search(r"\\begin\s*\{document\}", tex)
    return tex[begin.end():] if begin else tex
