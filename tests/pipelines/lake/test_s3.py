"""The same lake code paths against an S3 endpoint (a local moto server): ingest from s3:// inputs,
keyword job, reads in four engines, history, pins and vacuum."""
import json
import socket
import subprocess
import sys
import time

import pytest

from jobs.ingest import IngestJobConfig
from jobs.ingest import run as run_ingest
from jobs.keyword_filter import KeywordJobConfig
from jobs.keyword_filter import run as run_keywords
from pipelines import config, lake

pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

BUCKET = "telelake-test"


@pytest.fixture(scope="module")
def s3_endpoint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # A separate process: delta-rs holds the GIL during its requests, so a server thread in this
    # interpreter could never answer them.
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    for _ in range(100):
        try:
            client.create_bucket(Bucket=BUCKET)
            break
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.1)
    yield url, client
    server.terminate()
    server.wait(10)


def _storage(url):
    return {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true", "aws_conditional_put": "etag"}


def _upload(client, key, docs):
    body = "".join(json.dumps({"id": i, "url": u, "text": t}) + "\n" for i, u, t in docs)
    client.put_object(Bucket=BUCKET, Key=key, Body=(body + "{not json\n").encode())


def test_ingest_keywords_and_maintenance_on_s3(spark, s3_endpoint, lexicon_path):
    url, client = s3_endpoint
    _upload(client, "raw/part0.jsonl", [("a", "https://x/a", "The gNB and the AMF in 5G NR."),
                                        ("b", "https://en.wikipedia.org/wiki/LTE", "LTE is 4G."),
                                        ("c", "https://x/c", "Cast iron pans need oil.")])
    base = {"lake": {"root": f"s3://{BUCKET}/lake", "storage_options": _storage(url)}}
    ing = config.from_dict(IngestJobConfig, {**base, "ingest": {"source": "web", "category": "web", "format": "jsonl",
                                                                "paths": [f"s3://{BUCKET}/raw"]}})
    kw = config.from_dict(KeywordJobConfig, {**base, "keywords": {"sources": ["web"], "lexicon": lexicon_path}})
    cfg = ing.lake

    s = run_ingest(ing, spark)
    assert (s.read, s.kept, s.n_rejected) == (4, 3, 1)
    rejected = lake.read_arrow(cfg, "quarantine.rejected").to_pylist()
    assert [(r["reason"], r["source_location"]) for r in rejected] == [("malformed_json", "line=4")]
    assert rejected[0]["source_file"].startswith(f"s3://{BUCKET}/raw/part0.jsonl")

    (k,) = run_keywords(kw, spark)          # first scan: read, scan and write in the same tasks
    assert (k.read, k.kept, k.dropped) == (3, 1, {"wikipedia_url": 1, "no_keyword": 1})
    _upload(client, "raw/part1.jsonl", [("d", "https://x/d", "Massive MIMO beamforming for the gNB.")])
    assert run_ingest(ing, spark).kept == 1
    (k2,) = run_keywords(kw, spark)          # incremental: only the new bronze file, anti-joined
    assert (k2.read, k2.kept) == (1, 1)

    ledger = lake.read_arrow(cfg, "silver.keyword_hits")
    assert ledger.num_rows == 4
    assert lake.read_duckdb(cfg, "silver.keyword_hits").aggregate("verdict, count(*)").order("verdict").fetchall() \
        == [("drop", 2), ("keep", 2)]
    assert lake.read_polars(cfg, "bronze.web").collect().height == 4
    assert lake.read_spark(spark, cfg, "bronze.web").count() == 4
    assert lake.read_arrow(cfg, "bronze.web", version=0).num_rows == 3

    assert [h["version"] for h in lake.history(cfg, "bronze.web")] == [1, 0]
    lake.pin(cfg, "bronze.web", 0, holder="release-test")
    assert [p.version for p in lake.pins(cfg, "bronze.web")] == [0]
    orphan = f"{BUCKET}/lake/bronze/web/part-orphan.zstd.parquet"
    client.put_object(Bucket=BUCKET, Key=orphan.split("/", 1)[1], Body=b"half-written")
    removed = lake.vacuum(cfg, "bronze.web", retention_hours=0)
    assert any("part-orphan" in f for f in removed)
    assert lake.read_arrow(cfg, "bronze.web", version=0).num_rows == 3   # the pinned version survives
