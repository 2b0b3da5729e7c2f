"""`telelake demo` end to end, and a job through spark-submit --master local[2]."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import lake
from pipelines.demo.run import run_demo
from pipelines.packaging import build_pyfiles_zip
from tests.conftest import ROOT, subprocess_env


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_demo_runs_the_flow_and_reruns_as_no_ops(spark, tmp_path):
    out = run_demo(tmp_path / "demo")
    ingest = {s.source: s for s in out["ingest"]}
    keywords = {s.source: s for s in out["keywords"]}
    assert (ingest["wikipedia"].kept, ingest["refinedweb"].kept) == (8, 6)
    assert ingest["forum"].rejected == {"malformed_json": 1, "empty_text": 1, "not_an_object": 1, "invalid_utf8": 1}
    assert ingest["commoncrawl"].kept == 3 and ingest["commoncrawl"].dropped == {"not_text_content": 1, "http_status_not_2xx": 1}
    assert keywords["wikipedia"].kept == 5 and keywords["wikipedia"].dropped == {"no_keyword": 3}
    assert keywords["refinedweb"].dropped["wikipedia_url"] == 1
    assert keywords["commoncrawl"].kept == 2
    judge = {r.summary.source: r for r in out["judge"]}
    assert {s: r.summary.read for s, r in judge.items()} == {s: k.kept for s, k in keywords.items()}
    assert sum(r.model_calls for r in judge.values()) == sum(k.kept for k in keywords.values())
    (cascade,) = out["cascade"]
    assert cascade.pool == keywords["wikipedia"].kept and cascade.llm_calls == 0  # judgements from the store
    assert cascade.summary.read == cascade.pool and Path(cascade.report).is_file()
    sources = {s.source: s for s in out["sources"]}
    assert sources["arxiv"].kept == 13 and sources["arxiv"].rejected == {"unsafe_path": 1}
    assert sources["standards"].kept == 2
    clean = {s.source: s for s in out["clean"]}
    assert (clean["arxiv"].kept, clean["standards"].kept, clean["standards"].rejected) == (13, 1, {"xml_entity": 1})
    assert out["measure"].documents == 14 and Path(out["measure"].report).is_file()
    assert out["general"].kept == 12
    assembled = {s.source: s for s in out["assemble"].summaries}
    assert {n: s.kept for n, s in assembled.items() if n != "slimpajama"} == {
        "standards": 1, "arxiv": 13, "wikipedia": 2, "refinedweb": 1, "forum": 0, "commoncrawl": 0}
    assert assembled["wikipedia"].dropped == {"keyword:no_keyword": 3, "relevance:llm_no": 3}
    assert 1 <= assembled["slimpajama"].kept < 12
    bench = {s.source: s for s in out["benchmarks"].summaries}
    assert (bench["teleqna"].kept, dict(bench["teleqna"].rejected)) == (8, {"no_options": 1, "answer_out_of_range": 1})
    gen, filt = out["qna_generate"], out["qna_filter"]
    # 16 chunks (13 papers, 2 wiki articles, 1 spec), a sample of 8 sent to the model
    assert (gen.summary.read, gen.summary.dropped["not_sampled"], gen.model_calls) == (16, 8, 8) and gen.pairs > 0
    assert filt.summary.read == gen.pairs and filt.funnel["decontamination"] == filt.summary.kept
    assert list(filt.funnel) == ["generated", "regex", "length", "form", "language", "answerability", "dedup",
                                 "decontamination"] and Path(filt.report).is_file()
    instruct = {s.source: s for s in out["instruct"].summaries}
    assert (instruct["alpaca"].kept, dict(instruct["alpaca"].rejected)) == (3, {"malformed_json": 1})
    assert dict(instruct["open_instruct"].rejected) == {"multi_turn": 1, "wrong_type": 1}
    assert out["instruct"].edges == 23 and instruct["citation_recommendation"].kept == 23
    assert instruct["title_generation"].kept == 13 and instruct["mcq_answering"].kept > 0
    release = out["release"]
    assert release.created and all(s["success"] for s in release.manifest["suites"])
    assert {"gold.benchmarks", "gold.instructions"} <= set(release.manifest["tables"])
    assert ("gold.tele_eval" in release.manifest["tables"]) == (filt.summary.kept > 0)
    assert set(release.manifest["categories"]) == {"arxiv", "standard", "wiki", "web", "general"}
    cfg = lake.LakeConfig(root=str(tmp_path / "demo" / "lake"))
    from pipelines.release.ops import verify
    from pipelines.release.store import release_path
    assert Path(release_path(cfg, "demo-v1", release.report)).is_file() and verify(cfg, "demo-v1") == []
    train = out["train"]
    metrics = [json.loads(x) for x in (train.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in metrics] == [1, 2, 3] and all(r["loss"] > 0 and r["grad_norm"] > 0 for r in metrics)
    assert train.shards.built and train.shards.manifest["release"]["name"] == "demo-v1" and "val_loss" in train.final
    assert (train.checkpoint / "hf" / "model.safetensors").is_file() and (train.run_dir / "loss.png").is_file()
    ev = out["eval"]
    mcq_base, mcq_cpt = ev["mcq"]
    assert mcq_cpt.revision != mcq_base.revision and all(g.items > 0 for g in mcq_base.groups)
    assert all((ev["out"] / s.model / "mcq_generate.parquet").is_file() for s in ev["mcq"])
    report = ev["report"].read_text()
    assert all(f"| {s.model} |" in report for s in ev["mcq"]) and "MCQ Pass@1" in report
    if "gold.tele_eval" in release.manifest["tables"]:
        assert [s.items for s in ev["tele_eval"]] == [min(8, release.manifest["tables"]["gold.tele_eval"]["rows"])] * 2
        assert all(s.ans_ppl_n == s.items and math.isfinite(s.ans_ppl) for s in ev["tele_eval"])
    versions = {t: lake.load(cfg, t).version() for t in ("bronze.forum", "silver.llm_results", "silver.keyword_hits", "quarantine.rejected",
                                                            "bronze.arxiv_sources", "silver.cleaned", "gold.tele_data",
                                                            "gold.tele_data_ids", "silver.dedup")}
    again = run_demo(tmp_path / "demo")
    assert all(s.already_committed for s in again["ingest"] + again["keywords"] + again["sources"] + again["clean"])
    assert all(r.summary.already_committed and r.model_calls == 0 for r in again["judge"])
    assert again["cascade"][0].classifier_id == cascade.classifier_id and again["cascade"][0].llm_calls == 0
    assert {t: lake.load(cfg, t).version() for t in versions} == versions
    assert again["assemble"].already_committed and not again["release"].created
    assert again["benchmarks"].already_committed and again["instruct"].already_committed
    assert again["qna_generate"].summary.already_committed and again["qna_filter"].summary.already_committed
    assert again["release"].manifest == release.manifest
    assert not again["train"].shards.built and again["train"].final == {} and again["train"].checkpoint == train.checkpoint
    # the evaluation is served from the result store (silver.llm_results did not change above) with the same scores
    assert [g.pass_at_1 for s in again["eval"]["mcq"] for g in s.groups] == [g.pass_at_1 for s in ev["mcq"] for g in s.groups]


def test_job_runs_under_spark_submit(tmp_path):
    spark_submit = Path(sys.executable).parent / "spark-submit"
    zip_path = build_pyfiles_zip(tmp_path / "telelake.zip")
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.jsonl").write_text('{"text": "LTE and 5G NR"}\n{"text": \n')
    conf = tmp_path / "ingest.yaml"
    conf.write_text(f"lake: {{root: {tmp_path / 'lake'}}}\n"
                    f"ingest: {{source: sub, category: web, format: jsonl, paths: [{raw}]}}\n")
    env = subprocess_env()
    env["PYTHONPATH"] = ""  # executors get the code from --py-files only
    env["PYSPARK_PYTHON"] = sys.executable
    proc = subprocess.run([str(spark_submit), "--master", "local[2]", "--py-files", str(zip_path),
                           str(ROOT / "jobs" / "ingest.py"), "--conf", str(conf)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ingest sub: read 2 = kept 1 + dropped 0 + rejected 1" in proc.stdout
    assert lake.read_arrow(lake.LakeConfig(root=str(tmp_path / "lake")), "bronze.sub").num_rows == 1
    assert os.path.exists(tmp_path / "lake" / "quarantine" / "rejected" / "_delta_log")
