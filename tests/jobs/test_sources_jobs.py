"""arXiv and 3GPP sources end to end in local Spark: ingest → bronze, clean → silver.cleaned, measure."""
from __future__ import annotations

import io
import json
import tarfile

import pytest

from jobs.cli import main as cli
from pipelines import lake
from pipelines.demo.corpus import ARXIV_SOURCE, arxiv_tarball, materialize, tar_gz
from pipelines.demo.standard_docx import build_docx
from pipelines.standards.package import zip_bytes
from pipelines.sources.clean_stage import CleanSpec, run_clean
from pipelines.sources.ingest import SourcesSpec, arxiv_id, run_sources_ingest
from pipelines.sources.measure_stage import MeasureSpec, run_measure

pytestmark = pytest.mark.spark


@pytest.fixture
def raw(tmp_path):
    raw = materialize(tmp_path / "raw")
    arxiv = raw["arxiv"]
    (arxiv / "2411.00001.tex").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)  # junk named .tex
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("figs/logo.pdf")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    (arxiv / "2411.00002.tar").write_bytes(buf.getvalue())
    (arxiv / "2411.00003.tar.gz").write_bytes(tar_gz({"main.tex": b"\\documentclass{article}\\begin{document}"
                                                        + b"{" * 10000 + b"x" + b"}" * 9000 + b"\\end{document}"}))
    (raw["standards"] / "38000-i00.zip").write_bytes(zip_bytes({"38000-i00.docx": b"\x00" * (64 << 20)}))
    # as 3GPP publishes: a zip of the docx
    (raw["standards"] / "38300-i10.zip").write_bytes(zip_bytes({"38300-i10.docx": build_docx()}))
    return raw


def _specs(raw):
    return (SourcesSpec(source="arxiv", kind="arxiv", paths=[str(raw["arxiv"])],
                        listing=str(raw["arxiv_listing"] / "listing.jsonl")),
            SourcesSpec(source="standards", kind="standards", paths=[str(raw["standards"])]))


def test_ingest_clean_and_rerun(spark, lake_cfg, raw):
    arxiv, standards = _specs(raw)
    a = run_sources_ingest(spark, lake_cfg, arxiv)
    assert (a.read, a.kept, dict(a.rejected)) == (5, 3, {"unsafe_path": 1, "unsafe_link": 1}), a.to_json()
    s = run_sources_ingest(spark, lake_cfg, standards)
    assert (s.read, s.kept, dict(s.rejected)) == (4, 3, {"decompression_limit": 1})
    again = run_sources_ingest(spark, lake_cfg, arxiv)
    assert again.already_committed and again.kept == 3

    bronze = {r["source_id"]: r for r in lake.read_arrow(lake_cfg, "bronze.arxiv_sources").to_pylist()}
    demo = bronze["2411.01234"]
    assert demo["title"] == "Beam Management for NR Massive MIMO in the Upper Mid-Band"
    assert json.loads(demo["metadata"])["categories"] == "eess.SP cs.NI"
    assert sorted(f["path"] for f in demo["files"]) == ["macros.tex", "main.tex", "refs.bib", "sections/intro.tex",
                                                        "sections/model.tex"]
    rejected = {r["reason"]: r for r in lake.read_arrow(lake_cfg, "quarantine.rejected").to_pylist()}
    assert rejected["unsafe_path"]["source_file"].endswith("2411.09999.tar.gz")
    assert rejected["unsafe_link"]["detail"] == "figs/logo.pdf links to '/etc/passwd', outside the source"
    assert rejected["decompression_limit"]["source_file"].endswith("38000-i00.zip")

    c = run_clean(spark, lake_cfg, CleanSpec(source="arxiv", kind="latex", min_chars=200))
    assert c.read == 3 and c.kept + c.n_dropped == 2 and dict(c.rejected) == {"no_main_file": 1}, c.to_json()
    cs = run_clean(spark, lake_cfg, CleanSpec(source="standards", kind="standards", min_chars=200))
    assert (cs.read, cs.kept, dict(cs.rejected)) == (3, 2, {"xml_entity": 1})
    assert run_clean(spark, lake_cfg, CleanSpec(source="standards", kind="standards", min_chars=200)).already_committed

    rows = {r["source_id"]: r for r in lake.read_arrow(lake_cfg, "silver.cleaned").to_pylist()}
    paper = rows["2411.01234"]
    assert paper["verdict"] == "keep" and set(paper["checks"].values()) == {0}
    assert "\\begin{equation}" in paper["text"] and "% TODO" not in paper["text"]
    assert paper["cited"][:2] == ["dahlman2020", "3gpp38213"] and json.loads(paper["bibliography"])
    spec = rows["TS 38.331"]
    meta = json.loads(spec["metadata"])
    assert (meta["version"], meta["release"], spec["category"]) == ("18.4.0", "18", "standard")
    assert "Foreword (foreword)" in meta["cleaning"]["sections_removed"]
    zipped = [r for r in lake.read_arrow(lake_cfg, "silver.cleaned").to_pylist()
              if json.loads(r["metadata"]).get("file_name") == "38300-i10.docx"]
    assert len(zipped) == 1 and zipped[0]["verdict"] == "keep"  # the copy inside a .zip, named 38.300
    assert "spec: file name says 38.300, cover page says 38.331; the cover page wins" in \
        json.loads(zipped[0]["metadata"])["cleaning"]["warnings"]
    deep = rows["2411.00003"]  # 10,000-deep braces, unbalanced: best effort, bounded, kept or dropped with reason
    assert deep["verdict"] in ("keep", "drop") and deep["text_chars"] > 0
    reasons = {r["source_location"].split("=")[0] + ":" + r["reason"] for r in
               lake.read_arrow(lake_cfg, "quarantine.rejected").to_pylist() if r["job"] == "clean"}
    assert reasons == {"doc_id:no_main_file", "doc_id:xml_entity"}


