"""Comment removal and flattening: the first two LaTeX cleaning steps."""
import pytest

from pipelines.latex.comments import remove_comments, strip_comments, strip_iffalse
from pipelines.latex.flatten import NoMainFile, flatten_source


def test_percent_comments_keep_escaped_percent_verbatim_and_tex_line_joining():
    tex = ("% a whole-line comment\n"
           "Throughput rose 40\\% in 5G NR. % trailing remark\n"
           "word% glued\n"
           "   next\n"
           "\\verb|50%| stays; \\\\% after a line break is a comment\n"
           "\\begin{verbatim}\n% literal in verbatim\n\\end{verbatim}\n")
    assert strip_comments(tex) == ("Throughput rose 40\\% in 5G NR. wordnext\n"
                                   "\\verb|50%| stays; \\\\\\begin{verbatim}\n% literal in verbatim\n\\end{verbatim}\n")


def test_comment_environments_and_nested_iffalse():
    tex = ("A \\begin{comment}gone % too\n\\end{comment}B\n"
           "\\iffalse hidden \\ifx\\a\\b inner \\fi still hidden \\fi C\n"
           "% \\fi in a comment does not close anything\n"
           "\\iffalsetrue is another macro D")
    assert remove_comments(tex) == "A B\n C\n\\iffalsetrue is another macro D"
    warnings: list[str] = []
    assert strip_iffalse("keep \\iffalse never closed", warnings) == "keep "
    assert "no matching \\fi" in warnings[0]


def _files(**texts):
    return {k.replace("__", "/").replace("_tex", ".tex").replace("_bbl", ".bbl"): v.encode() for k, v in texts.items()}


def test_main_file_found_and_includes_inlined_in_place():
    files = _files(
        main_tex="\\documentclass{article}\n\\begin{document}\n\\input{sec/intro}\n\\include{body}\n"
                 "\\input sec/extra \n\\bibliography{refs}\\input{main.bbl}\n\\end{document}\n",
        sec__intro_tex="Intro on gNB. % note\n",
        body_tex="Body: \\input{sec/deeper}\n",
        sec__deeper_tex="Deeper text.",
        sec__extra_tex="Extra.",
        main_bbl="\\begin{thebibliography}{1}\\bibitem{a} A.\\end{thebibliography}",
        # another \documentclass file that is only a standalone figure, included by nobody but smaller
        fig_tex="\\documentclass{standalone}\\begin{document}x\\end{document}")
    flat = flatten_source(files)
    assert flat.main == "main.tex" and not flat.missing and not flat.cycles
    assert "Intro on gNB. \n" in flat.text and "Body: Deeper text." in flat.text and "Extra." in flat.text
    assert "\\bibitem{a}" in flat.text and "% note" not in flat.text and "\\input" not in flat.text
    assert flat.included == ["sec/intro.tex", "body.tex", "sec/deeper.tex", "sec/extra.tex", "main.bbl"]


def test_missing_files_cycles_and_subfiles():
    files = _files(
        paper_tex="\\documentclass{article}\\begin{document}\\input{a}\\input{missing}\\subfile{s}\\end{document}",
        a_tex="A \\input{b}", b_tex="B \\input{a}",
        s_tex="\\documentclass[paper]{subfiles}\\begin{document}Sub body.\\end{document}")
    flat = flatten_source(files)
    assert flat.main == "paper.tex"                     # s.tex has \documentclass but is included
    assert "A B " in flat.text and "Sub body." in flat.text and "subfiles" not in flat.text
    assert flat.missing == ["paper.tex: \\input{missing}"] and flat.cycles == ["paper.tex → a.tex → b.tex → a.tex"]


def test_no_main_file_and_bad_bytes():
    with pytest.raises(NoMainFile, match="no .tex file"):
        flatten_source({"fig.png": b"\x89PNG"})
    with pytest.raises(NoMainFile, match="no file with \\\\documentclass among 2"):
        flatten_source(_files(a_tex="x", b_tex="y"))
    assert flatten_source({"only.tex": b"\\section{caf\xe9} \xff"}).text == "\\section{caf\xe9} \xff"  # Latin-1
    with pytest.raises(NoMainFile, match="only.tex is not LaTeX: no LaTeX command"):
        flatten_source({"only.tex": b"just words"})


@pytest.mark.timeout(60)  # a hang, not a speed goal: these take well under a second
def test_pathological_inputs_finish():
    deep = {f"f{i}.tex": f"\\input{{f{i + 1}}}".encode() for i in range(200)}
    deep["f0.tex"] = b"\\documentclass{article}" + deep["f0.tex"]
    flat = flatten_source(deep)
    assert any("deeper than 32" in w for w in flat.warnings)
    braces = "\\documentclass{article}" + "{" * 10_000 + "% x\n" + "}" * 3
    assert "% x" not in flatten_source({"m.tex": braces.encode()}).text


def test_local_packages_are_inlined_once_and_others_kept():
    files = {"main.tex": b"\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage{amsmath,mysyms}\n"
                         b"\\usepackage{mysyms}\n\\begin{document}$\\C^n$\\end{document}\n",
             "mysyms.sty": b"% author macros\n\\RequirePackage{more}\n\\newcommand{\\C}{\\mathbb{C}}\n",
             "more.sty": b"\\RequirePackage{mysyms}\n\\newcommand{\\R}{\\mathbb{R}}\n"}
    flat = flatten_source(files)
    assert flat.included == ["mysyms.sty", "more.sty"] and flat.cycles == []
    assert "\\usepackage[utf8]{inputenc}" in flat.text and "\\usepackage{amsmath}" in flat.text
    assert flat.text.count("\\newcommand{\\C}") == 1 and "\\newcommand{\\R}" in flat.text
    assert "author macros" not in flat.text  # the package's comments went too
