"""Releases on real gold tables: gate, manifest, idempotency, verify, vacuum, log cleanup, export, diff."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from pipelines import lake
from pipelines.gold.layout import dumps, public_metadata
from pipelines.ingest.parse import utc_now
from pipelines.lake.spark_types import spark_schema
from pipelines.release.create import ReleaseRefused, ReleaseSpec, create_release
from pipelines.release.ops import diff, export, protected_files, read_release, verify
from pipelines.release.store import ReleaseError, list_manifests, read_manifest
from schemas import TELE_DATA
from tests.conftest import ROOT, subprocess_env
from tests.pipelines.gold.conftest import telecom_text

pytestmark = pytest.mark.spark


def gold_rows(start: int, n: int, category: str = "wiki", content=None) -> list[dict]:
    now = utc_now()
    rows = []
    for i in range(start, start + n):
        text = content(i) if content else telecom_text(i + 10_000 * len(category))  # distinct per category
        meta = public_metadata(category, title=f"T{i}", url=f"https://x/{i}", source_id=f"{i}",
                               metadata={"arxiv_id": f"2401.{i:05d}", "abstract": "a", "series": "38",
                                         "release": "18", "file_name": f"38{i:03d}-i40.docx"})
        rows.append({"id": f"{category}_{i}", "category": category, "content": text, "metadata": dumps(meta),
                     "doc_id": hashlib.sha256(f"{category}{i}".encode()).hexdigest()[:32], "source": category,
                     "content_chars": len(text), "tokens": len(text.split()), "lineage": "{}", "assembly": "t",
                     "assembled_at": now})
    return rows


def write_gold(spark, cfg, rows, name, mode="append"):
    df = spark.createDataFrame([tuple(r[f] for f in TELE_DATA.schema.names) for r in rows], spark_schema(TELE_DATA.schema))
    lake.write_dataframe(cfg, df, TELE_DATA, batch=lake.Batch(app_id=f"test.{name}", version=1), mode=mode)


@pytest.fixture
def gold(spark, lake_cfg):
    write_gold(spark, lake_cfg, gold_rows(1, 30) + gold_rows(1, 5, "arxiv") + gold_rows(1, 3, "standard"), "g1")
    return lake_cfg


def test_create_publishes_a_complete_manifest_and_is_idempotent(spark, gold, tmp_path):
    cfg = gold
    r = create_release(spark, cfg, "v1", ReleaseSpec())
    m = r.manifest
    assert r.created and m["name"] == "v1" and m["format"] == "telelake-release/1"
    entry = m["tables"]["gold.tele_data"]
    assert entry["version"] == 0 and entry["rows"] == 38
    for f in entry["files"]:
        data = (tmp_path / "lake" / "gold" / "tele_data" / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["size"]
    assert m["categories"]["wiki"]["rows"] == 30 and m["categories"]["arxiv"]["rows"] == 5
    assert m["categories"]["wiki"]["tokens"] == sum(r["tokens"] for r in gold_rows(1, 30)) > 0
    assert m["suites"][0]["success"] and m["suites"][0]["evaluated"] > 20
    root = tmp_path / "lake" / "_telelake" / "releases" / "v1"
    assert (root / m["suites"][0]["data_docs"]).is_file()
    assert {p.name for p in (root / "report").iterdir()} >= {"report.md", "category_shares.png", "length_histograms.png"}
    assert "| wiki | 30 |" in (root / "report" / "report.md").read_text()
    assert [(p.table, p.version, p.holder) for p in lake.pins(cfg, "gold.tele_data")] == [("gold.tele_data", 0, "release:v1")]
    assert m["code_version"].startswith("0.1.0")

    again = create_release(spark, cfg, "v1", ReleaseSpec())
    assert not again.created and again.manifest == m
    write_gold(spark, cfg, gold_rows(31, 2), "g2")
    with pytest.raises(ReleaseError, match="already exists with other content.*v0 → v1"):
        create_release(spark, cfg, "v1", ReleaseSpec())
    with pytest.raises(ReleaseError, match="release name"):
        create_release(spark, cfg, "../v1", ReleaseSpec())
    assert [x["name"] for x in list_manifests(cfg)] == ["v1"]


def test_a_failing_suite_blocks_the_release_and_leaves_nothing(spark, lake_cfg, tmp_path):
    bad = gold_rows(1, 10) + gold_rows(11, 2, content=lambda i: "\\documentclass{article}\\usepackage{x} " + telecom_text(i))
    bad[3]["id"] = bad[4]["id"]  # duplicate id
    write_gold(spark, lake_cfg, bad, "bad")
    with pytest.raises(ReleaseRefused) as err:
        create_release(spark, lake_cfg, "v1", ReleaseSpec())
    msg = str(err.value)
    assert "expect_column_values_to_be_unique on id" in msg and "has_preamble" in msg
    assert "rows" in msg and "distinct_ids" in msg  # the table-level check fails too
    assert read_manifest(lake_cfg, "v1") is None
    assert lake.pins(lake_cfg, "gold.tele_data") == []
    releases = tmp_path / "lake" / "_telelake" / "releases"
    assert not releases.exists() or list(releases.iterdir()) == []
    assert list((tmp_path / "lake" / "_telelake" / "validations").glob("v1-*/gold.tele_data/gx/uncommitted/data_docs/local_site/index.html"))


def test_empty_and_missing_tables_are_refused(spark, lake_cfg):
    with pytest.raises(ReleaseError, match="does not exist.*telelake assemble"):
        create_release(spark, lake_cfg, "v1", ReleaseSpec())
    write_gold(spark, lake_cfg, gold_rows(1, 3), "g1")
    write_gold(spark, lake_cfg, [], "empty", mode="overwrite")
    with pytest.raises(ReleaseError, match="is empty: a release of an empty table is refused"):
        create_release(spark, lake_cfg, "v1", ReleaseSpec())


def test_verify_names_tampered_and_missing_files(spark, gold, tmp_path):
    m = create_release(spark, gold, "v1", ReleaseSpec()).manifest
    assert verify(gold, "v1") == []
    files = m["tables"]["gold.tele_data"]["files"]
    folder = tmp_path / "lake" / "gold" / "tele_data"
    first = folder / files[0]["path"]
    data = bytearray(first.read_bytes())
    data[100] ^= 0xFF
    first.write_bytes(bytes(data))
    problems = verify(gold, "v1")
    assert problems == [f"gold.tele_data: file {files[0]['path']} changed (sha256 differs from the manifest)"]
    first.unlink()
    assert verify(gold, "v1") == [f"gold.tele_data: file {files[0]['path']} is missing"]
    out = subprocess.run([sys.executable, "-m", "jobs.cli", "release", "verify", "v1", "--set", f"lake.root={gold.root}"],
                         cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and files[0]["path"] in out.stderr


def test_released_files_survive_overwrite_vacuum_and_log_cleanup(spark, gold):
    create_release(spark, gold, "v1", ReleaseSpec())
    before = read_release(gold, "v1", "gold.tele_data").sort_by("id")
    write_gold(spark, gold, gold_rows(100, 4), "replace", mode="overwrite")
    write_gold(spark, gold, gold_rows(200, 4), "more")
    assert lake.vacuum(gold, "gold.tele_data", retention_hours=0, protect=protected_files(gold, "gold.tele_data")) == []
    lake.cleanup_logs(gold, "gold.tele_data", retention_hours=0)
    with pytest.raises(lake.TableNotFoundError):
        lake.load(gold, "gold.tele_data", version=0)  # the log no longer reaches version 0
    deleted = lake.vacuum(gold, "gold.tele_data", retention_hours=0, protect=protected_files(gold, "gold.tele_data"))
    assert deleted == []
    assert verify(gold, "v1") == []
    assert read_release(gold, "v1", "gold.tele_data").sort_by("id").equals(before)
    assert lake.read_arrow(gold, "gold.tele_data").num_rows == 8


def test_export_writes_the_public_layout_and_diff_counts_changes(spark, gold, tmp_path):
    create_release(spark, gold, "v1", ReleaseSpec())
    write_gold(spark, gold, gold_rows(31, 2), "g2")
    create_release(spark, gold, "v2", ReleaseSpec())
    d = diff(gold, "v1", "v2")
    assert d["tables"]["gold.tele_data"]["added"] == 2 and d["tables"]["gold.tele_data"]["removed"] == 0
    assert d["tables"]["gold.tele_data"]["added_ids"] == ["wiki_31", "wiki_32"]
    assert d["categories"]["wiki"]["rows"] == [30, 32]

    export(gold, "v2", tmp_path / "jsonl", "jsonl", rows_per_file=25)
    lines = [json.loads(x) for p in sorted((tmp_path / "jsonl" / "tele_data").glob("*.jsonl"))
             for x in p.read_text().splitlines()]
    assert len(lines) == 40 and len(list((tmp_path / "jsonl" / "tele_data").glob("*.jsonl"))) == 2
    assert all(list(x) == ["id", "category", "content", "metadata"] for x in lines)
    arxiv = next(x for x in lines if x["category"] == "arxiv")
    assert set(arxiv["metadata"]) == {"Arxiv_id", "Title", "Abstract"}
    export(gold, "v2", tmp_path / "pq", "parquet")
    t = pq.read_table(tmp_path / "pq" / "tele_data" / "part-00000.parquet")
    assert t.column_names == ["id", "category", "content", "metadata"] and t.num_rows == 40


@pytest.mark.slow
def test_two_releases_created_concurrently_both_land(gold, tmp_path):
    procs = [subprocess.Popen([sys.executable, "-m", "jobs.cli", "release", "create", name,
                               "--set", f"lake.root={gold.root}", "--set", "spark.driver_memory=1g"],
                              cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(m["name"] for m in list_manifests(gold)) == ["a", "b"]
    assert sorted(p.holder for p in lake.pins(gold, "gold.tele_data")) == ["release:a", "release:b"]
    assert verify(gold, "a") == [] and verify(gold, "b") == []
    assert not [p for p in (tmp_path / "lake" / "_telelake" / "releases").iterdir() if p.name.startswith(".")]
    a, b = (read_manifest(gold, n) for n in ("a", "b"))
    assert a["content_hash"] == b["content_hash"]  # both released the same table version and files
