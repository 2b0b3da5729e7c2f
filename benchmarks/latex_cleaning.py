"""LaTeX cleaning throughput vs arxiv-latex-cleaner, and .docx → clean LaTeX pages/s. One process, one core.

    .venv/bin/python benchmarks/latex_cleaning.py [--sources 200] [--scale 8] [--specs 10] [--clauses 40]

arXiv side: `--sources` source folders made from the demo source (pipelines/demo/corpus/arxiv), its
sections repeated `--scale` times and each made unique, written to a temporary folder. Both tools
read the same folders from disk, in alternating order over three rounds, best round each: telelake (read_source + clean_latex, whole pipeline) and
arxiv-latex-cleaner (run_arxiv_cleaner, which also writes its output folder). They do different
work: arxiv-latex-cleaner removes comments and unused files for arXiv submission; telelake also
flattens, expands macros, drops floats and commands and unifies citations, so the ratio is what
the extra cleaning costs. Standards side: `--specs` 3GPP-like .docx files with clause 4 repeated
`--clauses` times through clean_standard (pandoc in a subprocess), and `--docs` of them saved as
.doc, which adds LibreOffice; pages counted as 3,000 characters of the unmodified document's text
(the .doc copies lose their equations in LibreOffice's Word 97 export, so their page counts differ).
"""
from __future__ import annotations

import argparse
import logging
import platform
import shutil
import tempfile
import time
from pathlib import Path

from pipelines.demo.corpus import ARXIV_SOURCE
from pipelines.demo.standard_docx import build_docx
from pipelines.latex.archive import read_source
from pipelines.latex.clean import clean_latex
from pipelines.latex.commands import CommandRules
from pipelines.standards.clean import StandardsRules, clean_standard, raw_latex
from pipelines.standards.package import WordFile


def make_sources(root: Path, n: int, scale: int) -> list[Path]:
    intro = (ARXIV_SOURCE / "sections" / "intro.tex").read_text()
    model = (ARXIV_SOURCE / "sections" / "model.tex").read_text()
    out = []
    for i in range(n):
        folder = root / f"2411.{i:05d}"
        shutil.copytree(ARXIV_SOURCE, folder)
        body = "".join(f"% copy {k} of source {i}\n{intro}\n{model}\n" for k in range(scale))
        (folder / "sections" / "intro.tex").write_text(body.replace("\\label{", f"\\label{{s{i}-"))
        out.append(folder)
    return out


def bench_latex(folders: list[Path], rounds: int = 3) -> dict:
    """Both tools in turn, `rounds` times (warm file cache, alternating order); the best round of each."""
    from arxiv_latex_cleaner.arxiv_latex_cleaner import run_arxiv_cleaner
    logging.getLogger().setLevel(logging.ERROR)
    rules = CommandRules.load()

    def ours() -> int:
        return sum(len(clean_latex(read_source(f).files, rules).text) for f in folders)

    def theirs() -> None:
        for f in folders:
            run_arxiv_cleaner({"input_folder": str(f), "resize_images": False, "im_size": 500, "compress_pdf": False,
                               "pdf_im_resolution": 500, "images_allowlist": {}, "commands_to_delete": [],
                               "use_external_tikz": None, "keep_bib": False, "svg_inkscape": None})

    times = {"ours": [], "theirs": []}
    chars = 0
    for r in range(rounds):
        for name, fn in (("ours", ours), ("theirs", theirs)) if r % 2 == 0 else (("theirs", theirs), ("ours", ours)):
            t0 = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - t0)
            chars = out or chars
    ours_s, theirs = min(times["ours"]), min(times["theirs"])
    size = sum(p.stat().st_size for f in folders for p in f.rglob("*.tex"))
    return {"sources": len(folders), "tex_bytes_per_source": size // len(folders), "telelake_s": ours_s,
            "alc_s": theirs, "telelake_docs_s": len(folders) / ours_s, "alc_docs_s": len(folders) / theirs,
            "clean_chars": chars}


def bench_docx(n: int, clauses: int) -> dict:
    rules, latex = StandardsRules.load(), CommandRules.load()
    data = build_docx(clauses=clauses)
    word = WordFile("38331-i40.docx", "docx", data)
    pages = len(raw_latex(word)) / 3000
    t0 = time.perf_counter()
    for _ in range(n):
        result = clean_standard(word, rules, latex)
    took = time.perf_counter() - t0
    assert result.cleaned.clean
    return {"specs": n, "docx_bytes": len(data), "pages_per_spec": pages, "seconds": took,
            "specs_s": n / took, "pages_s": n * pages / took}


def bench_doc(n: int, clauses: int) -> dict | None:
    """The .doc path: LibreOffice headless (.doc → .docx, a fresh process per file) before the rest."""
    import subprocess

    if shutil.which("soffice") is None:
        return None
    rules, latex = StandardsRules.load(), CommandRules.load()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "38331-i40.docx"
        src.write_bytes(build_docx(clauses=clauses))
        subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation={(Path(tmp) / 'p').as_uri()}",
                        "--convert-to", "doc", "--outdir", tmp, str(src)], check=True, capture_output=True)
        word = WordFile("38331-i40.doc", "doc", (Path(tmp) / "38331-i40.doc").read_bytes())
    pages = len(raw_latex(word)) / 3000
    t0 = time.perf_counter()
    for _ in range(n):
        clean_standard(word, rules, latex)
    took = time.perf_counter() - t0
    return {"docs": n, "pages_per_doc": pages, "seconds": took, "pages_s": n * pages / took}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=int, default=200)
    ap.add_argument("--scale", type=int, default=8)
    ap.add_argument("--specs", type=int, default=10)
    ap.add_argument("--clauses", type=int, default=40)
    ap.add_argument("--docs", type=int, default=3, help=".doc files through LibreOffice (0: skip)")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, one process")
    with tempfile.TemporaryDirectory() as tmp:
        r = bench_latex(make_sources(Path(tmp), args.sources, args.scale))
    print(f"LaTeX: {r['sources']} sources, {r['tex_bytes_per_source']:,} bytes of .tex each")
    print(f"  telelake clean_latex      {r['telelake_docs_s']:8.1f} docs/s/core ({r['telelake_s']:.2f} s)")
    print(f"  arxiv-latex-cleaner       {r['alc_docs_s']:8.1f} docs/s/core ({r['alc_s']:.2f} s)")
    print(f"  ratio telelake / alc      {r['telelake_docs_s'] / r['alc_docs_s']:8.2f}x")
    d = bench_docx(args.specs, args.clauses)
    print(f".docx: {d['specs']} specs of {d['docx_bytes']:,} bytes, ~{d['pages_per_spec']:.1f} pages each")
    print(f"  clean_standard            {d['specs_s']:8.2f} specs/s, {d['pages_s']:8.1f} pages/s/core ({d['seconds']:.2f} s)")
    o = bench_doc(args.docs, args.clauses) if args.docs else None
    if o:
        print(f".doc: {o['docs']} files of ~{o['pages_per_doc']:.1f} pages through LibreOffice, then as .docx")
        print(f"  clean_standard (.doc)     {o['pages_s']:8.1f} pages/s/core ({o['seconds']:.2f} s)")


if __name__ == "__main__":
    main()
