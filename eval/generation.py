"""Generation metrics of free-text answers (paper 002): lexical, embedding and judge-based, per item,
with paired-bootstrap confidence intervals and significance between models.

    items: a release's gold.instructions (a split, some tasks; reference = output, context = input) or
           gold.tele_eval (reference = Answer, context = the source chunk of Tele-Data)
      → answers of each model (chat template, greedy) through the LLM stage
      → BLEU-1..4, corpus sacreBLEU, ROUGE-L, embedding cosine, BERTScore P/R/F1
      → RAGAS-style faithfulness (share of the answer's statements the judge finds supported by the
        context) and answer correctness (0.75 × statement F1 against the reference + 0.25 × cosine,
        RAGAS's default weights), with a local judge reading P(Yes) vs P(No)
      → <out>/<model>/generation.parquet|json; each model against the first: paired bootstrap per metric

A statement the judge cannot decide (P(Yes)+P(No) under min_label_mass) is left out of its item's
judge metrics and counted; an item whose answer is empty scores 0 on the lexical metrics (the model
said nothing) and is recorded as `empty_answer`.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eval import bootstrap, textmetrics
from eval.calls import EvalInputError, ModelCalls, safe_name, seeded_sample
from eval.embed import DEFAULT as DEFAULT_EMBEDDER
from eval.embed import Embedder, embedder_folder
from eval.metrics import verdict
from eval.subjects import Subject, resolve_subject
from pipelines import lake
from pipelines.config import SHIPPED_CONF
from pipelines.llm.backend import BackendConfig, SamplingParams
from pipelines.llm.models import ModelSpec, ResolvedModel, resolve
from pipelines.llm.prompts import Renderer, load_prompt_set
from pipelines.llm.requests import RunSpec, request_row, worker_tokenizer

log = logging.getLogger(__name__)

LEXICAL = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cosine", "bertscore_p", "bertscore_r", "bertscore_f1")
JUDGED = ("faithfulness", "answer_correctness")


@dataclass(frozen=True, kw_only=True)
class GenerationSpec:
    release: str = ""
    """Release name; the command line's --release sets it."""
    source: Literal["instructions", "tele_eval"] = "instructions"
    split: str = "test"
    """instructions: the split evaluated (unseen by SFT when it trained on train)."""
    tasks: list[str] | None = None
    """instructions: only these tasks (mcq_answering, title_generation, …); default every free-text one."""
    limit: int | None = None
    seed: int = 1234
    max_new_tokens: int = 256
    chat: bool = True
    prompts: str = str(SHIPPED_CONF / "prompts" / "telelake_v1.yaml")
    embedder: str = DEFAULT_EMBEDDER
    bertscore_model: str = DEFAULT_EMBEDDER
    """A local encoder folder (or the embedded MiniLM) for BERTScore."""
    bertscore_layer: int = 6
    judge: ModelSpec | None = field(default_factory=ModelSpec)
    """RAGAS-style metrics' judge (a local instruct model); null leaves them out."""
    max_statements: int = 8
    min_label_mass: float = 0.01
    resamples: int = 1000
    run: RunSpec = field(default_factory=RunSpec)


@dataclass(frozen=True)
class GenItem:
    item_id: str
    prompt: str
    reference: str
    context: str


@dataclass
class GenerationSummary:
    model: str
    revision: str
    items: int
    means: dict[str, float]
    counts: dict[str, int]
    corpus_bleu: float
    bleu_signature: str
    failures: dict[str, int]
    against_first: dict[str, dict] | None
    settings: dict
    seconds: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def load_items(cfg: lake.LakeConfig, spec: GenerationSpec) -> list[GenItem]:
    from pipelines.release.ops import read_release

    if spec.source == "instructions":
        rows = read_release(cfg, spec.release, "gold.instructions",
                            ["instruction_id", "task", "instruction", "input", "output", "split"]).to_pylist()
        rows = [r for r in rows if r["split"] == spec.split and (not spec.tasks or r["task"] in spec.tasks)]
        items = [GenItem(r["instruction_id"], r["instruction"] if not r["input"] else f"{r['instruction']}\n\n{r['input']}",
                         r["output"], r["input"] or "") for r in rows]
    else:
        from eval.tele_eval import item_id

        te = read_release(cfg, spec.release, "gold.tele_eval", ["Statement", "Answer", "ID", "char_start", "char_end"])
        docs = read_release(cfg, spec.release, "gold.tele_data", ["id", "content"])
        content = dict(zip(docs["id"].to_pylist(), docs["content"].to_pylist(), strict=True))
        items = [GenItem(item_id(r["Statement"], r["Answer"], r["ID"]), r["Statement"], r["Answer"],
                         (content.get(r["ID"]) or "")[r["char_start"]:r["char_end"]][:4000]) for r in te.to_pylist()]
    items = sorted({i.item_id: i for i in items}.values(), key=lambda i: i.item_id)
    if not items:
        raise EvalInputError(f"release {spec.release}: no {spec.source} items"
                             + (f" in split {spec.split}" if spec.source == "instructions" else "")
                             + (f" for tasks {spec.tasks}" if spec.tasks else ""))
    return seeded_sample(items, spec.limit, spec.seed)


