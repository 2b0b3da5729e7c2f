"""A small 3GPP-like specification as .docx, written for this project (no 3GPP text in it).

It carries what real specifications carry and the standards cleaner must deal with: a cover page
(the version split over several Word runs), a table of contents built from TOC / PAGEREF fields,
Foreword, Scope, References, a clause with inline and display equations (Office Math, OMML), a
table, a figure, a normative annex and two informative annexes (one the change history).
`variant` makes broken copies for tests: an external entity (XXE), a damaged part.
"""
from __future__ import annotations

from xml.sax.saxutils import escape

from pipelines.standards.package import zip_bytes

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
M = "http://schemas.openxmlformats.org/officeDocument/2006/math"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
WP = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
A = "http://schemas.openxmlformats.org/drawingml/2006/main"

_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>
</Types>"""

_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>
</Relationships>"""

_DOC_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>
</Relationships>"""


def _styles() -> str:
    heads = "".join(
        f'<w:style w:type="paragraph" w:styleId="Heading{n}"><w:name w:val="heading {n}"/>'
        f'<w:basedOn w:val="Normal"/><w:pPr><w:outlineLvl w:val="{n - 1}"/></w:pPr></w:style>'
        for n in (1, 2, 8))
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:styles xmlns:w="{W}">'
            '<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/></w:style>'
            f'{heads}</w:styles>')


def _run(text: str, bold: bool = False) -> str:
    props = "<w:rPr><w:b/></w:rPr>" if bold else ""
    return f'<w:r>{props}<w:t xml:space="preserve">{escape(text)}</w:t></w:r>'


def _p(*runs: str, style: str | None = None) -> str:
    props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f"<w:p>{props}{''.join(r if r.startswith('<') else _run(r) for r in runs)}</w:p>"


def _heading(level: int, number: str, title: str) -> str:
    runs = [_run(number), "<w:r><w:tab/></w:r>", _run(title)] if number else [_run(title)]
    return _p(*runs, style=f"Heading{level}")


def _field(instr: str, result: str) -> str:
    """A complex field: begin, instruction, separate, cached result, end."""
    return ('<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
            f'<w:r><w:instrText xml:space="preserve"> {escape(instr)} </w:instrText></w:r>'
            '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
            f'{_run(result)}<w:r><w:fldChar w:fldCharType="end"/></w:r>')


def _toc() -> str:
    """A TOC field spanning paragraphs, its entries holding PAGEREF fields (as Word writes it)."""
    entries = [("Foreword", 5), ("1\tScope", 6), ("2\tReferences", 6), ("4\tLink budget and timers", 7),
               ("Annex C (informative): Change history", 9)]
    out = ['<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
           '<w:r><w:instrText xml:space="preserve"> TOC \\o "1-9" </w:instrText></w:r>'
           '<w:r><w:fldChar w:fldCharType="separate"/></w:r>' + _run("Contents") + "</w:p>"]
    for i, (title, page) in enumerate(entries):
        out.append(_p(_run(title), "<w:r><w:tab/></w:r>", _field(f"PAGEREF _Toc{1000 + i} \\h", str(page))))
    out.append('<w:p><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>')
    return "".join(out)


def _omath(inner: str) -> str:
    return f"<m:oMath>{inner}</m:oMath>"


def _mr(text: str) -> str:
    return f"<m:r><m:t>{escape(text)}</m:t></m:r>"


def _sub(base: str, sub: str) -> str:
    return f"<m:sSub><m:e>{_mr(base)}</m:e><m:sub>{_mr(sub)}</m:sub></m:sSub>"


def _capacity_equation() -> str:
    """C = B log2(1 + S/N), as Word's equation editor stores it."""
    frac = f"<m:f><m:num>{_mr('S')}</m:num><m:den>{_mr('N')}</m:den></m:f>"
    log = (f"<m:func><m:fName>{_sub('log', '2')}</m:fName>"
           f"<m:e><m:d><m:e>{_mr('1+')}{frac}</m:e></m:d></m:e></m:func>")
    return f"<w:p><m:oMathPara>{_omath(_mr('C=B') + log)}</m:oMathPara></w:p>"


def _path_loss_equation() -> str:
    """PL = 32.4 + 20 log10(f_c) + 30 log10(d_3D)."""
    return ("<w:p><m:oMathPara>" + _omath(
        _mr("PL=32.4+20") + _sub("log", "10") + _mr("(") + _sub("f", "c") + _mr(")+30")
        + _sub("log", "10") + _mr("(") + _sub("d", "3D") + _mr(")")) + "</m:oMathPara></w:p>")


def _table(rows: list[list[str]]) -> str:
    cells = "".join("<w:tr>" + "".join(f"<w:tc>{_p(c)}</w:tc>" for c in row) + "</w:tr>" for row in rows)
    return f"<w:tbl><w:tblPr/>{cells}</w:tbl>"


