"""LLM stage overhead and distilled-classifier speed, side by side in one run.

    .venv/bin/python benchmarks/llm_stage.py --docs 48 --chars 1000 --max-context 512 --workers 2

(a) raw model forwards: the HF backend scoring the rendered prompts in one process with
    `--workers` torch threads, batched exactly as the stage batches them;
(b) the judge stage on Spark local[--workers] over the same documents (render in tasks, result
    store, chunked commits, relevance table), one model per worker with one thread each, timed
    after the session and the workers' model load (a warm-up judge run on other documents);
(c) the distilled classifier: floret training on judged-like labels and prediction in docs/s on
    one core (feature extraction included).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines import lake  # noqa: E402
from pipelines.demo.corpus import load_corpus  # noqa: E402


def documents(n: int, chars: int, seed: int = 0) -> list[str]:
    """Telecom and other pages of the demo corpus, cut into `chars`-long windows, with a keyword."""
    corpus = load_corpus()
    pages = [p["text"] for p in corpus["wikipedia"]] + [p["content"] for p in corpus["refinedweb"]]
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        page = pages[int(rng.integers(len(pages)))]
        start = int(rng.integers(0, max(1, len(page) - chars)))
        out.append(f"[{len(out)}] LTE note. " + (page * (1 + chars // max(1, len(page))))[start:start + chars])
    return out


def bench_raw(texts: list[str], workers: int, max_context: int) -> tuple[float, int]:
    import torch

    from pipelines.llm.backend import BackendConfig, load_backend
    from pipelines.llm.prompts import Renderer, load_prompt_set

    backend = load_backend(BackendConfig(kind="transformers", threads=workers, max_context_tokens=max_context))
    torch.set_num_threads(workers)
    prompt = load_prompt_set(ROOT / "conf" / "prompts" / "tele_llms_v1.yaml").get("relevance_web")
    r = Renderer(backend.tokenizer(), max_context - 1)
    rendered = [r.render(prompt, t) for t in texts]
    ids = r.label_ids(prompt)
    backend.next_token_logprobs([x.text for x in rendered[:4]], ids)  # warm-up
    t0 = time.perf_counter()
    backend.next_token_logprobs([x.text for x in rendered], ids)
    return time.perf_counter() - t0, sum(x.tokens for x in rendered)


def bench_stage(texts: list[str], workers: int, max_context: int, work: Path) -> float:
    from jobs.ingest import IngestJobConfig
    from jobs.ingest import run as run_ingest
    from jobs.judge import JudgeJobConfig
    from jobs.judge import run as run_judge
    from jobs.keyword_filter import KeywordJobConfig
    from jobs.keyword_filter import run as run_keywords
    from pipelines import config
    from pipelines.spark import SparkConfig, build_session

    spark = build_session(SparkConfig(master=f"local[{workers}]", log_level="ERROR",
                                      conf={"spark.ui.showConsoleProgress": "false"}), "bench-llm")
    base = {"lake": {"root": str(work / "lake")}}
    llm = {"kind": "transformers", "threads": 1, "max_context_tokens": max_context}
    warm = documents(2 * workers, len(texts[0]), seed=99)  # other documents: nothing cached for the bench
    for source, docs in (("warm", warm), ("bench", texts)):
        raw = work / f"raw_{source}"
        raw.mkdir(parents=True, exist_ok=True)
        (raw / "p.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(docs)))
        run_ingest(config.from_dict(IngestJobConfig, {**base, "ingest": {
            "source": source, "category": "web", "format": "jsonl", "paths": [str(raw)]}}), spark)
    run_keywords(config.from_dict(KeywordJobConfig, {**base, "keywords": {
        "sources": ["warm", "bench"], "lexicon": str(ROOT / "conf" / "lexicon" / "telecom_v1.yaml")}}), spark)
    judge = {"prompts": str(ROOT / "conf" / "prompts" / "tele_llms_v1.yaml"), "run": {"commit_every": 10_000}}
    run_judge(config.from_dict(JudgeJobConfig, {**base, "judge": {**judge, "sources": ["warm"]}, "llm": llm}), spark)
    t0 = time.perf_counter()
    (res,) = run_judge(config.from_dict(JudgeJobConfig, {**base, "judge": {**judge, "sources": ["bench"]},
                                                         "llm": llm}), spark)
    dt = time.perf_counter() - t0
    assert res.model_calls == len(texts), res
    spark.stop()
    return dt


def bench_classifier(n: int, chars: int) -> tuple[float, float]:
    from pipelines.llm import distilled

    texts = documents(n, chars, seed=1)
    labels = [("5G" in t or "gNB" in t or "MIMO" in t) for t in texts]
    params = distilled.ClassifierParams(max_chars=chars)
    path = tempfile.mktemp(suffix=".bin")
    t0 = time.perf_counter()
    distilled.train(texts[: n // 4], labels[: n // 4], params, path)
    train_s = time.perf_counter() - t0
    model = distilled.load(path)
    t0 = time.perf_counter()
    distilled.predict_yes(model, texts, chars)
    return n / (time.perf_counter() - t0), train_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=48)
    ap.add_argument("--chars", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-context", type=int, default=512)
    ap.add_argument("--classifier-docs", type=int, default=20000)
    args = ap.parse_args()
    texts = documents(args.docs, args.chars)
    work = Path(tempfile.mkdtemp(prefix="telelake-llm-bench-"))
    raw_s, tokens = bench_raw(texts, args.workers, args.max_context)
    stage_s = bench_stage(texts, args.workers, args.max_context, work)
    clf_rate, train_s = bench_classifier(args.classifier_docs, 4000)
    print(f"\n| measure | docs | prompt tokens | wall s | docs/s | tokens/s |\n|---|---|---|---|---|---|")
    print(f"| (a) raw forwards, 1 process × {args.workers} threads | {args.docs} | {tokens:,} | {raw_s:.1f} | "
          f"{args.docs / raw_s:.2f} | {tokens / raw_s:,.0f} |")
    print(f"| (b) judge stage, Spark local[{args.workers}] × 1 thread | {args.docs} | {tokens:,} | {stage_s:.1f} | "
          f"{args.docs / stage_s:.2f} | {tokens / stage_s:,.0f} |")
    print(f"| (c) distilled classifier predict, 1 core, 4,000-char docs | {args.classifier_docs:,} | | | "
          f"{clf_rate:,.0f} | |")
    print(f"\nstage overhead vs raw forwards: {100 * (stage_s / raw_s - 1):+.1f}%; classifier training on "
          f"{args.classifier_docs // 4:,} docs: {train_s:.1f} s")


if __name__ == "__main__":
    main()
