"""Evaluation cost per metric on CPU with the embedded models: items/s of each metric's model calls and
of the metric arithmetic, side by side in one process.

    .venv/bin/python benchmarks/eval_metrics.py --items 32 --threads 2

Items are TeleQnA questions (`../shared/data/benchmarks/teleqna`, else the demo MCQ sample): for
Tele-Eval-style metrics the question is the Statement and the explanation (or the answer text) the
reference. Every model call is built by the stages' own request code (`request_row`, the prompts of
conf/prompts, the defaults of each stage's spec) and executed by the worker's code path
(`requests.answer`, grouped and batched as a Spark task does), on one process with `--threads` torch
threads; what Spark adds around it (render, result store, commits) is measured in issue 3
(docs/BENCHMARKS.md: −1.2% to +9% at 48-192 requests). Timed after a warm-up call of each kind.

Rows (items/s):
- Ans-PPL: one continuation log-likelihood (prompt 5 + reference answer) per item
- answers, prompt 5: greedy generation of 100 new tokens (what SemScore and LLM-Eval score)
- SemScore: MiniLM embeddings of answer and reference, cosine
- LLM-Eval: one Yes/No next-token judgement (prompt 6) per item
- MCQ Pass@1: greedy generation of 16 tokens; Maj@4: 4 samples at temperature 0.7; log-likelihood
  mode: one continuation per option
- BLEU-1..4 + ROUGE-L; BERTScore (MiniLM layer 6); RAGAS-style: judge calls per answer statement
- MMLU: the 4 letters' log-likelihoods as 4 continuations, and as one next-token call (what the stage
  sends when each letter is one token; the same values, checked), HellaSwag (4 endings), GSM8K (greedy, 256 tokens, stop at "Question:")
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data" / "benchmarks" / "teleqna" / "TeleQnA.txt"


def teleqna(n: int) -> list[dict]:
    if SHARED.is_file():
        data = list(json.loads(SHARED.read_text()).values())
        items = [{"question": v["question"], "choices": [v[f"option {i}"] for i in range(1, 6) if f"option {i}" in v],
                  "answer": int(v["answer"].split(":")[0].split()[-1]) - 1,
                  "reference": v.get("explanation") or v["answer"].split(":", 1)[-1].strip()} for v in data]
    else:
        from pipelines.demo.corpus import load_corpus

        items = [{"question": q["question"], "choices": q["options"], "answer": 0, "reference": q["options"][0]}
                 for q in load_corpus()["mcq"]]
    step = max(1, len(items) // n)
    return items[::step][:n]


class Caller:
    """Request rows → outputs through the worker's code path, timed."""

    def __init__(self, threads: int) -> None:
        import torch

        from pipelines.llm.backend import BackendConfig, load_backend
        from pipelines.llm.models import ModelSpec, resolve
        from pipelines.llm.requests import worker_tokenizer

        torch.set_num_threads(threads)
        self.model = resolve(ModelSpec(), chat=True)
        self.backend = load_backend(BackendConfig(kind="transformers", threads=threads))
        self.tok = worker_tokenizer(self.model.path)

    def rows(self, task: str, prompt_name: str, params: str, texts: list[str], continuations=None) -> list[dict]:
        from pipelines.llm.requests import request_row

        conts = continuations or [None] * len(texts)
        return [request_row(task, self.model, "bench", prompt_name, params, t, tokenizer=self.tok, continuation=c)
                for t, c in zip(texts, conts, strict=True)]

    def __call__(self, rows: list[dict]) -> tuple[list, float]:
        from pipelines.llm.requests import answer

        self.prompt_tokens = sum(r["prompt_tokens"] or 0 for r in rows) / len(rows)
        self.warm(rows)
        t0 = time.perf_counter()
        out = answer(self.backend, rows, "bench", self.model.revision, "bench")
        seconds = time.perf_counter() - t0
        bad = [r["error"] for r in out if r["error"]]
        if bad:
            raise SystemExit(f"{len(bad)} calls failed, first: {bad[0]}")
        return [json.loads(r["output"]) for r in out], seconds

    def warm(self, rows: list[dict]) -> None:
        from pipelines.llm.requests import answer

        answer(self.backend, rows[:2], "bench", self.model.revision, "bench")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()

    import numpy as np

    from eval import general, textmetrics
    from eval.embed import Embedder, embedder_folder
    from eval.generation import GenerationSpec
    from eval.mcq import McqItem, McqSpec, render
    from eval.tele_eval import TeleEvalSpec
    from pipelines.llm.backend import SamplingParams
    from pipelines.llm.prompts import Renderer, load_prompt_set

    items = teleqna(args.items)
    n = len(items)
    call = Caller(args.threads)
    renderer = Renderer(call.tok, 4096)
    results: list[dict] = []

    def record(metric: str, count: int, seconds: float, unit: str = "items", model: bool = True, **extra) -> None:
        tokens = round(call.prompt_tokens) if model else None
        results.append({"metric": metric, unit: count, "seconds": round(seconds, 2),
                        f"{unit}_per_s": round(count / seconds, 2), "prompt_tokens_per_call": tokens, **extra})
        print(f"{metric:<56} {count:>5} {unit:<10} {seconds:8.2f} s {count / seconds:9.2f} {unit}/s"
              + (f"  ({tokens} prompt tokens a call)" if model else ""), flush=True)

    te = TeleEvalSpec()
    paper = load_prompt_set(te.prompts)
    answer_prompt, judge_prompt = paper.get(te.answer_prompt), paper.get(te.judge_prompt)
    texts = [answer_prompt.fill(statement=it["question"]) for it in items]
    _, s = call(call.rows("continuation_logprob", "answer", "{}", texts, [" " + it["reference"] for it in items]))
    record("Tele-Eval Ans-PPL (answer log-likelihood)", n, s)
    gen = SamplingParams(max_tokens=te.max_new_tokens, temperature=0.0).to_json()
    outs, s = call(call.rows("generate", "answer", gen, texts))
    answers = [o[0] for o in outs]
    new_tokens = sum(len(call.tok(a, add_special_tokens=False)["input_ids"]) for a in answers)
    record(f"Tele-Eval answers (greedy, {te.max_new_tokens} new tokens)", n, s, new_tokens_per_s=round(new_tokens / s, 1))
    embedder = Embedder(te.embedder)
    embedder.cosine(answers[:2], [it["reference"] for it in items[:2]])
    t0 = time.perf_counter()
    embedder.cosine(answers, [it["reference"] for it in items])
    record("Tele-Eval SemScore (MiniLM cosine)", n, time.perf_counter() - t0, model=False)
    labels = json.dumps({"token_ids": renderer.label_ids(judge_prompt), "labels": list(judge_prompt.labels)},
                        sort_keys=True)
    judged = [renderer.chat(judge_prompt.fill(question=it["question"], ground_truth=it["reference"],
                                              prediction=a or "-")) for it, a in zip(items, answers, strict=True)]
    _, s = call(call.rows("next_token_logprobs", "llm_eval", labels, judged))
    record("Tele-Eval LLM-Eval (Yes/No judgement)", n, s)

    mcq = McqSpec()
    prompts = load_prompt_set(mcq.prompts)
    mcq_prompt = prompts.get(mcq.prompt)
    mcq_items = [McqItem(str(i), "teleqna", "test", it["question"], it["choices"], it["answer"])
                 for i, it in enumerate(items)]
    mtexts = [renderer.chat(render(mcq_prompt, it)) for it in mcq_items]
    greedy = SamplingParams(max_tokens=mcq.max_new_tokens, temperature=0.0).to_json()
    _, s = call(call.rows("generate", "mcq", greedy, mtexts))
    record(f"MCQ Pass@1 (greedy, {mcq.max_new_tokens} tokens)", n, s)
    sampled = SamplingParams(max_tokens=mcq.max_new_tokens, temperature=mcq.temperature, n=mcq.k,
                             seed=mcq.seed).to_json()
    _, s = call(call.rows("generate", "mcq", sampled, mtexts))
    record(f"MCQ Maj@{mcq.k} ({mcq.k} samples, T={mcq.temperature})", n, s)
    pairs = [(t, f" {i + 1}. {c}") for t, it in zip(mtexts, mcq_items, strict=True) for i, c in enumerate(it.choices)]
    _, s = call(call.rows("continuation_logprob", "mcq", "{}", [p for p, _ in pairs], [c for _, c in pairs]))
    record("MCQ log-likelihood mode (one call per option)", n, s, options=len(pairs))

    refs = [it["reference"] for it in items]
    t0 = time.perf_counter()
    for order in textmetrics.BLEU_ORDERS:
        textmetrics.bleu(answers, refs, order)
    textmetrics.rouge_l(answers, refs)
    textmetrics.corpus_bleu(answers, refs)
    record("generation BLEU-1..4 + ROUGE-L + sacreBLEU", n, time.perf_counter() - t0, model=False)
    gspec = GenerationSpec()
    bert = textmetrics.BertScore(str(embedder_folder(gspec.bertscore_model)), gspec.bertscore_layer)
    bert(answers[:2], refs[:2])
    t0 = time.perf_counter()
    bert(answers, refs)
    record("generation BERTScore (MiniLM layer 6)", n, time.perf_counter() - t0, model=False)
    supported = prompts.get("statement_supported")
    sup_labels = json.dumps({"token_ids": renderer.label_ids(supported), "labels": list(supported.labels)},
                            sort_keys=True)
    stmts = [(it["reference"], st) for it, a in zip(items, answers, strict=True)
             for st in textmetrics.statements(a, gspec.max_statements)]
    _, s = call(call.rows("next_token_logprobs", "statement_supported", sup_labels,
                          [renderer.chat(supported.fill(reference=r, statement=st)) for r, st in stmts]))
    record("generation RAGAS-style (one judgement per statement)", len(stmts), s, unit="statements",
           statements_per_item=round(len(stmts) / n, 2))

    g = general.GeneralSpec()
    bundled = {t: general.read_task(t, p, g) for t, p in g.files.items()}
    mmlu = [{"question": it["question"], "subject": "telecommunications", "choices": it["choices"][:4],
             "answer": min(it["answer"], 3)} for it in items]
    prompts_mmlu = [general.mmlu_prompt(it) for it in mmlu]
    rows = [(p, f" {letter}") for p in prompts_mmlu for letter in "ABCD"]
    each, s_each = call(call.rows("continuation_logprob", "mmlu", "{}", [p for p, _ in rows], [c for _, c in rows]))
    record("general MMLU, 4 letter continuations per item", n, s_each)
    letters = general.letter_tokens(call.tok)
    params = json.dumps({"token_ids": [letters[x] for x in "ABCD"], "labels": list("ABCD")})
    one, s_one = call(call.rows("next_token_logprobs", "mmlu", params, prompts_mmlu))
    same = np.allclose(np.array(each).reshape(n, 4), [[o[x] for x in "ABCD"] for o in one], atol=1e-3)
    record("general MMLU, one next-token call per item (the stage)", n, s_one, speedup=round(s_each / s_one, 2),
           same_scores=bool(same))
    hs = (bundled["hellaswag"] * (n // len(bundled["hellaswag"]) + 1))[:n]
    rows = [(q, e) for q, ends in (general.hellaswag_prompt(it) for it in hs) for e in ends]
    _, s = call(call.rows("continuation_logprob", "hellaswag", "{}", [p for p, _ in rows], [c for _, c in rows]))
    record("general HellaSwag (ending log-likelihoods)", n, s)
    gsm = (bundled["gsm8k"] * (n // len(bundled["gsm8k"]) + 1))[: max(4, n // 4)]
    gparams = SamplingParams(max_tokens=g.max_new_tokens, temperature=0.0, stop=("Question:", "\n\n")).to_json()
    _, s = call(call.rows("generate", "gsm8k", gparams, [general.gsm8k_prompt(it) for it in gsm]))
    record(f"general GSM8K (greedy, ≤{g.max_new_tokens} tokens)", len(gsm), s)

    info = {"items": n, "threads": args.threads, "model": call.model.name, "revision": call.model.revision,
            "source": "TeleQnA" if SHARED.is_file() else "demo sample", "results": results,
            "mean_answer_tokens": float(np.mean([len(call.tok(a)["input_ids"]) for a in answers]))}
    if args.out:
        Path(args.out).write_text(json.dumps(info, indent=2))
    print(json.dumps({k: v for k, v in info.items() if k != "results"}))


if __name__ == "__main__":
    main()