def test_measure_writes_report_and_plots(spark, lake_cfg, tmp_path):
    raw = materialize(tmp_path / "raw")
    arxiv, standards = _specs(raw)
    for spec in (arxiv, standards):
        run_sources_ingest(spark, lake_cfg, spec)
    run_clean(spark, lake_cfg, CleanSpec(source="arxiv", kind="latex"))
    run_clean(spark, lake_cfg, CleanSpec(source="standards", kind="standards"))
    result = run_measure(lake_cfg, MeasureSpec(out=str(tmp_path / "m"), chunk_tokens=128))
    assert result.documents == 2
    for stats in (result.raw, result.cleaned):
        assert stats.tokens > 500 and stats.chunks >= 4
        assert 0.08 <= stats.tail_tokens / stats.tokens <= 0.15  # the hardest ~10%
        assert stats.tail_mean > stats.tau > stats.mean_all > 0
    assert result.raw.tokens > result.cleaned.tokens  # preamble, comments, floats and boilerplate are gone
    for p in result.plots:
        assert (tmp_path / "m" / p).read_bytes()[:4] == b"\x89PNG"
    report = (tmp_path / "m" / "report.md").read_text()
    assert "| raw |" in report and "| cleaned |" in report and "![tails_overlay.png]" in report
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["documents"] == 2


def test_cli_prints_one_cleaned_document(tmp_path, capsys):
    (tmp_path / "2411.01234.tar.gz").write_bytes(arxiv_tarball(ARXIV_SOURCE))
    (tmp_path / "38331-i40.docx").write_bytes(build_docx())
    assert cli(["clean", "latex", str(tmp_path / "2411.01234.tar.gz")]) == 0
    assert "\\section{Introduction}" in capsys.readouterr().out
    assert cli(["clean", "standards", str(tmp_path / "38331-i40.docx"), "--report"]) == 0
    out = capsys.readouterr()
    assert "\\subsection{4.2 Timer T310}" in out.out and '"sections_removed"' in out.err
    (tmp_path / "bad.docx").write_bytes(build_docx("xxe"))
    assert cli(["clean", "standards", str(tmp_path / "bad.docx")]) == 1
    assert "xml_entity" in capsys.readouterr().err
    assert cli(["clean", "latex"]) == 1  # neither a PATH nor --conf: says what to give
    assert "needs a PATH" in capsys.readouterr().err
    assert cli(["clean", "latex", "--conf", "conf/clean/standards.yaml"]) == 1
    assert "cleans kind 'standards', not 'latex'" in capsys.readouterr().err


def test_arxiv_ids_from_file_names():
    assert arxiv_id("/x/2411.01234v2.tar.gz") == "2411.01234v2"
    assert arxiv_id("hep-th9901001.gz") == "hep-th/9901001"
    assert arxiv_id("/data/2411.01234/") == "2411.01234"


