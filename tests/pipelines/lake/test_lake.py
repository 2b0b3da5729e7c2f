"""The lake layer on real Delta tables: write, read in four engines, idempotency, contracts, vacuum."""
import datetime as dt
import json
import os
import time

import pyarrow as pa
import pytest

from pipelines import lake
from pipelines.lake.spark_types import spark_schema
from schemas import REJECTED, SchemaMismatchError, TableContract

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)


def rows(n, job="ingest", start=0):
    return [(f"r{i}", job, "src", "b1", "f.jsonl", f"line={i}", "malformed_json", "bad", b"{", 1, False, NOW)
            for i in range(start, start + n)]


def df_of(spark, data):
    return spark.createDataFrame(data, spark_schema(REJECTED.schema))


def test_write_then_read_in_every_engine(spark, lake_cfg):
    res = lake.write_dataframe(lake_cfg, df_of(spark, rows(6) + rows(4, job="keywords", start=6)),
                               REJECTED, batch=lake.Batch("t", 1))
    assert (res.version, res.rows, res.skipped) == (0, 10, False)
    arrow = lake.read_arrow(lake_cfg, "quarantine.rejected")
    assert sorted(arrow.column("reject_id").to_pylist()) == sorted(f"r{i}" for i in range(10))
    assert arrow.schema.field("rejected_at").type == pa.timestamp("us", tz="UTC")
    assert lake.read_arrow(lake_cfg, "quarantine.rejected").column("rejected_at")[0].as_py() == NOW
    duck = lake.read_duckdb(lake_cfg, "quarantine.rejected").aggregate("job, count(*) AS n").order("job").fetchall()
    assert duck == [("ingest", 6), ("keywords", 4)]
    pol = lake.read_polars(lake_cfg, "quarantine.rejected").collect()
    assert pol.height == 10
    sdf = lake.read_spark(spark, lake_cfg, "quarantine.rejected")
    assert sorted(r.job for r in sdf.collect()) == ["ingest"] * 6 + ["keywords"] * 4
    # partition folders and a Delta log a Spark connector can read: protocol (1, 2)
    p = lake.load(lake_cfg, "quarantine.rejected").protocol()
    assert (p.min_reader_version, p.min_writer_version) == (1, 2)
    assert os.path.isdir(os.path.join(lake_cfg.root, "quarantine", "rejected", "job=ingest"))


def test_stats_cover_small_columns_not_text(spark, lake_cfg):
    from schemas import bronze_contract
    contract = bronze_contract("t")
    row = {"doc_id": "d1", "source": "t", "category": "web", "source_id": None, "url": None, "title": None,
           "text": "x" * 500, "text_chars": 500, "metadata": "{}", "source_file": "f",
           "source_location": "line=1", "ingest_batch": "b", "ingested_at": NOW}
    df = spark.createDataFrame([row], spark_schema(contract.schema))
    lake.write_dataframe(lake_cfg, df, contract, batch=lake.Batch("s", 1))
    log = os.path.join(lake_cfg.root, "bronze", "t", "_delta_log", "00000000000000000000.json")
    adds = [json.loads(line)["add"] for line in open(log) if '"add"' in line]
    stats = json.loads(adds[0]["stats"])
    assert stats["numRecords"] == 1
    assert stats["minValues"]["text_chars"] == 500 and stats["minValues"]["doc_id"] == "d1"
    assert "text" not in stats["minValues"] and "text" not in stats["nullCount"]
    assert stats["minValues"]["ingested_at"] == "2026-11-23T12:00:00.000Z"


def test_rerun_of_a_committed_batch_is_a_no_op(spark, lake_cfg):
    df = df_of(spark, rows(5))
    first = lake.write_dataframe(lake_cfg, df, REJECTED, batch=lake.Batch("job-a", 3))
    again = lake.write_dataframe(lake_cfg, df, REJECTED, batch=lake.Batch("job-a", 3))
    older = lake.write_dataframe(lake_cfg, df, REJECTED, batch=lake.Batch("job-a", 2))
    assert again.skipped and older.skipped and again.version == first.version == 0
    assert lake.read_arrow(lake_cfg, "quarantine.rejected").num_rows == 5
    nxt = lake.write_dataframe(lake_cfg, df_of(spark, rows(2, start=5)), REJECTED, batch=lake.Batch("job-a", 4))
    assert (nxt.version, nxt.skipped) == (1, False)
    assert lake.load(lake_cfg, "quarantine.rejected").transaction_version("job-a") == 4


