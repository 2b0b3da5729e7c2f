"""The whole LaTeX cleaning on the project's arXiv fixture, packed as arXiv ships it, and bad sources."""
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pipelines.latex.archive import read_source_bytes
from pipelines.latex.flatten import NoMainFile
from pipelines.latex.clean import DISPLAY_MATH, clean_latex
from pipelines.latex.commands import CommandRules
from tests.conftest import ROOT, subprocess_env

FIXTURE = ROOT / "pipelines" / "demo" / "corpus" / "arxiv" / "2411.01234"


def _targz(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for f in sorted(folder.rglob("*")):
            tf.add(f, arcname=f.relative_to(folder).as_posix(), recursive=False)
    return buf.getvalue()


@pytest.fixture(scope="module")
def rules():
    return CommandRules.load()


def test_fixture_comes_out_clean_with_its_math_and_metadata(rules):
    src = read_source_bytes(_targz(FIXTURE), "2411.01234.tar.gz")
    r = clean_latex(src.files, rules)
    assert r.checks == {"comments": 0, "macro_definitions": 0, "unexpanded_macros": 0, "floats": 0,
                        "display_equations_lost": 0} and r.clean
    assert r.main == "main.tex" and r.included == ["macros.tex", "sections/intro.tex", "sections/model.tex"]
    assert r.macros == 7 and r.floats_removed == 2 and not (r.missing or r.cycles or r.warnings)
    text = r.text
    assert text.startswith("\\title{Beam Management for 5G NR Massive MIMO in the Upper Mid-Band}\n")
    assert "\\begin{abstract}" in text and "24\\,GHz, and show a 40\\% reduction" in text
    assert "\\documentclass" not in text and "\\usepackage" not in text and "Anything after" not in text
    assert "older abstract" not in text and "Reviewer notes" not in text and "TODO" not in text
    assert "includegraphics" not in text and "tabular" not in text and "\\vspace" not in text
    assert "\\operatorname*{arg\\,max}" in text and "\\mathrm{SNR}_{j}^{(\\mathbf{w})}" in text
    assert "post-combining SNR" in text                                       # \textbf / \emph unwrapped
    assert "\\cite{heath2016}" in text and "\\cite{giordani2019}" in text and "\\citep" not in text
    assert "\\ref{eq:rx}" in text and "\\ref{tab:overhead}" in text and "\\eqref" not in text
    assert len(DISPLAY_MATH.findall(text)) == 3                               # equation, align, \[ \]
    assert r.cited == ["dahlman2020", "3gpp38213", "heath2016", "giordani2019"]
    assert [b["key"] for b in r.bibliography] == r.cited
    assert r.bibliography[2]["text"].startswith("An Overview of Signal Processing")


def test_thebibliography_in_the_text_becomes_metadata(rules):
    tex = (b"\\documentclass{article}\\begin{document}See \\cite{a}.\\begin{thebibliography}{9}"
           b"\\bibitem{a} A. Author, \\emph{A paper}, 2020.\\end{thebibliography}\\end{document}")
    r = clean_latex({"p.tex": tex}, rules)
    assert r.text == "See \\cite{a}.\n"
    assert r.bibliography == [{"key": "a", "text": "A. Author, A paper, 2020."}]  # formatting unwrapped there too


@pytest.mark.timeout(120)  # bad input must end, not hang
@pytest.mark.parametrize("files", [
    {"m.tex": b"\\documentclass{article}\\begin{document}" + b"{" * 5000 + b"x\\end{document}"},   # unbalanced
    {"m.tex": b"\\documentclass{article}\\newcommand{\\a}{\\a x}\\begin{document}\\a\\end{document}"},
    {"m.tex": b"\\documentclass{article}\\begin{document}\\input{gone}\\end{document}"},
    {"m.tex": b"\\documentclass{article}" + b"\\begin{itemize}" * 10_000},                      # deep nesting
])
def test_bad_sources_give_best_effort_output(rules, files):
    r = clean_latex(files, rules)
    assert isinstance(r.text, str)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("files, why", [
    ({"m.tex": bytes(range(256)) * 200}, "control characters"),                                 # binary junk
    ({"notlatex.tex": b"PK\x03\x04 this is a zip file named .tex"}, "no LaTeX command"),
])
def test_non_latex_named_tex_is_refused_with_the_reason(rules, files, why):
    with pytest.raises(NoMainFile, match=why):
        clean_latex(files, rules)


def test_cli_prints_one_cleaned_document_and_refuses_unsafe_archives(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "jobs.cli", "clean", "latex", str(FIXTURE), "--report"],
                        capture_output=True, text=True, env=subprocess_env(), timeout=120, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert ok.stdout.startswith("\\title{Beam Management") and '"display_equations_lost": 0' in ok.stderr
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tf:
        info = tarfile.TarInfo("../escape.tex")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    bad = subprocess.run([sys.executable, "-m", "jobs.cli", "clean", "latex", str(evil)],
                         capture_output=True, text=True, env=subprocess_env(), timeout=120, cwd=ROOT)
    assert bad.returncode == 1 and "refused: unsafe_path" in bad.stderr and not bad.stdout