def test_source_listing_rules(tmp_path):
    from pipelines.sources.ingest import list_sources

    (tmp_path / "a" / "paper").mkdir(parents=True)           # a source folder: .tex, no archives
    (tmp_path / "a" / "paper" / "main.tex").write_text("\\documentclass{article}")
    (tmp_path / "a" / "paper" / "intro.tex").write_text("x")
    (tmp_path / "a" / "2401.00002.gz").write_bytes(b"")        # single-file source, gzipped
    (tmp_path / "a" / "2401.00003.tar.gz").write_bytes(b"")
    (tmp_path / "a" / "notes.md").write_text("ignored")
    found = [f.path for f in list_sources(SourcesSpec(source="x", kind="arxiv", paths=[str(tmp_path / "a")]), {})]
    assert [p.rsplit("/", 1)[1] for p in found] == ["2401.00002.gz", "2401.00003.tar.gz", "paper"]
    (tmp_path / "s").mkdir()
    for name in ("38331-i40.zip", "38300-i00.docx", "21905-j00.doc", "readme.txt"):
        (tmp_path / "s" / name).write_bytes(b"")
    found = list_sources(SourcesSpec(source="y", kind="standards", paths=[str(tmp_path / "s")]), {})
    assert sorted(f.path.rsplit("/", 1)[1] for f in found) == ["21905-j00.doc", "38300-i00.docx", "38331-i40.zip"]
    with pytest.raises(FileNotFoundError, match="no standards sources"):
        list_sources(SourcesSpec(source="y", kind="standards", paths=[str(tmp_path / "a")]), {})


def test_parquet_listing_matches_ids_without_version(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.sources.ingest import read_listing

    pq.write_table(pa.table({"id": ["2411.01234", "2411.05555", "hep-th/9901001"], "title": ["A", "B", "C"],
                             "abstract": ["a", None, "c"]}), tmp_path / "listing.parquet")
    got = read_listing(str(tmp_path / "listing.parquet"), {"2411.01234v2", "hep-th/9901001"})
    assert got == {"2411.01234": {"id": "2411.01234", "title": "A", "abstract": "a"},
                   "hep-th/9901001": {"id": "hep-th/9901001", "title": "C", "abstract": "c"}}
    (tmp_path / "bad.jsonl").write_text('{"arxiv": "1"}\n')
    with pytest.raises(ValueError, match="no `id` column"):
        read_listing(str(tmp_path / "bad.jsonl"), {"1"})


@pytest.mark.slow
def test_clean_killed_between_its_two_commits_reruns_without_loss(spark, lake_cfg, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT, subprocess_env

    raw = materialize(tmp_path / "raw")
    run_sources_ingest(spark, lake_cfg, _specs(raw)[1])
    conf = tmp_path / "clean.yaml"
    conf.write_text(f"lake: {{root: {lake_cfg.root}}}\nclean: {{source: standards, kind: standards, min_chars: 200}}\n")
    env = subprocess_env(TELELAKE_FAILPOINT="lake.after_commit")  # dies after silver.cleaned, before quarantine
    killed = subprocess.run([sys.executable, "-m", "jobs.clean", "--conf", str(conf)], capture_output=True,
                            text=True, env=env, cwd=ROOT, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert lake.read_arrow(lake_cfg, "silver.cleaned").num_rows == 1
    done = subprocess.run([sys.executable, "-m", "jobs.clean", "--conf", str(conf)], capture_output=True,
                          text=True, env=subprocess_env(), cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "clean standards standards: read 2 = kept 1 + dropped 0 + rejected 1" in done.stdout
    assert lake.read_arrow(lake_cfg, "silver.cleaned").num_rows == 1  # not written twice
    rejected = lake.read_arrow(lake_cfg, "quarantine.rejected").to_pylist()
    assert [r["reason"] for r in rejected if r["job"] == "clean"] == ["xml_entity"]


def test_clean_stops_with_the_install_command_when_libreoffice_is_missing(spark, lake_cfg, tmp_path, monkeypatch):
    import subprocess
    import shutil

    if shutil.which("soffice") is None:
        pytest.skip("LibreOffice not installed (the README set-up and .ci/run install it)")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "38331-i40.docx").write_bytes(build_docx())
    subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation={(tmp_path / 'p').as_uri()}",
                    "--convert-to", "doc", "--outdir", str(tmp_path / "raw"), str(tmp_path / "in" / "38331-i40.docx")],
                   check=True, capture_output=True, timeout=120)
    s = run_sources_ingest(spark, lake_cfg, SourcesSpec(source="specs", kind="standards", paths=[str(tmp_path / "raw")]))
    assert s.kept == 1
    monkeypatch.setenv("TELELAKE_SOFFICE", str(tmp_path / "no-soffice"))
    with pytest.raises(FileNotFoundError, match="bronze.specs_sources holds .doc files: TELELAKE_SOFFICE="):
        run_clean(spark, lake_cfg, CleanSpec(source="specs", kind="standards"))
    monkeypatch.delenv("TELELAKE_SOFFICE")
    done = run_clean(spark, lake_cfg, CleanSpec(source="specs", kind="standards", min_chars=200))
    assert (done.read, done.kept) == (1, 1)
    row = lake.read_arrow(lake_cfg, "silver.cleaned").to_pylist()[0]
    assert json.loads(row["metadata"])["cleaning"]["converted_from_doc"] is True