def test_mismatched_append_is_refused_with_a_clear_error(spark, lake_cfg):
    lake.write_dataframe(lake_cfg, df_of(spark, rows(1)), REJECTED, batch=lake.Batch("x", 1))
    changed = TableContract(name="quarantine.rejected", schema=REJECTED.schema.append(pa.field("extra", pa.int64())),
                            key=("reject_id",), partition_by=("job",), description="changed")
    df = spark.createDataFrame([r + (1,) for r in rows(1)], spark_schema(changed.schema))
    with pytest.raises(SchemaMismatchError, match="column 'extra' missing from the table"):
        lake.write_dataframe(lake_cfg, df, changed, batch=lake.Batch("x", 2))
    # and a DataFrame that does not match the contract never launches tasks
    with pytest.raises(SchemaMismatchError, match="'reason'.*missing"):
        lake.write_dataframe(lake_cfg, df_of(spark, rows(1)).drop("reason"), REJECTED, batch=lake.Batch("x", 3))
    assert lake.load(lake_cfg, "quarantine.rejected").version() == 0


def test_time_travel_by_version_and_timestamp(spark, lake_cfg):
    lake.write_dataframe(lake_cfg, df_of(spark, rows(3)), REJECTED, batch=lake.Batch("tt", 1))
    time.sleep(1.1)
    between = dt.datetime.now(dt.timezone.utc)
    time.sleep(1.1)
    lake.write_dataframe(lake_cfg, df_of(spark, rows(2, start=3)), REJECTED, batch=lake.Batch("tt", 2))
    assert lake.read_arrow(lake_cfg, "quarantine.rejected").num_rows == 5
    assert lake.read_arrow(lake_cfg, "quarantine.rejected", version=0).num_rows == 3
    assert lake.read_arrow(lake_cfg, "quarantine.rejected", timestamp=between).num_rows == 3
    assert lake.read_spark(spark, lake_cfg, "quarantine.rejected", version=0).count() == 3
    with pytest.raises(lake.TableNotFoundError):
        lake.read_arrow(lake_cfg, "quarantine.rejected", version=9)
    with pytest.raises(lake.TableNotFoundError, match="no Delta table bronze.nothing"):
        lake.load(lake_cfg, "bronze.nothing")


def test_overwrite_and_vacuum_respect_pins(spark, lake_cfg):
    lake.write_dataframe(lake_cfg, df_of(spark, rows(3)), REJECTED, batch=lake.Batch("o", 1))
    lake.write_dataframe(lake_cfg, df_of(spark, rows(1, start=10)), REJECTED, batch=lake.Batch("o", 2), mode="overwrite")
    lake.write_dataframe(lake_cfg, df_of(spark, rows(1, start=20)), REJECTED, batch=lake.Batch("o", 3), mode="overwrite")
    assert lake.read_arrow(lake_cfg, "quarantine.rejected").column("reject_id").to_pylist() == ["r20"]
    lake.pin(lake_cfg, "quarantine.rejected", 0, "release:v1")
    v0_files = {f["uri"] for f in lake.data_files(lake_cfg, "quarantine.rejected", version=0)}
    v1_files = {f["uri"] for f in lake.data_files(lake_cfg, "quarantine.rejected", version=1)}
    orphan = os.path.join(lake_cfg.root, "quarantine", "rejected", "job=ingest", "part-orphan.zstd.parquet")
    with open(orphan, "wb") as fh:
        fh.write(b"files of a job killed before its commit")
    deleted = lake.vacuum(lake_cfg, "quarantine.rejected", retention_hours=0)
    assert any(d.endswith("part-orphan.zstd.parquet") for d in deleted)
    assert all(os.path.exists(u) for u in v0_files)        # pinned by a release: kept
    assert not any(os.path.exists(u) for u in v1_files)    # unpinned old version: removed
    assert lake.read_arrow(lake_cfg, "quarantine.rejected", version=0).num_rows == 3
    assert [p.holder for p in lake.pins(lake_cfg, "quarantine.rejected")] == ["release:v1"]
    assert lake.unpin(lake_cfg, "quarantine.rejected", 0, "release:v1")
    lake.vacuum(lake_cfg, "quarantine.rejected", retention_hours=0)
    assert not any(os.path.exists(u) for u in v0_files)


