"""The ingest job end to end on local Spark: bad input quarantined, accounting exact, reruns no-ops."""
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.ingest import IngestJobConfig, run
from pipelines import config, lake


def _inputs(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    good = [json.dumps({"id": str(i), "text": f"post {i} about 5G NR handover"}) for i in range(5)]
    dup = json.dumps({"id": "dup", "text": "post 1   about 5G NR handover"})  # same normalized text as post 1
    lines = good + [dup, '{"id": "bad"', json.dumps({"id": "e", "text": ""})]
    (raw / "a.jsonl").write_bytes(("\n".join(lines) + "\n").encode() + b'{"text": "\xff\xfe"}\n')
    gz = gzip.compress(("\n".join(good[:2]) + "\n").encode())
    (raw / "b.jsonl.gz").write_bytes(gz[:-12])  # truncated: both lines readable? no — cut before the trailer
    return raw


def _cfg(tmp_path, raw, **over):
    data = {"lake": {"root": str(tmp_path / "lake")},
            "ingest": {"source": "forum", "category": "web", "format": "jsonl", "paths": [str(raw)], **over}}
    return config.from_dict(IngestJobConfig, data)


def test_ingest_accounts_for_every_record_and_reruns_as_no_op(spark, tmp_path, capsys):
    raw = _inputs(tmp_path)
    cfg = _cfg(tmp_path, raw)
    s = run(cfg, spark)
    assert s.read == s.kept + s.n_dropped + s.n_rejected
    assert s.kept == 5                               # posts 0-4; the copies in b.jsonl.gz and `dup` are duplicates
    assert s.rejected["malformed_json"] == 1 and s.rejected["empty_text"] == 1
    assert s.rejected["invalid_utf8"] == 1 and s.rejected["truncated_file"] == 1
    assert s.dropped["duplicate_doc_id"] == s.read - s.kept - s.n_rejected
    out = capsys.readouterr().out
    assert f"read {s.read} = kept 5 + dropped {s.n_dropped} + rejected {s.n_rejected}" in out

    bronze = lake.read_arrow(cfg.lake, "bronze.forum")
    assert bronze.num_rows == 5 and len(set(bronze.column("doc_id").to_pylist())) == 5
    kept_dup = [r for r in bronze.to_pylist() if r["source_id"] in ("1", "dup")]
    assert [r["source_location"] for r in kept_dup] == ["line=2"]  # first copy by file and line
    rej = lake.read_arrow(cfg.lake, "quarantine.rejected").to_pylist()
    locs = {(r["source_file"].rsplit("/", 1)[1], r["source_location"], r["reason"]) for r in rej}
    assert ("a.jsonl", "line=7", "malformed_json") in locs and ("a.jsonl", "line=9", "invalid_utf8") in locs
    assert all(r["raw"] is not None for r in rej if r["reason"] != "truncated_file")

    versions = {t: lake.load(cfg.lake, t).version() for t in ("bronze.forum", "quarantine.rejected")}
    again = run(cfg, spark)
    assert again.already_committed and (again.read, again.kept) == (s.read, s.kept)
    assert {t: lake.load(cfg.lake, t).version() for t in versions} == versions
    assert lake.read_arrow(cfg.lake, "bronze.forum").num_rows == 5


def test_new_files_add_only_new_documents(spark, tmp_path):
    raw = _inputs(tmp_path)
    cfg = _cfg(tmp_path, raw)
    run(cfg, spark)
    (raw / "c.jsonl").write_text(json.dumps({"text": "post 0 about 5G NR handover"}) + "\n"
                                 + json.dumps({"text": "a new post on O-RAN"}) + "\n")
    s = run(cfg, spark)  # a different input set is a new batch; old docs are duplicates now
    assert s.kept == 1 and not s.already_committed
    assert lake.read_arrow(cfg.lake, "bronze.forum").num_rows == 6
    # rejects of files read before are not quarantined twice
    rej = lake.read_arrow(cfg.lake, "quarantine.rejected")
    assert len(set(rej.column("reject_id").to_pylist())) == rej.num_rows == 4


@pytest.mark.slow
def test_50_mb_document_is_quarantined_and_the_job_goes_on(spark, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    big = "LTE " * (13 * 1024 * 1024)  # 52 MB
    pq.write_table(pa.table({"content": [big, "a small page on Wi-Fi roaming"], "url": ["u1", "u2"]}),
                   raw / "web.parquet")
    cfg = _cfg(tmp_path, raw, format="refinedweb_parquet")
    s = run(cfg, spark)
    assert (s.read, s.kept, s.rejected["document_too_large"]) == (2, 1, 1)
    rej = lake.read_arrow(cfg.lake, "quarantine.rejected").to_pylist()[0]
    assert rej["raw_bytes"] == len(big) and rej["raw_truncated"] and len(rej["raw"]) == 1 << 20
    assert rej["source_location"] == "row_group=0,row=0"
