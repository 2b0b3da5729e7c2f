"""Prepare the GPU check on this CPU machine: everything benchmarks/gpu/check.py needs, in one folder.

    .venv/bin/python benchmarks/gpu/prepare.py                                 # → benchmarks/gpu/bundle/
    .venv/bin/python benchmarks/gpu/prepare.py --smoke --bundle /tmp/gpu-smoke # tiny shapes: the CPU rehearsal

With the project's own jobs it builds a lake whose release `gpu-check` holds Tele-Data (TeleQnA items
as text: 1,102 training sequences of 2,048 tokens), Tele-Eval pairs (TeleQnA questions with their
answers) and the real benchmarks (TeleQnA, ORAN-Bench-13K, srsRANBench, from ../shared/data/benchmarks);
the release's shard set; model folders without weights (TinyLlama-1.1B's shape and a 4-layer student,
both over the embedded SmolLM2 tokenizer: check.py gives them seeded random weights on the GPU, 2 GB
that need not travel); a tiny random sentence encoder, so Tele-Eval's SemScore path runs (its score
means nothing, as the models' weights are random); and the wheels the GPU machine lacks (DeepSpeed,
built pure-Python, and pydantic with its dependencies, for CPython 3.12). plan.json says where each is.
The bundle stays under 64 MiB (the device tool's limit) and is git-ignored; carry it with the run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from train_throughput import SIZES, llama_config  # noqa: E402 - the benchmarks' model shapes

RELEASE = "gpu-check"
SHAPES = {  # hidden, layers, heads, kv heads, intermediate
    "big": SIZES["1b"],                  # TinyLlama-1.1B (1.07B parameters with SmolLM2's 49,152-token vocabulary)
    "student": (*SIZES["1b"][:1], 4, *SIZES["1b"][2:]),  # its shape with 4 layers: the KD student, CPT → eval
}
SMOKE_SHAPES = {"big": (64, 2, 4, 2, 128), "student": (64, 1, 4, 2, 128)}
WHEELS = {  # what the GPU machine's image lacks for DeepSpeed (../shared/DESIGN.md, verified 2026-12-04)
    "pydantic": "pydantic", "pydantic_core": "pydantic-core", "annotated_types": "annotated-types",
    "typing_inspection": "typing-inspection", "hjson": "hjson", "typing_extensions": "typing-extensions",
}
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", default=str(ROOT / "benchmarks" / "gpu" / "bundle"))
    p.add_argument("--smoke", action="store_true", help="tiny shapes and corpus, no wheels: the CPU rehearsal")
    p.add_argument("--shared", default=str(ROOT.parent / "shared" / "data" / "benchmarks"))
    args = p.parse_args()
    t0 = time.perf_counter()
    bundle = Path(args.bundle)
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    shared = Path(args.shared)
    if not (shared / "teleqna" / "TeleQnA.txt").is_file():
        raise SystemExit(f"prepare: the real benchmarks are not at {shared} (TeleQnA.txt, ORAN-Bench-13K, srsRANBench); "
                         f"pass --shared DIR")
    plan = {"release": RELEASE, "smoke": args.smoke, "lake": "lake", "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                            time.gmtime())}
    tokenizer = _tokenizer()
    plan["models"] = {name: f"models/{name}" for name in SHAPES}
    for name, shape in (SMOKE_SHAPES if args.smoke else SHAPES).items():
        _model_folder(bundle / "models" / name, shape, tokenizer)
    plan["embedder"] = "models/embedder"
    _embedder(bundle / "models" / "embedder")
    plan.update(_lake(bundle, shared, tokenizer, smoke=args.smoke))
    if not args.smoke:
        plan["wheels"] = "wheels"
        _wheels(bundle / "wheels")
    (bundle / "plan.json").write_text(json.dumps(plan, indent=1))
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file())
    print(f"prepared {bundle}: {size / 2**20:,.1f} MiB in {time.perf_counter() - t0:,.0f} s; plan {json.dumps(plan)}")
    if size > 60 * 2**20:
        raise SystemExit(f"prepare: the bundle is {size / 2**20:,.1f} MiB; the device tool carries at most 64 MiB")


def _tokenizer() -> str:
    from pipelines.llm.models import ModelSpec, resolve

    return resolve(ModelSpec()).path


def _model_folder(folder: Path, shape: tuple, tokenizer: str) -> None:
    """config.json (a Llama of `shape`, SmolLM2's vocabulary, tied head) and the tokenizer; no weights."""
    from training.export import copy_tokenizer

    folder.mkdir(parents=True)
    llama_config(shape).save_pretrained(folder)
    copy_tokenizer(tokenizer, folder)


def _embedder(folder: Path) -> None:
    """A 2-layer random BERT (hidden 32) with MiniLM's tokenizer, as a sentence-transformers folder."""
    import torch
    from transformers import BertConfig, BertModel

    from eval.embed import embedder_folder

    minilm = embedder_folder("embedded:all-minilm-l6-v2")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "modules.json",
                 "sentence_bert_config.json", "config_sentence_transformers.json"):
        shutil.copy2(minilm / name, folder / name)
    (folder / "1_Pooling").mkdir()
    pooling = json.loads((minilm / "1_Pooling" / "config.json").read_text())
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({**pooling, "word_embedding_dimension": 32}))