def _figure() -> str:
    return (f'<w:p><w:r><w:drawing><wp:inline><wp:extent cx="100" cy="100"/><wp:docPr id="1" name="Figure 1"/>'
            f'<a:graphic><a:graphicData uri="{A}/picture"/></a:graphic></wp:inline></w:drawing></w:r></w:p>'
            + _p("Figure 4.1-1: Example deployment of cells and beams"))


def document_xml(clauses: int = 1) -> str:
    """The document; `clauses` > 1 repeats clause 4 (for benchmarks: a longer spec of the same shape)."""
    cover = [
        _p(_run("3GPP TS 38.331 "), _run("V1"), _run("8", bold=False), _run("."), _run("4"), _run(".0"),
           _run(" (2024-12)")),
        _p("Technical Specification"),
        _p("3rd Generation Partnership Project; Technical Specification Group Radio Access Network; "
           "NR; Radio link example procedures; Protocol specification"),
        _p("(Release 18)"),
        _p("The present document has been developed within the 3rd Generation Partnership Project and may "
           "be further elaborated for the purposes of 3GPP."),
    ]
    front = [
        _toc(),
        _heading(1, "", "Foreword"),
        _p("This Technical Specification has been produced by the 3rd Generation Partnership Project (3GPP). "
           "Should the TSG modify the contents of the present document, it will be re-released with an "
           "identifying change of release date and an increase in version number."),
        _heading(1, "1", "Scope"),
        _p("The present document specifies example procedures used in this project's demonstration corpus."),
        _heading(1, "2", "References"),
        _p("[1]\t3GPP TR 21.905: \"Vocabulary for 3GPP Specifications\"."),
        _p("[2]\t3GPP TS 38.300: \"NR; NR and NG-RAN Overall Description; Stage 2\"."),
    ]
    clause4 = [
        _heading(1, "4", "Link budget and timers"),
        _heading(2, "4.1", "Link budget"),
        _p("The UE estimates the achievable rate of a carrier of bandwidth B from the measured signal to "
           "noise ratio S/N, with ", "<w:r><w:t xml:space=\"preserve\"> </w:t></w:r>",
           _omath(_mr("S") + _mr("/") + _mr("N")), _run(" taken as a linear ratio:")),
        _capacity_equation(),
        _p("The path loss in an urban macro cell at carrier frequency f_c in GHz and distance d_3D in metres is:"),
        _path_loss_equation(),
        _table([["Parameter", "Value"], ["Carrier frequency", "3.5 GHz"], ["Bandwidth", "100 MHz"]]),
        _p("Table 4.1-1: Example link budget parameters"),
        _figure(),
        _heading(2, "4.2", "Timer T310"),
        _p("Upon detecting radio link problems, the UE starts timer T310 (see clause 4.1 on page ",
           _field("PAGEREF _Ref4711 \\h", "7"), _run("). When T310 expires, the UE initiates the RRC "
                                                     "connection re-establishment procedure specified in TS 38.331 "),
           _run("V1"), _run("8"), _run("."), _run("4.0"), _run(".")),
    ]
    annexes = [
        _heading(8, "", "Annex A (normative):\tTimer values"),
        _p("T310 takes one of the values 0, 50, 100, 200, 500, 1000 or 2000 ms, configured by the network."),
        _heading(8, "", "Annex B (informative):\tDeployment examples"),
        _p("An operator may deploy the procedure of clause 4.2 in dense urban areas first."),
        _heading(8, "", "Annex C (informative):\tChange history"),
        _table([["Date", "Meeting", "CR", "Subject", "New version"],
                ["2024-12", "RAN#106", "1234", "Example correction", "18.4.0"]]),
    ]
    body = front + clause4 * clauses + annexes
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<w:document xmlns:w="{W}" xmlns:m="{M}" xmlns:r="{R}" xmlns:wp="{WP}" xmlns:a="{A}">'
            f'<w:body>{"".join(cover + body)}<w:sectPr/></w:body></w:document>')


def build_docx(variant: str = "ok", clauses: int = 1) -> bytes:
    """The .docx as bytes. `variant`: ok | xxe (document.xml declares an external entity) |
    broken_part (document.xml cut in the middle) | no_document (the main part is missing)."""
    doc = document_xml(clauses)
    if variant == "xxe":
        doc = doc.replace('standalone="yes"?>', 'standalone="no"?><!DOCTYPE w:document '
                          '[<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', 1)
        doc = doc.replace("Technical Specification</w:t>", "Technical Specification &xxe;</w:t>", 1)
    elif variant == "broken_part":
        doc = doc[: len(doc) // 2]
    elif variant != "ok" and variant != "no_document":
        raise ValueError(f"unknown variant {variant!r}: ok, xxe, broken_part or no_document")
    parts = {"[Content_Types].xml": _CONTENT_TYPES, "_rels/.rels": _RELS, "word/_rels/document.xml.rels": _DOC_RELS,
             "word/styles.xml": _styles()}
    if variant != "no_document":
        parts["word/document.xml"] = doc
    return zip_bytes(parts)
