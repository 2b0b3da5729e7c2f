"""Prepare a specification's WordprocessingML before conversion. Pure (lxml trees in, trees out).

On `word/document.xml`, in this order:
1. field codes: instructions always go; the cached results of TOC, PAGEREF, PAGE, NUMPAGES (page
   numbers, the table of contents) go too; other fields (REF, SEQ, HYPERLINK) keep their result;
2. front matter: everything before the first heading (cover page, copyright, contents) is cut,
   its text kept for the metadata (spec number, version, release, title);
3. sections whose heading matches a rule in conf/standards/cleaning.yaml (foreword, scope,
   references, change history, informative annexes) go with everything up to the next heading
   of the same or a higher level; 3GPP annex headings (styles "heading 8" / "heading 9") count
   as level 1;
4. tables, drawings and embedded pictures go, with their caption paragraphs (3GPP styles TH / TF,
   or text "Table 4.1-1: …" / "Figure 4.1-1: …"); Office Math stays.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
M = "http://schemas.openxmlformats.org/officeDocument/2006/math"
_w = f"{{{W}}}"
DROPPED_FIELDS = frozenset({"TOC", "PAGEREF", "PAGE", "NUMPAGES", "SECTIONPAGES", "TC", "XE", "INDEX"})


@dataclass(frozen=True)
class SectionRule:
    name: str
    pattern: re.Pattern


@dataclass(frozen=True)
class PrepRules:
    drop_sections: tuple[SectionRule, ...] = ()
    annex_heading_levels: frozenset[int] = frozenset({8, 9})
    caption_styles: frozenset[str] = frozenset({"TH", "TF"})
    caption_pattern: re.Pattern = re.compile(r"^\s*(Table|Figure)\s+[A-Z]?[\d.]*\d(-\d+)?\s*:", re.I)


@dataclass
class Prepared:
    front_matter: str = ""
    removed_sections: list[str] = field(default_factory=list)
    fields_removed: dict[str, int] = field(default_factory=dict)
    tables: int = 0
    figures: int = 0
    headings: int = 0


def text_of(el: etree._Element) -> str:
    """Visible text of an element: w:t, tabs as spaces, math text; no field instructions."""
    out = []
    for node in el.iter(f"{_w}t", f"{_w}tab", f"{{{M}}}t", f"{_w}br", f"{_w}cr"):
        if node.tag in (f"{_w}t", f"{{{M}}}t"):
            out.append(node.text or "")
        else:
            out.append(" ")
    return "".join(out)


def heading_levels(styles: etree._Element | None, annex_levels: frozenset[int]) -> dict[str, int]:
    """styleId → heading level, from styles.xml names ("heading 2"); annex levels count as 1."""
    return {sid: (1 if lvl in annex_levels else lvl) for sid, lvl in _word_levels(styles).items()}


def _word_levels(styles: etree._Element | None) -> dict[str, int]:
    levels: dict[str, int] = {}
    if styles is not None:
        for st in styles.iter(f"{_w}style"):
            sid = st.get(f"{_w}styleId") or ""
            name_el = st.find(f"{_w}name")
            name = (name_el.get(f"{_w}val") if name_el is not None else "") or ""
            m = re.fullmatch(r"heading\s*(\d)", name.strip(), re.I)
            if m:
                levels[sid] = int(m.group(1))
    for n in range(1, 10):  # documents without styles.xml: the built-in ids
        levels.setdefault(f"Heading{n}", n)
    return levels


def prepare(document: etree._Element, styles: etree._Element | None, rules: PrepRules) -> Prepared:
    """Rewrite `document` (word/document.xml) in place; return what was removed."""
    out = Prepared()
    body = document.find(f"{_w}body")
    if body is None:
        return out
    _drop_fields(body, out)
    levels = heading_levels(styles, rules.annex_heading_levels)
    _drop_front_and_sections(body, levels, rules, out)
    _annex_headings_as_level_one(body, styles, rules.annex_heading_levels)
    _drop_tables_and_figures(body, rules, out)
    return out


def _style(p: etree._Element) -> str:
    st = p.find(f"{_w}pPr/{_w}pStyle")
    return (st.get(f"{_w}val") if st is not None else "") or ""


def _drop_fields(body: etree._Element, out: Prepared) -> None:
    for simple in list(body.iter(f"{_w}fldSimple")):
        kind = (simple.get(f"{_w}instr") or "").split()[:1]
        kind = kind[0].upper() if kind else ""
        out.fields_removed[kind] = out.fields_removed.get(kind, 0) + 1
        parent = simple.getparent()
        if kind in DROPPED_FIELDS:
            parent.remove(simple)
        else:  # keep the result runs in place of the field
            idx = parent.index(simple)
            for child in list(simple):
                parent.insert(idx, child)
                idx += 1
            parent.remove(simple)
    stack: list[dict] = []  # open complex fields: {"instr": str, "result": bool}
    doomed: list[etree._Element] = []
    touched: set[etree._Element] = set()
    for run in list(body.iter(f"{_w}r")):
        fld = run.find(f"{_w}fldChar")
        instr = run.find(f"{_w}instrText")
        if fld is not None:
            kind = fld.get(f"{_w}fldCharType")
            if kind == "begin":
                stack.append({"instr": "", "result": False})
            elif kind == "separate" and stack:
                stack[-1]["result"] = True
            elif kind == "end" and stack:
                f = stack.pop()
                name = (f["instr"].split()[:1] or [""])[0].upper()
                out.fields_removed[name] = out.fields_removed.get(name, 0) + 1
            doomed.append(run)
            continue
        if instr is not None:
            if stack:
                stack[-1]["instr"] += instr.text or ""
            doomed.append(run)
            continue
        if any(not f["result"] or (f["instr"].split()[:1] or [""])[0].upper() in DROPPED_FIELDS for f in stack):
            doomed.append(run)
    for run in doomed:
        parent = run.getparent()
        if parent is not None:
            touched.add(_paragraph(run))
            parent.remove(run)
    for p in touched:  # paragraphs left with nothing visible (TOC lines) go too
        if p is not None and p.getparent() is not None and not text_of(p).strip() and not _has_math(p):
            p.getparent().remove(p)


def _paragraph(el: etree._Element) -> etree._Element | None:
    while el is not None and el.tag != f"{_w}p":
        el = el.getparent()
    return el


def _has_math(el: etree._Element) -> bool:
    return next(el.iter(f"{{{M}}}oMath"), None) is not None


def _drop_front_and_sections(body: etree._Element, levels: dict[str, int], rules: PrepRules, out: Prepared) -> None:
    children = list(body)
    first_heading = next((i for i, c in enumerate(children) if c.tag == f"{_w}p" and _style(c) in levels), None)
    if first_heading is None:
        return
    out.front_matter = "\n".join(t for c in children[:first_heading] if (t := text_of(c).strip()))
    for c in children[:first_heading]:
        body.remove(c)
    dropping_level: int | None = None
    for c in children[first_heading:]:
        if c.tag == f"{_w}sectPr":
            continue
        level = levels.get(_style(c)) if c.tag == f"{_w}p" else None
        if level is not None:
            out.headings += 1
            if dropping_level is not None and level <= dropping_level:
                dropping_level = None
            if dropping_level is None:
                title = re.sub(r"\s+", " ", text_of(c)).strip()
                rule = next((r for r in rules.drop_sections if r.pattern.search(title)), None)
                if rule is not None:
                    dropping_level = level
                    out.removed_sections.append(f"{title} ({rule.name})")
        if dropping_level is not None:
            body.remove(c)


def _annex_headings_as_level_one(body: etree._Element, styles: etree._Element | None, annex: frozenset[int]) -> None:
    """Converters map only heading levels 1-6; an annex title (level 8/9) becomes a level-1 heading."""
    word = _word_levels(styles)
    top = next((sid for sid, lvl in sorted(word.items()) if lvl == 1), "Heading1")
    for st in body.iter(f"{_w}pStyle"):
        if word.get(st.get(f"{_w}val") or "") in annex:
            st.set(f"{_w}val", top)


def _drop_tables_and_figures(body: etree._Element, rules: PrepRules, out: Prepared) -> None:
    for tbl in list(body.iter(f"{_w}tbl")):
        if tbl.getparent() is not None:
            out.tables += 1
            tbl.getparent().remove(tbl)
    for tag in (f"{_w}drawing", f"{_w}pict", f"{_w}object"):
        for el in list(body.iter(tag)):
            if el.getparent() is None or _has_math(el):
                continue
            out.figures += 1
            p = _paragraph(el)
            el.getparent().remove(el)
            if p is not None and p.getparent() is not None and not text_of(p).strip() and not _has_math(p):
                p.getparent().remove(p)
    for p in list(body.iter(f"{_w}p")):
        if p.getparent() is None:
            continue
        if _style(p) in rules.caption_styles or rules.caption_pattern.match(text_of(p)):
            p.getparent().remove(p)