def _lake(bundle: Path, shared: Path, tokenizer: str, *, smoke: bool) -> dict:
    """The release (Tele-Data, Tele-Eval, benchmarks) and its CPT shard set; the plan's lake entries."""
    from shards import corpus, write_tele_data

    from jobs.benchmarks_import import BenchmarksJobConfig
    from jobs.benchmarks_import import run as import_benchmarks
    from pipelines import config, lake
    from pipelines.quality.datasets import TeleEvalRules
    from pipelines.quality.suites import SuiteRules
    from pipelines.release.create import ReleaseSpec, create_release
    from pipelines.spark import SparkConfig, build_session
    from pipelines.tokenize.stage import ShardSpec, build_shards

    cfg = lake.LakeConfig(root=str(bundle / "lake"))
    spark = build_session(SparkConfig(log_level="ERROR", conf={"spark.ui.showConsoleProgress": "false"}),
                          "telelake-gpu-prepare")
    try:
        docs = corpus(0.3 if smoke else 11.1, teleqna=shared / "teleqna" / "TeleQnA.txt")
        ids = write_tele_data(spark, cfg, docs, category="wiki")
        _tele_eval(spark, cfg, shared, ids, docs, n=64 if smoke else 256)
        bench = config.load(BenchmarksJobConfig, str(ROOT / "conf" / "benchmarks.yaml"), [f"lake.root={cfg.root}"])
        sources = [replace(s, paths=[str(shared / Path(p).relative_to("../shared/data/benchmarks")) for p in s.paths])
                   for s in bench.benchmarks.sources if s.format != "gsma_parquet"]
        if smoke:
            sources = [s for s in sources if s.category == "srsranbench"]
        import_benchmarks(replace(bench, benchmarks=replace(bench.benchmarks, sources=sources)), spark)
        rules = SuiteRules(categories=["wiki"], min_chars=1, max_chars=10_000_000, max_duplicate_rate=1.0,
                           max_preamble_share=1.0)
        create_release(spark, cfg, RELEASE, ReleaseSpec(suites={"gold.tele_data": rules},
                                                        tele_eval=TeleEvalRules(categories=["wiki"])))
        seq = 128 if smoke else 2048
        shards = build_shards(spark, cfg, RELEASE, tokenizer,
                              ShardSpec(blend={"gold.tele_data": None}, seq_len=seq, val_share=0.02)).folder
    finally:
        spark.stop()
    shutil.rmtree(bundle / "lake" / "_telelake" / "releases" / RELEASE / "data_docs", ignore_errors=True)  # 13 MB of HTML
    split = json.loads((shards / "manifest.json").read_text())["splits"]
    return {"shards": str(shards.relative_to(bundle)), "seq_len": seq,
            "sequences": {k: v["sequences"] for k, v in split.items()}}


def _tele_eval(spark, cfg, shared: Path, ids: list[str], docs: list[str], n: int) -> None:
    """Tele-Eval pairs from the TeleQnA items inside the Tele-Data documents: the question, and the correct
    option with its explanation as the answer; each pair names the document that holds it."""
    from shards import write_rows

    from pipelines.ingest.parse import utc_now
    from schemas import TELE_EVAL

    items = json.loads((shared / "teleqna" / "TeleQnA.txt").read_text()).values()
    now, rows, seen = utc_now(), [], set()
    for v in items:
        q = v["question"].strip()
        if not (15 <= len(q) <= 400 and q.endswith("?")) or q in seen:
            continue
        home = next((i for i, d in zip(ids, docs) if q in d), None)
        if home is None:
            continue
        seen.add(q)
        answer = f"{v['answer'].split(':', 1)[-1].strip()}. {v.get('explanation', '')}".strip()[:1500]
        rows.append({"Statement": q, "Answer": answer, "ID": home, "pair_id": f"gpu{len(rows)}", "category": "wiki",
                     "chunk_id": f"{home}:0", "char_start": 0, "char_end": 1, "model": "teleqna",
                     "model_revision": "d7ee5e3", "prompt_version": "teleqna", "p_answerable": 1.0,
                     "language_score": 1.0, "filtering": "teleqna", "generated_at": now})
        if len(rows) == n:
            break
    write_rows(spark, cfg, TELE_EVAL, rows, "gpu-check-te")


def _wheels(folder: Path) -> None:
    """DeepSpeed (the installed version, built without ops: pure Python) and its missing dependencies,
    for CPython 3.12 on x86-64 Linux."""
    from importlib.metadata import version

    folder.mkdir(parents=True)
    env = {**os.environ, "DS_BUILD_OPS": "0"}
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(folder),
                    f"deepspeed=={version('deepspeed')}"], check=True, env=env)
    platforms = [x for p in PLATFORMS for x in ("--platform", p)]
    pins = [f"{dist}=={version(dist)}" for dist in WHEELS.values()]
    subprocess.run([*pip, "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                    "--implementation", "cp", *platforms, "-d", str(folder), *pins], check=True)


if __name__ == "__main__":
    main()
