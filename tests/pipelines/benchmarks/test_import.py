"""The benchmark import on local Spark: one MCQ table with stable ids and splits, every bad item
quarantined with its reason and location, duplicates resolved, reruns no-ops; and the real files
of ../shared/data/benchmarks (skipped when that folder is absent)."""
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import lake
from pipelines.benchmarks.stage import BenchmarkSource, ImportSpec, run_import
from tests.conftest import ROOT

pytestmark = pytest.mark.spark
SHARED = ROOT.parent / "shared" / "data" / "benchmarks"


def _teleqna(path: Path, n: int = 30) -> None:
    items = {f"question {i}": {"question": f"What does the telecom acronym number {i} stand for?",
                               "option 1": f"Answer {i}", "option 2": f"Wrong {i}", "option 3": "Neither",
                               "answer": f"option 1: Answer {i}", "category": "Lexicon"} for i in range(n)}
    items["question 900"] = {**items["question 0"]}                                   # exact copy → duplicate_item
    items["question 901"] = {**items["question 1"], "answer": "option 2: Wrong 1"}    # copy, other answer → conflict
    items["question 902"] = {"question": "Research Papers", "option 1": "a", "option 2": "b", "answer": "option 1: a"}
    path.write_text(json.dumps(items))


def _oran(path: Path) -> None:
    lines = [json.dumps([f"Which O-RAN working group handles topic {i}?", [f"1. WG{i}", "2. RIC", "3. SMO"], "1"])
             for i in range(20)]
    lines += [json.dumps(["Which O-RAN interface has no options here?", [], "1"]),       # no_options
              json.dumps(["Which option is out of range here?", ["1. a", "2. b"], "3"]),  # answer_out_of_range
              "{not json"]                                                              # malformed_json
    path.write_text("\n".join(lines) + "\n")


def _spec(tmp_path, extra=()) -> ImportSpec:
    return ImportSpec(sources=[
        BenchmarkSource(category="teleqna", format="teleqna_json", paths=[str(tmp_path / "teleqna.json")],
                        source="TeleQnA@test"),
        BenchmarkSource(category="oranbench", format="oran_jsonl", paths=[str(tmp_path / "fin_E.json")],
                        difficulty="easy"), *extra])


def test_import_writes_one_schema_and_quarantines_every_bad_item(spark, lake_cfg, tmp_path):
    _teleqna(tmp_path / "teleqna.json")
    _oran(tmp_path / "fin_E.json")
    result = run_import(spark, lake_cfg, _spec(tmp_path))
    by = {s.source: s for s in result.summaries}
    assert (by["teleqna"].read, by["teleqna"].kept) == (33, 29)
    assert dict(by["teleqna"].rejected) == {"duplicate_item": 1, "conflicting_duplicates": 2, "question_too_short": 1}
    assert (by["oranbench"].read, by["oranbench"].kept) == (23, 20)
    assert dict(by["oranbench"].rejected) == {"no_options": 1, "answer_out_of_range": 1, "malformed_json": 1}
    items = lake.read_arrow(lake_cfg, "gold.benchmarks").to_pylist()
    assert len(items) == 49 and len({r["item_id"] for r in items}) == 49
    oran = next(r for r in items if r["question"].endswith("topic 3?"))
    assert oran["choices"] == ["WG3", "RIC", "SMO"] and oran["answer"] == 0 and oran["difficulty"] == "easy"
    assert oran["repairs"] == ["option_prefix_removed"] and oran["source_location"] == "line=4"
    assert {r["split"] for r in items} <= {"train", "val", "test"}
    rejects = {(r["source"], r["reason"]): r for r in lake.read_arrow(lake_cfg, "quarantine.rejected").to_pylist()}
    copy = rejects[("teleqna", "duplicate_item")]
    assert copy["source_location"] == "key=question 900" and b"Answer 0" in copy["raw"]
    assert {rejects[("teleqna", "conflicting_duplicates")]["job"]} == {"benchmarks"}
    assert rejects[("oranbench", "malformed_json")]["source_location"] == "line=23"
    assert result.majority["oranbench"]["train"] == 1.0   # every ORAN answer here is option 1

    again = run_import(spark, lake_cfg, _spec(tmp_path))
    assert again.already_committed and [s.kept for s in again.summaries] == [s.kept for s in result.summaries]
    assert len(lake.read_arrow(lake_cfg, "quarantine.rejected")) == 7


def test_added_items_leave_existing_ids_and_splits_alone(spark, lake_cfg, tmp_path):
    _teleqna(tmp_path / "teleqna.json", n=30)
    _oran(tmp_path / "fin_E.json")
    run_import(spark, lake_cfg, _spec(tmp_path))
    before = {r["item_id"]: r["split"] for r in lake.read_arrow(lake_cfg, "gold.benchmarks").to_pylist()}
    _teleqna(tmp_path / "teleqna.json", n=60)
    pq.write_table(pa.table({"question": ["How many PRBs does a 20 MHz NR carrier at 30 kHz SCS have?"],
                             "choices": [["51", "106", "273"]], "answer": [0], "subject": ["numerology"]}),
                   tmp_path / "tables.parquet")
    run_import(spark, lake_cfg, _spec(tmp_path, [BenchmarkSource(category="teletables", format="gsma_parquet",
                                                                 paths=[str(tmp_path / "tables.parquet")])]))
    after = {r["item_id"]: r for r in lake.read_arrow(lake_cfg, "gold.benchmarks").to_pylist()}
    assert all(after[i]["split"] == s for i, s in before.items())
    assert len(after) == len(before) + 30 + 1
    (table,) = [r for r in after.values() if r["category"] == "teletables"]
    assert table["answer"] == 0 and table["subject"] == "numerology" and table["source_location"] == "row=0"


def test_real_benchmarks_import_with_their_known_defects(spark, lake_cfg):
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the real benchmarks live in ../shared/data/benchmarks beside the checkout")
    from jobs.benchmarks_import import BenchmarksJobConfig
    from pipelines import config

    cfg = config.load(BenchmarksJobConfig, ROOT / "conf" / "benchmarks.yaml")
    spec = ImportSpec(sources=[s.__class__(**{**s.__dict__, "paths": [str(ROOT / p) for p in s.paths]})
                               for s in cfg.benchmarks.sources], split=cfg.benchmarks.split, items=cfg.benchmarks.items)
    result = run_import(spark, lake_cfg, spec)
    by = {s.source: s for s in result.summaries}
    assert (by["teleqna"].read, by["oranbench"].read, by["srsranbench"].read) == (10_000, 13_952, 1_502)
    assert by["oranbench"].rejected["no_options"] == 45            # the README's 45 items without options
    assert by["teleqna"].rejected["question_too_short"] >= 26      # "Research Papers"
    assert 0.74 < result.majority["srsranbench"]["train"] < 0.79   # 76% of srsRANBench answers are option 1
    for cat, counts in result.splits.items():
        total = sum(counts.values())
        assert abs(counts["train"] / total - 0.6) < 0.03 and abs(counts["test"] / total - 0.2) < 0.03, cat
