"""Releases with the evaluation and training tables: their suites gate the release (a Tele-Eval pair
whose ID names no released document refuses it), manifests count them, export writes their public
layouts, diff keys them by their own ids."""
import json

import pytest

from pipelines import lake
from pipelines.ingest.parse import utc_now
from pipelines.release.create import ReleaseRefused, ReleaseSpec, create_release
from pipelines.release.ops import diff, export
from pipelines.lake.spark_types import spark_schema
from schemas import INSTRUCTIONS, TELE_EVAL
from tests.pipelines.gold.conftest import write_rows
from tests.pipelines.release.test_release import gold_rows, write_gold

pytestmark = pytest.mark.spark


def tele_eval_rows(ids: list[str]) -> list[dict]:
    now = utc_now()
    return [{"Statement": f"Which function handles registration in scenario family {n}?", "Answer": "The AMF.",
             "ID": i, "pair_id": f"p{n}", "category": i.split("_")[0], "chunk_id": f"{i}:0-100", "char_start": 0,
             "char_end": 100, "model": "m", "model_revision": "r", "prompt_version": "v", "p_answerable": 0.8,
             "language_score": 0.99, "filtering": "f", "generated_at": now} for n, i in enumerate(ids)]


def test_tele_eval_and_instructions_are_gated_counted_and_exported(spark, lake_cfg, tmp_path):
    cfg = lake_cfg
    write_gold(spark, cfg, gold_rows(1, 10) + gold_rows(1, 3, "arxiv"), "g1")
    write_rows(spark, cfg, TELE_EVAL, tele_eval_rows(["wiki_1", "wiki_2", "arxiv_3", "wiki_99"]), "te1")
    with pytest.raises(ReleaseRefused, match="source_known") as refused:
        create_release(spark, cfg, "bad", ReleaseSpec())
    assert any(f["column"] == "source_known" and f["unexpected_count"] == 1
               for r in refused.value.results for f in r.failed)

    rows = tele_eval_rows(["wiki_1", "wiki_2", "arxiv_3"])
    df = spark.createDataFrame([tuple(r[f] for f in TELE_EVAL.schema.names) for r in rows], spark_schema(TELE_EVAL.schema))
    lake.write_dataframe(cfg, df, TELE_EVAL, batch=lake.Batch("test.te2", 1), mode="overwrite")
    now = utc_now()
    write_rows(spark, cfg, INSTRUCTIONS, [
        {"instruction_id": f"title_generation_{n}", "task": "title_generation", "category": "literature",
         "instruction": "Write the title.", "input": f"Abstract {n}.", "output": f"Title {n}", "split": "train",
         "source": "gold.tele_data", "source_ids": [f"arxiv_{n}"], "source_file": "gold.tele_data",
         "source_location": f"paper=arxiv_{n}", "build": "b", "built_at": now} for n in range(1, 4)], "ins")
    r = create_release(spark, cfg, "v1", ReleaseSpec())
    m = r.manifest
    assert {"gold.tele_eval", "gold.instructions"} <= set(m["tables"]) and m["tables"]["gold.tele_eval"]["rows"] == 3
    assert m["contents"]["gold.tele_eval"] == {"arxiv": 1, "wiki": 2}
    assert m["contents"]["gold.instructions"] == {"title_generation/train": 3}
    assert {s["suite"] for s in m["suites"]} >= {"gold.tele_eval", "gold.instructions"}
    files = export(cfg, "v1", tmp_path / "out")
    (te,) = [f for f in files if f.parent.name == "tele_eval"]
    first = json.loads(te.read_text().splitlines()[0])
    assert list(first) == ["Statement", "Answer", "ID"] and first["ID"] == "arxiv_3"

    write_rows(spark, cfg, TELE_EVAL, [{**tele_eval_rows(["wiki_4"])[0], "pair_id": "p9",
                                       "Statement": "Which function sets up PDU sessions in the 5G core?"}], "te3")
    create_release(spark, cfg, "v2", ReleaseSpec())
    d = diff(cfg, "v1", "v2")
    assert d["tables"]["gold.tele_eval"]["added_ids"] == ["p9"] and d["tables"]["gold.tele_eval"]["removed"] == 0
