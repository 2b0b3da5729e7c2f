"""One 3GPP specification (a .doc or .docx) → clean LaTeX and metadata.

.doc → .docx (LibreOffice) → parts read safely → Word XML prepared (fields, cover page, sections,
tables, figures out) → metadata from file name and cover page → pandoc to LaTeX (Office Math
becomes TeX math) → split tokens rejoined, pandoc's escapes tidied → the arXiv LaTeX cleaning.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from pipelines.config import SHIPPED_CONF, read_yaml
from pipelines.latex.archive import ExtractLimits
from pipelines.latex.clean import CleanedLatex, clean_latex
from pipelines.latex.commands import CommandRules
from pipelines.standards.convert import doc_to_docx, docx_to_latex
from pipelines.standards.package import WordFile, check_docx, read_zip, zip_bytes
from pipelines.standards.spec_meta import SpecMeta, from_cover, from_file_name, rejoin_split_tokens
from pipelines.standards.wordxml import Prepared, PrepRules, SectionRule, prepare

DEFAULT_RULES = SHIPPED_CONF / "standards" / "cleaning.yaml"


@dataclass(frozen=True)
class StandardsRules:
    version: str
    prep: PrepRules

    @classmethod
    def load(cls, path: str | Path = DEFAULT_RULES) -> StandardsRules:
        raw = read_yaml(Path(path))
        try:
            sections = tuple(SectionRule(str(s["name"]), re.compile(str(s["pattern"]), re.I))
                             for s in raw.get("drop_sections") or [])
            prep = PrepRules(drop_sections=sections,
                             annex_heading_levels=frozenset(int(x) for x in raw.get("annex_heading_levels", [8, 9])),
                             caption_styles=frozenset(str(x) for x in raw.get("caption_styles", ["TH", "TF"])))
            return cls(version=str(raw["version"]), prep=prep)
        except (KeyError, TypeError, ValueError, re.error) as exc:
            raise ValueError(f"{path}: bad standards cleaning rules ({exc}); see the comments at the top of "
                             "conf/standards/cleaning.yaml for the format") from exc


@dataclass(frozen=True, kw_only=True)
class ConvertLimits:
    doc_timeout_s: float = 120.0
    pandoc_timeout_s: float = 300.0
    extract: ExtractLimits = field(default_factory=lambda: ExtractLimits(max_files=5000, max_ratio=500.0))
    """A .docx is XML compressed ~10-50×; a bomb by far more."""


@dataclass
class CleanedStandard:
    name: str
    meta: SpecMeta
    prepared: Prepared
    cleaned: CleanedLatex
    converted_from_doc: bool = False

    @property
    def text(self) -> str:
        return self.cleaned.text


def docx_of(word: WordFile, limits: ConvertLimits = ConvertLimits()) -> bytes:
    return doc_to_docx(word.data, word.name, limits.doc_timeout_s) if word.kind == "doc" else word.data


def _checked_docx(word: WordFile, limits: ConvertLimits) -> tuple[bytes, dict[str, bytes], dict]:
    """The .docx (after LibreOffice for a .doc), its parts and their parsed XML; refused if unsafe."""
    docx = docx_of(word, limits)
    parts = read_zip(docx, word.name, limits.extract)
    return docx, parts, check_docx(parts, word.name)


def raw_latex(word: WordFile, limits: ConvertLimits = ConvertLimits()) -> str:
    """The document converted as it is, nothing removed: the 'raw' side of the cleanliness measure."""
    docx, _, _ = _checked_docx(word, limits)
    return docx_to_latex(docx, word.name, limits.pandoc_timeout_s)


def clean_standard(word: WordFile, rules: StandardsRules, latex_rules: CommandRules,
                   limits: ConvertLimits = ConvertLimits()) -> CleanedStandard:
    """Raises ArchiveRefused (unsafe or broken file) or ConversionFailed (a converter failed)."""
    _, parts, trees = _checked_docx(word, limits)
    document = trees["word/document.xml"]
    prepared = prepare(document, trees.get("word/styles.xml"), rules.prep)
    meta = from_cover(from_file_name(word.name), prepared.front_matter)
    parts["word/document.xml"] = etree.tostring(document, xml_declaration=True, encoding="UTF-8", standalone=True)
    body = tidy_pandoc(rejoin_split_tokens(docx_to_latex(zip_bytes(parts), word.name, limits.pandoc_timeout_s)))
    tex = latex_document(body, meta)
    cleaned = clean_latex({"main.tex": tex.encode("utf-8")}, latex_rules)
    cleaned.warnings.extend(meta.warnings)
    return CleanedStandard(name=word.name, meta=meta, prepared=prepared, cleaned=cleaned,
                           converted_from_doc=word.kind == "doc")


_PANDOC_ESCAPES = [
    (re.compile(r"\\textquotesingle(?:\{\}|(?![a-zA-Z])\s?)"), "'"),
    (re.compile(r"\\textquotedbl(?:\{\}|(?![a-zA-Z])\s?)"), '"'),
    (re.compile(r"\{\[\}"), "["),
    (re.compile(r"\{\]\}"), "]"),
    (re.compile(r"\\tightlist\b\s*"), ""),
    (re.compile(r"\\def\\LTcaptype\{none\}\s*(?:%[^\n]*)?"), ""),
    (re.compile(r"\s+on\s+page\s*(?=[).,;])"), ""),  # what a removed PAGEREF leaves: "(see 4.1 on page )"
]


def tidy_pandoc(tex: str) -> str:
    """Undo pandoc's protective escapes that carry no meaning in plain text (`{[}1{]}` → `[1]`)."""
    for pattern, repl in _PANDOC_ESCAPES:
        tex = pattern.sub(repl, tex)
    return tex


def latex_document(body: str, meta: SpecMeta) -> str:
    """A standalone document around pandoc's body, titled with the spec, so one cleaner serves both."""
    title = " ".join(x for x in (f"3GPP {meta.source_id}" if meta.spec else meta.file_name,
                                 f"V{meta.version}" if meta.version else "",
                                 f"(Release {meta.release})" if meta.release else "") if x)
    if meta.title:
        title += ": " + meta.title
    title = re.sub(r"([#$%&_{}])", r"\\\1", title)
    return ("\\documentclass{article}\n\\title{" + title + "}\n\\begin{document}\n\\maketitle\n\n"
            + body.strip() + "\n\n\\end{document}\n")
