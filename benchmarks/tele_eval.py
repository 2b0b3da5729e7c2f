"""Tele-Eval cost: generation with the embedded model on CPU, and the filter chain per 1,000 pairs.

    .venv/bin/python benchmarks/tele_eval.py --chunks 16 --max-tokens 200 --pairs 20000

(a) generation: `--chunks` passages (the demo papers' text) as gold.tele_data in a fresh lake;
    `run_generate` on Spark local[2] with the embedded SmolLM2-135M (one model per worker, loaded
    in a warm-up run on other passages), then `run_filter`: chunks/s, generated tokens/s, pairs
    parsed and kept per chunk, for the zero-shot prompt the demo uses.
(b) the rule filters on `--pairs` pairs (TeleQnA questions with their explanations as answers when
    ../shared is beside the checkout, else the demo MCQ sample repeated with variations), one core,
    each stage timed alone per 1,000 pairs: regex (111 patterns), length + form (against a
    20,000-character chunk), language (py3langid), decontamination lookup (index of the benchmark
    questions), MinHash signatures of the questions (dedup). Compared with (a)'s seconds per pair.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines import lake  # noqa: E402
from pipelines.demo.corpus import load_corpus, load_papers  # noqa: E402
from pipelines.ingest.parse import utc_now  # noqa: E402
from schemas import TELE_DATA  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "benchmarks"
PROMPTS = ROOT / "conf" / "prompts" / "telelake_v1.yaml"


def passages(n: int, offset: int = 0) -> list[tuple[str, str]]:
    papers = load_papers()
    out = []
    for i in range(offset, offset + n):
        p = papers[i % len(papers)]
        out.append((f"arxiv_{i + 1}", f"[{i}] {p['title']}\n\n{p['abstract']}\n\n{p['intro']}\n\n{p['body']}"))
    return out


def write_tele_data(spark, cfg, docs) -> None:
    from tests.pipelines.gold.conftest import write_rows

    now = utc_now()
    write_rows(spark, cfg, TELE_DATA, [{"id": i, "category": "arxiv", "content": t, "metadata": "{}", "doc_id": f"d{i}",
                                        "source": "arxiv", "content_chars": len(t), "tokens": len(t.split()),
                                        "lineage": "{}", "assembly": "b", "assembled_at": now} for i, t in docs],
               f"bench-{len(docs)}")


def generation(args) -> dict:
    from pipelines.benchmarks.stage import BenchmarkSource, ImportSpec, run_import
    from pipelines.llm.backend import BackendConfig
    from pipelines.llm.models import resolve
    from pipelines.qna.filter_stage import Answerability, FilterSpec, run_filter
    from pipelines.qna.generate import GenerateSpec, run_generate
    from pipelines.spark import SparkConfig, build_session
    from transformers import AutoTokenizer

    spark = build_session(SparkConfig(master="local[2]", log_level="ERROR",
                                      conf={"spark.ui.showConsoleProgress": "false"}), "bench-tele-eval")
    backend = BackendConfig(kind="transformers", max_context_tokens=1024)
    spec = GenerateSpec(prompts=str(PROMPTS), prompt="qna_generation_zero_shot", max_tokens=args.max_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        warm = lake.LakeConfig(root=f"{tmp}/warm")
        write_tele_data(spark, warm, passages(2, offset=1000))
        run_generate(spark, warm, spec, backend)  # loads the model in each worker
        cfg = lake.LakeConfig(root=f"{tmp}/lake")
        write_tele_data(spark, cfg, passages(args.chunks))
        t0 = time.perf_counter()
        gen = run_generate(spark, cfg, spec, backend)
        gen_s = time.perf_counter() - t0
        tok = AutoTokenizer.from_pretrained(resolve(backend.model).path)
        outputs = [json.loads(r["output"])[0] for r in lake.read_arrow(cfg, "silver.llm_results").to_pylist()
                   if r["task"] == "generate" and r["output"]]
        new_tokens = sum(len(tok(o, add_special_tokens=False)["input_ids"]) for o in outputs)
        bench = Path(tmp) / "q.json"
        load = load_corpus()["mcq"]
        bench.write_text(json.dumps({f"question {i}": {"question": q["question"], **{f"option {j + 1}": o for j, o in
                                     enumerate(q["options"])}, "answer": f"option 1: {q['options'][0]}"}
                                     for i, q in enumerate(load) if q["options"]}))
        run_import(spark, cfg, ImportSpec(sources=[BenchmarkSource(category="teleqna", format="teleqna_json",
                                                                   paths=[str(bench)])]))
        t0 = time.perf_counter()
        filt = run_filter(spark, cfg, FilterSpec(generation_prompts=str(PROMPTS), generation_prompt=spec.prompt,
                                                 regex=str(ROOT / "conf" / "qna" / "filters.yaml"),
                                                 report=f"{tmp}/report",
                                                 answerability=Answerability(prompts=str(PROMPTS), threshold=0.3)),
                          backend)
        filt_s = time.perf_counter() - t0
    chunks = gen.summary.read - gen.summary.n_dropped
    return {"chunks": chunks, "generate_s": round(gen_s, 1), "chunks_per_s": round(chunks / gen_s, 3),
            "new_tokens": new_tokens, "tokens_per_s": round(new_tokens / gen_s, 1),
            "pairs_per_chunk": round(gen.pairs / chunks, 2), "kept_per_chunk": round(filt.summary.kept / chunks, 2),
            "filter_s": round(filt_s, 1), "funnel": filt.funnel, "seconds_per_pair": round(gen_s / max(1, gen.pairs), 3)}


def pairs(n: int) -> list[tuple[str, str]]:
    if (SHARED / "teleqna" / "TeleQnA.txt").is_file():
        items = json.loads((SHARED / "teleqna" / "TeleQnA.txt").read_text())
        base = [(v["question"], v.get("explanation") or v["answer"]) for v in items.values()]
    else:
        base = [(q["question"], q["options"][0] if q["options"] else "none") for q in load_corpus()["mcq"]]
    return [(f"{q} (case {i // len(base)})" if i >= len(base) else q, a) for i, (q, a) in
            zip(range(n), (base * (n // len(base) + 1)))]


def filters(args) -> dict:
    from pipelines.dedup.minhash import MinHashParams
    from pipelines.dedup.stage import signature_columns
    from pipelines.qna.decontam import BenchmarkIndex
    from pipelines.qna.filters import (FormRules, LanguageRules, LengthRules, RegexFilters, check_form, check_language,
                                       check_length, example_keys, reference)

    data = pairs(args.pairs)
    chunk = reference("\n\n".join(p[1] for p in passages(40))[:20_000])
    regex = RegexFilters.load(ROOT / "conf" / "qna" / "filters.yaml")
    examples = example_keys(["What frequency band does Bluetooth use?"])
    index = BenchmarkIndex(((f"b{i}", q) for i, (q, _) in enumerate(pairs(10_000))), 8)
    check_language("warm up", "the model", LanguageRules())
    regex.hits("warm up", "compiles the Hyperscan database")  # once per process: not per pair
    stages = {
        "regex": lambda q, a: regex.hits(q, a),
        "regex_python_re_only": lambda q, a: regex.hits_re(q, a),
        "length_and_form": lambda q, a: check_length(q, a, LengthRules()) or check_form(q, a, chunk, FormRules(), examples),
        "language": lambda q, a: check_language(q, a, LanguageRules()),
        "decontamination": lambda q, a: index.match(q),
    }
    out = {}
    for name, fn in stages.items():
        t0 = time.perf_counter()
        for q, a in data:
            fn(q, a)
        out[name] = round(1000 * (time.perf_counter() - t0) / len(data), 4)
    t0 = time.perf_counter()
    signature_columns([q for q, _ in data], MinHashParams(ngram=3, bands=20, rows=5, seed=1))
    out["minhash_signatures"] = round(1000 * (time.perf_counter() - t0) / len(data), 4)
    out["total"] = round(sum(v for k, v in out.items() if k != "regex_python_re_only"), 4)
    hits = sum(bool(regex.hits(q, a)) for q, a in data[:5000])
    return {"pairs": len(data), "seconds_per_1000_pairs": out, "regex_hit_share": round(hits / min(5000, len(data)), 3),
            "source": "TeleQnA" if (SHARED / "teleqna").is_dir() else "demo sample"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chunks", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=200)
    p.add_argument("--pairs", type=int, default=20_000)
    p.add_argument("--skip-generation", action="store_true")
    p.add_argument("--out", default=str(ROOT / "bench_out" / "tele_eval.json"))
    args = p.parse_args()
    result = {"filters": filters(args)}
    print(json.dumps(result, indent=1), flush=True)
    if not args.skip_generation:
        result["generation"] = generation(args)
        g, f = result["generation"], result["filters"]["seconds_per_1000_pairs"]
        result["filter_chain_share_of_generation"] = round(f["total"] / (1000 * g["seconds_per_pair"]), 5)
        result["regex_share_of_generation"] = round(f["regex"] / (1000 * g["seconds_per_pair"]), 5)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