def evaluate(calls: ModelCalls, cfg: lake.LakeConfig, spec: GenerationSpec, subjects: list[Subject], out: Path,
             backend: BackendConfig | None = None) -> list[GenerationSummary]:
    backend = backend or BackendConfig()
    prompts = load_prompt_set(spec.prompts)
    items = load_items(cfg, spec)
    embedder = Embedder(spec.embedder)
    bert = textmetrics.BertScore(str(embedder_folder(spec.bertscore_model)), spec.bertscore_layer)
    judge = resolve(spec.judge, chat=True) if spec.judge is not None else None
    summaries, first_rows = [], None
    for subject in subjects:
        t0 = time.perf_counter()
        model = resolve_subject(subject, chat=spec.chat)
        predictions = _answers(calls, spec, prompts.version, items, model, backend)
        rows = lexical_rows(items, predictions, embedder, bert)
        if judge is not None:
            _judge_rows(calls, spec, prompts, items, rows, judge, backend)
        summary = summarize(subject.name, model.revision, rows, spec, first_rows)
        summary.seconds = time.perf_counter() - t0
        first_rows = first_rows or rows
        folder = out / safe_name(subject.name)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), folder / "generation.parquet")
        (folder / "generation.json").write_text(summary.to_json())
        log.info("generation %s on %d items: %s", subject.name, len(items),
                 ", ".join(f"{k} {v:.3f}" for k, v in summary.means.items()))
        summaries.append(summary)
    return summaries


def _answers(calls: ModelCalls, spec: GenerationSpec, version: str, items: list[GenItem], model: ResolvedModel,
             backend: BackendConfig) -> dict[str, tuple[str | None, str | None]]:
    tok = worker_tokenizer(model.path)
    params = SamplingParams(max_tokens=spec.max_new_tokens, temperature=0.0).to_json()
    renderer = Renderer(tok, backend.max_context_tokens)
    rows = []
    for it in items:
        text = renderer.chat(it.prompt) if spec.chat else it.prompt
        rows.append(request_row("generate", model, version, "generation", params, text, tokenizer=tok))
    results = calls.run(rows, model, version, backend, spec.run)
    out = {}
    for it, r in zip(items, rows, strict=True):
        value, error = results[r["key"]]
        out[it.item_id] = (json.loads(value)[0] if value else None, error)
    return out


def lexical_rows(items: list[GenItem], predictions: dict[str, tuple], embedder: Embedder,
                 bert: textmetrics.BertScore) -> list[dict]:
    """One row per item with the reference-based metrics (None where the model gave no answer)."""
    answered = [it for it in items if predictions[it.item_id][0] is not None]
    preds = [predictions[it.item_id][0] for it in answered]
    refs = [it.reference for it in answered]
    scores = {f"bleu{n}": textmetrics.bleu(preds, refs, n) for n in textmetrics.BLEU_ORDERS}
    scores["rouge_l"] = textmetrics.rouge_l(preds, refs)
    nonempty = [bool(p.strip()) for p in preds]
    cos = np.zeros(len(preds))
    if any(nonempty):
        idx = [i for i, ok in enumerate(nonempty) if ok]
        cos[idx] = embedder.cosine([refs[i] for i in idx], [preds[i] for i in idx])
    scores["cosine"] = cos
    b = bert(preds, refs)
    scores.update({"bertscore_p": b["precision"], "bertscore_r": b["recall"], "bertscore_f1": b["f1"]})
    position = {it.item_id: n for n, it in enumerate(answered)}
    rows = []
    for it in items:
        pred, error = predictions[it.item_id]
        row = {"item_id": it.item_id, "reference": it.reference, "prediction": pred}
        n = position.get(it.item_id)
        for k in LEXICAL:
            row[k] = None if n is None else (0.0 if not nonempty[n] else float(scores[k][n]))
        row["failure"] = f"generate: {error}" if error else ("empty_answer" if n is not None and not nonempty[n]
                                                              else None)
        row["faithfulness"] = row["answer_correctness"] = None
        row["statements"], row["undecided"] = 0, 0
        row["context"] = it.context
        rows.append(row)
    return rows


