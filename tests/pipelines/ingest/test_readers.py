"""Readers on real files with real defects: every record is a Doc, Reject or Drop with a location."""
import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipelines.ingest.formats import PRESETS
from pipelines.ingest.readers import read_file
from pipelines.ingest.records import Doc, Drop, Limits, Reject, doc_id

GOOD = [{"id": str(i), "text": f"document {i} on LTE", "url": f"https://x/{i}", "lang": "en"} for i in range(3)]


def _jsonl_bytes() -> bytes:
    lines = [json.dumps(r).encode() for r in GOOD]
    lines.insert(1, b'{"id": "broken", "text": ')
    lines.insert(2, b'{"id": "latin1", "text": "caf\xe9"}')
    lines.insert(3, b'{"id": "empty", "text": ""}')
    lines.insert(4, b'{"id": "no-text"}')
    lines.insert(5, b'"just a string"')
    lines.insert(6, b"")
    return b"\n".join(lines) + b"\n"


def _read(fmt, path, limits=Limits()):
    return list(read_file(fmt, str(path), PRESETS[fmt], limits, {}))


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_jsonl_rejects_bad_lines_with_line_numbers(tmp_path, suffix):
    data = _jsonl_bytes()
    if suffix.endswith(".gz"):
        data = gzip.compress(data)
    elif suffix.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    p = tmp_path / f"in{suffix}"
    p.write_bytes(data)
    recs = _read("jsonl", p)
    docs = [r for r in recs if isinstance(r, Doc)]
    rejects = {r.location: r.reason for r in recs if isinstance(r, Reject)}
    assert [d.source_id for d in docs] == ["0", "1", "2"]
    assert docs[0].metadata == {"lang": "en"} and docs[0].url == "https://x/0"
    assert rejects == {"line=2": "malformed_json", "line=3": "invalid_utf8", "line=4": "empty_text",
                       "line=5": "missing_field", "line=6": "not_an_object"}
    assert all(r.raw for r in recs if isinstance(r, Reject))


def test_truncated_gzip_keeps_the_lines_before_the_break(tmp_path):
    lines = b"".join(json.dumps({"text": f"line {i} " + "x" * 200}).encode() + b"\n" for i in range(2000))
    gz = gzip.compress(lines)
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(gz[: len(gz) * 2 // 3])
    recs = _read("jsonl", p)
    docs = [r for r in recs if isinstance(r, Doc)]
    assert isinstance(recs[-1], Reject) and recs[-1].reason == "truncated_file"
    assert recs[-1].location == f"line={len(docs) + 1}"
    assert len(docs) > 500  # most of what was readable is kept
    assert [d.text.split()[1] for d in docs] == [str(i) for i in range(len(docs))]


def test_large_line_is_rejected_not_loaded(tmp_path):
    p = tmp_path / "big.jsonl"
    big = json.dumps({"text": "LTE " * 300_000})
    p.write_text(big + "\n" + json.dumps({"text": "small"}) + "\n")
    recs = _read("jsonl", p, Limits(max_doc_bytes=1_000_000, max_raw_bytes=1000))
    assert isinstance(recs[0], Reject) and recs[0].reason == "document_too_large"
    assert recs[0].raw_bytes == len(big) and len(recs[0].raw) == 1000
    assert isinstance(recs[1], Doc)


def test_parquet_wikipedia_layout_and_missing_text(tmp_path):
    p = tmp_path / "wiki.parquet"
    pq.write_table(pa.table({"id": ["1", "2"], "url": ["u1", "u2"], "title": ["A", "B"],
                             "text": ["LTE article", None]}), p, row_group_size=1)
    recs = _read("wikipedia_parquet", p)
    assert isinstance(recs[0], Doc) and recs[0].title == "A" and recs[0].location == "row_group=0,row=0"
    assert isinstance(recs[1], Reject) and recs[1].reason == "missing_field"
    assert recs[1].location == "row_group=1,row=0"


def test_corrupt_and_truncated_parquet_are_rejected(tmp_path):
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"content": ["a" * 1000] * 100, "url": ["u"] * 100}), p)
    data = p.read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    for name in ("cut.parquet", "junk.parquet"):
        recs = _read("refinedweb_parquet", tmp_path / name)
        assert len(recs) == 1 and recs[0].reason == "corrupt_parquet" and recs[0].location == "file"
    recs = _read("wikipedia_parquet", p)  # has no `text` column
    assert len(recs) == 1 and recs[0].reason == "missing_field" and recs[0].raw_bytes == 100


def _warc(records) -> bytes:
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True)
    for url, status, ctype, body in records:
        rec = w.create_warc_record(url, "response", payload=io.BytesIO(body),
                                   http_headers=StatusAndHeaders(status, [("Content-Type", ctype)], protocol="HTTP/1.1"))
        w.write_record(rec)
    return buf.getvalue()


def test_warc_html_text_drops_and_corruption(tmp_path):
    data = _warc([
        ("https://a/1", "200 OK", "text/html; charset=utf-8", b"<html><title>T</title><body><p>5G NR cells everywhere.</p></body></html>"),
        ("https://a/img", "200 OK", "image/png", b"\x89PNG"),
        ("https://a/404", "404 Not Found", "text/html", b"<p>gone</p>"),
        ("https://a/2", "200 OK", "text/html", "<p>caf\u00e9 LTE</p>".encode("latin-1")),
    ])
    p = tmp_path / "x.warc.gz"
    p.write_bytes(data)
    recs = _read("warc", p)
    assert isinstance(recs[0], Doc) and recs[0].title == "T" and "5G NR" in recs[0].text
    assert recs[0].url == "https://a/1" and recs[0].location == "offset=0"
    assert [type(r) for r in recs[1:3]] == [Drop, Drop]
    assert isinstance(recs[3], Doc) and "café" in recs[3].text  # charset detected, not crashed on
    # a WARC cut inside its last record, or inside that record's headers: earlier records kept,
    # the broken tail quarantined with its offset
    for cut, reason in ((40, "truncated_record"), (120, "corrupt_warc")):
        (tmp_path / "cut.warc.gz").write_bytes(data[: len(data) - cut])
        recs = _read("warc", tmp_path / "cut.warc.gz")
        assert isinstance(recs[0], Doc)
        assert isinstance(recs[-1], Reject) and recs[-1].reason == reason, recs[-1]
        assert recs[-1].location.startswith("offset=")


def test_doc_id_is_stable_over_whitespace_and_source():
    assert doc_id("wiki", "LTE  is\n4G") == doc_id("wiki", " LTE is 4G ")
    assert doc_id("wiki", "LTE") != doc_id("web", "LTE")
    assert len(doc_id("wiki", "x")) == 32