def test_plan_tasks_balances_files_and_keeps_cores_busy():
    from pipelines.lake.read import plan_tasks
    files = [{"uri": f"f{i:02d}", "size": s} for i, s in enumerate([900, 100, 100, 100, 500, 400, 50, 50])]
    tasks = plan_tasks(files, parallelism=2, target_bytes=10_000)
    assert len(tasks) == 4                                  # 2 per core: small data, few tasks
    assert sorted(f["uri"] for t in tasks for f in t) == [f["uri"] for f in files]  # each file once
    # largest first onto the lightest task: the 900 alone, the small ones fill the lightest
    assert sorted(sum(f["size"] for f in t) for t in tasks) == [400, 400, 500, 900]
    many = plan_tasks(files, parallelism=2, target_bytes=300)
    assert len(many) == min(len(files), -(-2200 // 300))     # big data: one task per ~target bytes
    assert plan_tasks([], 2) == [] and len(plan_tasks(files[:1], 8)) == 1


def test_map_write_reads_transforms_and_commits_in_the_same_tasks(spark, lake_cfg):
    lake.write_dataframe(lake_cfg, df_of(spark, rows(30)), REJECTED, batch=lake.Batch("src", 1))
    lake.write_dataframe(lake_cfg, df_of(spark, rows(20, job="keywords", start=30)), REJECTED, batch=lake.Batch("src", 2))
    target = TableContract(name="silver.lengths", schema=pa.schema([pa.field("reject_id", pa.string(), nullable=False),
                                                                     pa.field("n", pa.int64(), nullable=False)]),
                           key=("reject_id",), description="test")

    def fn(batch):
        ids = batch.column("reject_id")
        return pa.RecordBatch.from_arrays([ids, pa.array([len(x) for x in ids.to_pylist()], pa.int64())],
                                          schema=target.schema)

    first = lake.map_write(spark, lake_cfg, "quarantine.rejected", fn, target, batch=lake.Batch("m", 1),
                           columns=["reject_id", "job"])
    again = lake.map_write(spark, lake_cfg, "quarantine.rejected", fn, target, batch=lake.Batch("m", 1))
    assert (first.rows, first.skipped, again.skipped, again.version) == (50, False, True, first.version)
    out = lake.read_arrow(lake_cfg, "silver.lengths").to_pylist()
    assert sorted(r["reject_id"] for r in out) == sorted(f"r{i}" for i in range(50))
    assert all(r["n"] == len(r["reject_id"]) for r in out)
    # a subset of files (an incremental stage) writes only their rows
    newest = [f for f in lake.data_files(lake_cfg, "quarantine.rejected")
              if json.loads(f["partition_values"])["job"] == "keywords"]
    part = lake.map_write(spark, lake_cfg, "quarantine.rejected", fn, target, batch=lake.Batch("m", 2), files=newest)
    assert part.rows == 20 and lake.read_arrow(lake_cfg, "silver.lengths").num_rows == 70


def test_filters_on_columns_without_file_stats_find_their_rows(spark, lake_cfg):
    """delta-rs's own pyarrow dataset prunes every file on such a filter (`col >= null`)."""
    import polars as pl
    import pyarrow.compute as pc
    lake.write_dataframe(lake_cfg, df_of(spark, rows(4) + rows(3, job="keywords", start=4)), REJECTED,
                         batch=lake.Batch("f", 1))
    assert "detail" not in REJECTED.stats_columns()
    ds = lake.dataset(lake_cfg, "quarantine.rejected")
    assert ds.to_table(filter=pc.field("detail") == "bad").num_rows == 7
    assert ds.to_table(filter=(pc.field("job") == "keywords") & (pc.field("detail") == "bad")).num_rows == 3
    assert lake.read_duckdb(lake_cfg, "quarantine.rejected").filter("detail = 'bad'").count("*").fetchall() == [(7,)]
    assert lake.read_polars(lake_cfg, "quarantine.rejected").filter(pl.col("detail") == "bad").collect().height == 7
