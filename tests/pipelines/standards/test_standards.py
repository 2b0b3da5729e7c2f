"""3GPP specifications: safe reading, Word XML preparation, metadata, conversion and cleaning."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from pipelines.demo.standard_docx import build_docx
from pipelines.latex.archive import ArchiveRefused, ExtractLimits
from pipelines.latex.commands import CommandRules
from pipelines.standards.clean import ConvertLimits, StandardsRules, clean_standard, raw_latex
from pipelines.standards.convert import ConverterMissing, soffice_path
from pipelines.standards.package import WordFile, read_standard_bytes, zip_bytes
from pipelines.standards.spec_meta import from_cover, from_file_name, rejoin_split_tokens

needs_soffice = pytest.mark.skipif(shutil.which("soffice") is None,
                                   reason="LibreOffice not installed (the README set-up and .ci/run install it)")


@pytest.fixture(scope="module")
def rules():
    return StandardsRules.load(), CommandRules.load()


@pytest.fixture(scope="module")
def demo(rules):
    [word] = read_standard_bytes(build_docx(), "38331-i40.docx")
    return clean_standard(word, *rules)


def test_demo_spec_keeps_clauses_and_equations_and_drops_the_rest(demo):
    text = demo.text
    assert demo.cleaned.checks == {"comments": 0, "macro_definitions": 0, "unexpanded_macros": 0,
                                   "floats": 0, "display_equations_lost": 0}
    # both Office Math display equations came out as TeX math, the inline one too
    assert r"\[C = B\log_{2}\left( 1 + \frac{S}{N} \right)\]" in text
    assert r"30\log_{10}(d_{3D})\]" in text and r"\(S/N\)" in text
    assert r"\section{4 Link budget and timers}" in text and r"\subsection{4.2 Timer T310}" in text
    assert r"\section{Annex A (normative): Timer values}" in text  # normative annex kept, as a section
    for gone in ("Foreword", "Scope", "References", "21.905", "Annex B", "Deployment examples", "Change history",
                 "RAN\\#106", "Contents", "Carrier frequency", "Table 4.1-1", "Figure 4.1-1", "hyperref",
                 "on page", "developed within the 3rd Generation", "longtable"):
        assert gone not in text, gone
    assert "TS 38.331 V18.4.0." in text  # the version split over five Word runs is one token again
    assert [s.split(" (")[-1] for s in demo.prepared.removed_sections] == [
        "foreword)", "scope)", "references)", "informative_annex)", "change_history)"]
    assert demo.prepared.fields_removed == {"TOC": 1, "PAGEREF": 6}
    assert (demo.prepared.tables, demo.prepared.figures) == (2 - 1, 1)  # the change-history table went with its annex


def test_demo_spec_metadata_from_file_name_and_cover(demo):
    m = demo.meta.to_dict()
    assert m == {"file_name": "38331-i40.docx", "series": "38", "spec": "38.331", "spec_type": "TS",
                 "version": "18.4.0", "release": "18", "date": "2024-12",
                 "title": "3rd Generation Partnership Project; Technical Specification Group Radio Access Network; "
                          "NR; Radio link example procedures; Protocol specification"}
    assert demo.meta.source_id == "TS 38.331"
    assert demo.text.startswith(r"\title{3GPP TS 38.331 V18.4.0 (Release 18): 3rd Generation")


@pytest.mark.parametrize("name, spec, spec_type, version, release", [
    ("38331-i40.docx", "38.331", "TS", "18.4.0", "18"),
    ("23501-j00.zip", "23.501", "TS", "19.0.0", "19"),
    ("21905-j00.zip", "21.905", "TR", "19.0.0", "19"),
    ("38901-h00.doc", "38.901", "TR", "17.0.0", "17"),
    ("25101-390", "25.101", "TS", "3.9.0", "1999"),
    ("36523-1-g10.zip", "36.523-1", "TS", "16.1.0", "16"),
    ("38331-190400.docx", "38.331", "TS", "19.4.0", "19"),
])
def test_file_name_metadata(name, spec, spec_type, version, release):
    m = from_file_name(name)
    assert (m.spec, m.spec_type, m.version, m.release, m.warnings) == (spec, spec_type, version, release, [])


def test_unknown_file_name_and_cover_disagreement_are_warnings():
    assert from_file_name("my spec.docx").warnings == [
        "file name 'my spec.docx' is not in 3GPP form SSNNN-VVV (e.g. 38331-i40.docx)"]
    m = from_cover(from_file_name("38331-i40.docx"), "3GPP TS 38.331 V18.5.0 (2025-03)\n(Release 18)")
    assert m.version == "18.5.0" and m.date == "2025-03"
    assert m.warnings == ["version: file name says 18.4.0, cover page says 18.5.0; the cover page wins"]


def test_split_runs_are_rejoined():
    assert rejoin_split_tokens("3GPP TS 38 . 331 V1 8 . 4 . 0 (2024-12)") == "3GPP TS 38.331 V18.4.0 (2024-12)"
    assert rejoin_split_tokens("V18.4.0, values 1 . 2 . 3 and 5 V 1 . 2") == "V18.4.0, values 1 . 2 . 3 and 5 V 1 . 2"
    assert rejoin_split_tokens("x V1 0 . 1 1 . 2") == "x V10.11.2"


def test_a_zip_as_published_holds_the_docx(rules):
    [word] = read_standard_bytes(zip_bytes({"38331-i40.docx": build_docx()}), "38331-i40.zip")
    assert (word.name, word.kind) == ("38331-i40.docx", "docx")
    assert clean_standard(word, *rules).meta.version == "18.4.0"


@pytest.mark.parametrize("variant, reason", [("xxe", "xml_entity"), ("broken_part", "damaged_part"),
                                             ("no_document", "damaged_part")])
@pytest.mark.timeout(60)  # refused within a bounded time, never a hang
def test_hostile_or_broken_docx_is_refused_with_a_reason(rules, variant, reason):
    [word] = read_standard_bytes(build_docx(variant), "38331-i40.docx")
    with pytest.raises(ArchiveRefused) as exc:
        clean_standard(word, *rules)
    assert exc.value.reason == reason
    if variant == "xxe":
        assert "XXE" in exc.value.detail


@pytest.mark.parametrize("data, name, reason", [
    (b"\x00\x01binary junk" * 100, "38331-i40.docx", "not_a_word_file"),
    (zip_bytes({"readme.txt": b"hello"}), "38331-i40.zip", "no_word_document"),
    (zip_bytes({"../../etc/38331-i40.docx": build_docx()}), "38331-i40.zip", "unsafe_path"),
    (b"PK\x03\x04" + b"\x00" * 200, "38331-i40.zip", "damaged_archive"),
])
@pytest.mark.timeout(60)  # refused within a bounded time, never a hang
def test_bad_files_are_refused(data, name, reason):
    with pytest.raises(ArchiveRefused) as exc:
        read_standard_bytes(data, name)
    assert exc.value.reason == reason


@pytest.mark.timeout(60)  # refused within a bounded time, never a hang
def test_zip_bomb_is_refused_before_inflating():
    bomb = zip_bytes({"38331-i40.docx": b"\x00" * (20 << 20)})  # 20 MiB of zeros packs to ~20 KiB
    with pytest.raises(ArchiveRefused) as exc:
        read_standard_bytes(bomb, "bomb.zip", ExtractLimits(max_ratio=100.0))
    assert exc.value.reason == "decompression_limit" and "declared" in exc.value.detail


def test_missing_libreoffice_gives_the_install_command(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("TELELAKE_SOFFICE", raising=False)
    with pytest.raises(ConverterMissing) as exc:
        soffice_path()
    assert "apt-get install" in str(exc.value) and exc.value.reason == "libreoffice_missing"
    monkeypatch.setenv("TELELAKE_SOFFICE", "/nonexistent/soffice")
    with pytest.raises(ConverterMissing, match="not an executable"):
        soffice_path()


@needs_soffice
def test_doc_goes_through_libreoffice(tmp_path, rules):
    (tmp_path / "38331-i40.docx").write_bytes(build_docx())
    subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation={(tmp_path / 'p').as_uri()}",
                    "--convert-to", "doc", "--outdir", str(tmp_path / "doc"), str(tmp_path / "38331-i40.docx")],
                   check=True, capture_output=True, timeout=120)
    [word] = read_standard_bytes((tmp_path / "doc" / "38331-i40.doc").read_bytes(), "38331-i40.doc")
    assert word.kind == "doc"
    result = clean_standard(word, *rules)
    assert result.converted_from_doc and result.meta.version == "18.4.0" and result.meta.release == "18"
    assert r"\subsection{4.2 Timer T310}" in result.text and "Change history" not in result.text


def test_raw_conversion_keeps_everything(rules):
    raw = raw_latex(WordFile("38331-i40.docx", "docx", build_docx()), ConvertLimits())
    assert "Change history" in raw and "Foreword" in raw and "longtable" in raw