def _judge_rows(calls: ModelCalls, spec: GenerationSpec, prompts, items: list[GenItem], rows: list[dict],
                judge: ResolvedModel, backend: BackendConfig) -> None:
    """Fill faithfulness and answer correctness in `rows` from the judge's Yes/No on each statement."""
    tok = worker_tokenizer(judge.path)
    renderer = Renderer(tok, backend.max_context_tokens)
    supported, covers = prompts.get("statement_supported"), prompts.get("statement_covered")
    params = {p.name: json.dumps({"token_ids": renderer.label_ids(p), "labels": list(p.labels)}, sort_keys=True)
              for p in (supported, covers)}
    requests, asks = [], []  # asks: (row index, kind, request key)
    for n, (it, row) in enumerate(zip(items, rows, strict=True)):
        answer = statements_of(row["prediction"], spec)
        truth = textmetrics.statements(it.reference, spec.max_statements) or [it.reference]
        row["statements"] = len(answer)
        jobs = [("faithful", supported, {"reference": it.context, "statement": s}) for s in answer if it.context]
        jobs += [("precise", supported, {"reference": it.reference, "statement": s}) for s in answer]
        jobs += [("recalled", covers, {"answer": row["prediction"] or "", "statement": s}) for s in truth
                 if (row["prediction"] or "").strip()]
        for kind, prompt, values in jobs:
            r = request_row("next_token_logprobs", judge, prompts.version, prompt.name, params[prompt.name],
                            renderer.chat(prompt.fill(**values)), tokenizer=tok)
            requests.append(r)
            asks.append((n, kind, r["key"], prompt))
    results = calls.run(requests, judge, prompts.version, backend, spec.run)
    votes: dict[tuple[int, str], list[bool]] = {}
    for n, kind, key, prompt in asks:
        value, _ = results[key]
        if value is None:
            rows[n]["undecided"] += 1
            continue
        got = json.loads(value)
        v = verdict(got[prompt.labels[0]], got[prompt.labels[1]])
        if v.label_mass < spec.min_label_mass:
            rows[n]["undecided"] += 1
            continue
        votes.setdefault((n, kind), []).append(v.correct)
    for n, row in enumerate(rows):
        faithful = votes.get((n, "faithful"))
        if faithful:
            row["faithfulness"] = sum(faithful) / len(faithful)
        precise, recalled = votes.get((n, "precise")), votes.get((n, "recalled"))
        if precise is not None and recalled is not None and row["cosine"] is not None:
            tp, fp, fn = sum(precise), len(precise) - sum(precise), len(recalled) - sum(recalled)
            f1 = tp / (tp + 0.5 * (fp + fn)) if tp + fp + fn else 0.0
            row["answer_correctness"] = 0.75 * f1 + 0.25 * row["cosine"]


def statements_of(prediction: str | None, spec: GenerationSpec) -> list[str]:
    return textmetrics.statements(prediction or "", spec.max_statements)


def summarize(model: str, revision: str, rows: list[dict], spec: GenerationSpec,
              first: list[dict] | None) -> GenerationSummary:
    metrics = [*LEXICAL, *JUDGED]
    means, counts = {}, {}
    for k in metrics:
        vals = [r[k] for r in rows if r[k] is not None]
        counts[k] = len(vals)
        means[k] = float(np.mean(vals)) if vals else float("nan")
    failures: dict[str, int] = {}
    for r in rows:
        if r["failure"]:
            key = r["failure"].split(":")[0]
            failures[key] = failures.get(key, 0) + 1
        if r["undecided"]:
            failures["judge_undecided_statements"] = failures.get("judge_undecided_statements", 0) + r["undecided"]
    answered = [r for r in rows if r["prediction"] is not None]
    score, signature = textmetrics.corpus_bleu([r["prediction"] for r in answered], [r["reference"] for r in answered])
    against = None
    if first is not None:
        against = {}
        base = {r["item_id"]: r for r in first}
        for k in metrics:
            pairs = [(base[r["item_id"]][k], r[k]) for r in rows
                     if r["item_id"] in base and r[k] is not None and base[r["item_id"]][k] is not None]
            if pairs:
                c = bootstrap.paired([a for a, _ in pairs], [b for _, b in pairs], resamples=spec.resamples,
                                     seed=spec.seed)
                against[k] = {"n": c.n, "diff": c.diff.mean, "low": c.diff.low, "high": c.diff.high,
                              "p_value": c.p_value, "significant": c.significant}
    settings = {k: v for k, v in asdict(spec).items() if k not in ("run",)}
    return GenerationSummary(model=model, revision=revision, items=len(rows), means=means, counts=counts,
                             corpus_bleu=score, bleu_signature=signature, failures=failures, against_first=against,
                             settings=settings, seconds=0.0)
