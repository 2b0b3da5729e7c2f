"""Crash and concurrency behaviour of lake writes, with real processes and real SIGKILLs."""
import json
import multiprocessing as mp
import subprocess
import sys
import time

import pyarrow as pa
import pytest

from pipelines import lake
from pipelines.lake.sink import SinkSpec, write_batches
from schemas import bronze_contract
from tests.conftest import subprocess_env

pytestmark = pytest.mark.slow
N_GOOD = 40


def _job_inputs(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for part in range(2):
        lines = [json.dumps({"id": f"{part}-{i}", "text": f"doc {part}-{i} on 5G NR"}) for i in range(N_GOOD // 2)]
        (raw / f"p{part}.jsonl").write_text("\n".join(lines + ['{"broken'] ) + "\n")
    conf = tmp_path / "ingest.yaml"
    conf.write_text(f"lake: {{root: {tmp_path / 'lake'}}}\nspark: {{log_level: ERROR}}\n"
                    f"ingest: {{source: crash, category: web, format: jsonl, paths: [{raw}]}}\n")
    return conf


def _run_job(conf, **env):
    return subprocess.run([sys.executable, "-m", "jobs.ingest", "--conf", str(conf)], capture_output=True,
                          text=True, env=subprocess_env(**env), timeout=300)


def _check_lake(root):
    cfg = lake.LakeConfig(root=str(root))
    bronze = lake.read_arrow(cfg, "bronze.crash")
    assert bronze.num_rows == N_GOOD and len(set(bronze.column("doc_id").to_pylist())) == N_GOOD
    rejected = lake.read_arrow(cfg, "quarantine.rejected")
    assert rejected.num_rows == 2 and set(rejected.column("reason").to_pylist()) == {"malformed_json"}
    return cfg


@pytest.mark.parametrize("failpoint,delay_ms", [("lake.before_commit", "0"), ("lake.during_commit", "0"),
                                                ("lake.during_commit", "15"), ("lake.after_commit", "0")])
def test_killed_job_reruns_without_loss_or_duplicates(tmp_path, failpoint, delay_ms):
    conf = _job_inputs(tmp_path)
    killed = _run_job(conf, TELELAKE_FAILPOINT=failpoint, TELELAKE_FAILPOINT_DELAY_MS=delay_ms)
    assert killed.returncode == -9, killed.stderr[-2000:]
    rerun = _run_job(conf)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"read {N_GOOD + 2} = kept {N_GOOD} + dropped 0 + rejected 2" in rerun.stdout
    cfg = _check_lake(tmp_path / "lake")
    if failpoint == "lake.before_commit":  # the first attempt's Parquet files are orphans
        deleted = lake.vacuum(cfg, "bronze.crash", retention_hours=0)
        assert deleted and all(d.endswith(".parquet") for d in deleted)
    lake.vacuum(cfg, "bronze.crash", retention_hours=0)
    _check_lake(tmp_path / "lake")
    third = _run_job(conf)
    assert "batch already committed" in third.stdout
    _check_lake(tmp_path / "lake")


def _appender(root: str, worker: int, start_at: float, q, app_id: str | None = None) -> None:
    contract = bronze_contract("shared")
    cfg = lake.LakeConfig(root=root)
    now = pa.scalar(0, pa.timestamp("us", tz="UTC")).as_py()
    rows = [{"doc_id": f"w{worker}-{i}", "source": "shared", "category": "web", "source_id": None, "url": None,
             "title": None, "text": f"worker {worker} doc {i}", "text_chars": 10, "metadata": "{}",
             "source_file": f"w{worker}", "source_location": f"line={i}", "ingest_batch": f"b{worker}",
             "ingested_at": now} for i in range(25)]
    spec = SinkSpec(table_uri=lake.table_uri(cfg, contract.name), contract=contract, storage_options={})
    files = write_batches(spec, [pa.RecordBatch.from_pylist(rows, schema=contract.schema)])
    time.sleep(max(0.0, start_at - time.time()))
    batch = lake.Batch(app_id or f"appender-{worker}", 1)
    results = [lake.commit_files(cfg, contract, files, mode="append", batch=batch) for _ in range(2)]
    q.put((worker, results[0].skipped, results[1].skipped))


def test_eight_concurrent_appenders_all_land_once(tmp_path):
    root = str(tmp_path / "lake")
    ctx = mp.get_context("spawn")  # deltalake must not run in forked processes
    q = ctx.Queue()
    start_at = time.time() + 4
    procs = [ctx.Process(target=_appender, args=(root, w, start_at, q)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 8
    outcomes = sorted(q.get() for _ in procs)
    assert outcomes == [(w, False, True) for w in range(8)]  # each landed once; its retry was a no-op
    cfg = lake.LakeConfig(root=root)
    table = lake.read_arrow(cfg, "bronze.shared")
    assert table.num_rows == 8 * 25 and len(set(table.column("doc_id").to_pylist())) == 200
    dt = lake.load(cfg, "bronze.shared")
    assert all(dt.transaction_version(f"appender-{w}") == 1 for w in range(8))
    assert dt.version() == 7  # one create + seven appends


def test_one_batch_launched_four_times_at_once_lands_once(tmp_path):
    """A scheduler that starts the same batch twice: every copy writes files, one commit wins,
    the others see its application transaction and skip; their files are orphans for vacuum."""
    root = str(tmp_path / "lake")
    lake.commit_files(lake.LakeConfig(root=root), bronze_contract("shared"), [], mode="append",
                      batch=lake.Batch("setup", 1))  # the table exists: the race is between appends
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start_at = time.time() + 4
    procs = [ctx.Process(target=_appender, args=(root, w, start_at, q, "same-batch")) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 4
    outcomes = sorted(q.get() for _ in procs)
    assert sum(not first for _, first, _ in outcomes) == 1 and all(second for _, _, second in outcomes)
    cfg = lake.LakeConfig(root=root)
    table = lake.read_arrow(cfg, "bronze.shared")
    assert table.num_rows == 25 and len({d.split("-")[0] for d in table.column("doc_id").to_pylist()}) == 1
    assert lake.load(cfg, "bronze.shared").transaction_version("same-batch") == 1
    removed = lake.vacuum(cfg, "bronze.shared", retention_hours=0)
    assert len(removed) == 3  # the losers' files
