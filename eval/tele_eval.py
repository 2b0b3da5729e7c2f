"""Tele-Eval metrics of one or more models: Ans-PPL, SemScore and LLM-Eval (paper 000 §V).

    items (a release's gold.tele_eval, or the pairs of some source ids; a seeded sample)
      → per model: answer (prompt 5, greedy, 100 new tokens) + answer log-likelihood  ─┐ through
      → judge: prompt 6 over (question, ground truth, answer), P(Yes) vs P(No)        ─┘ the LLM stage
      → SemScore: cosine of MiniLM embeddings of ground truth and answer (on the driver)
      → per-item predictions (Parquet) and the model's summary (JSON), under <out>/<model>/

Every model call goes through the batch LLM stage (`pipelines/llm/runner.py`): its result store is
keyed by (task, model and revision, prompt version and name, parameters, rendered prompt), so a rerun
calls no model for work already done and a new model or item costs only itself. An item that fails
(an empty answer, a prompt over the context, a judge putting almost no probability on Yes or No) is
recorded with its reason, and each metric says how many items it rests on.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from eval import metrics
from eval.calls import EvalInputError, ModelCalls, safe_name, seeded_sample
from eval.embed import DEFAULT as DEFAULT_EMBEDDER
from eval.embed import Embedder
from eval.subjects import Subject, resolve_subject
from pipelines import lake
from pipelines.config import SHIPPED_CONF
from pipelines.llm.backend import BackendConfig, SamplingParams
from pipelines.llm.models import ModelSpec, ResolvedModel, resolve
from pipelines.llm.prompts import PromptSet, Renderer, load_prompt_set
from pipelines.llm.requests import RunSpec, request_row, worker_tokenizer

log = logging.getLogger(__name__)

ITEM_SCHEMA = pa.schema([
    pa.field("item_id", pa.string(), nullable=False),
    pa.field("source_id", pa.string(), nullable=False),
    pa.field("question", pa.string(), nullable=False),
    pa.field("ground_truth", pa.string(), nullable=False),
    pa.field("prediction", pa.string()),
    pa.field("answer_logprob", pa.float64()),
    pa.field("answer_tokens", pa.int32()),
    pa.field("pair_mean_logprob", pa.float64()),
    pa.field("semscore", pa.float64()),
    pa.field("judge_p_yes", pa.float64()),
    pa.field("judge_label_mass", pa.float64()),
    pa.field("judge_correct", pa.bool_()),
    pa.field("failure", pa.string()),  # why a metric is missing for this item (errors, empty answer, …)
])


@dataclass(frozen=True, kw_only=True)
class TeleEvalSpec:
    release: str = ""
    """Release name (telelake release list); the command line's --release sets it."""
    source_ids: list[str] | None = None
    """Only the pairs generated from these Tele-Data ids (the ID column); default all."""
    limit: int | None = None
    """A seeded sample of this many pairs; default every pair."""
    seed: int = 1234
    prompts: str = str(SHIPPED_CONF / "prompts" / "tele_llms_v1.yaml")
    answer_prompt: str = "answer"
    judge_prompt: str = "llm_eval"
    chat: bool = False
    """Render prompt 5 through the model's chat template (an instruct model); the paper evaluates base
    models with the plain completion text."""
    max_new_tokens: int = 100
    """The paper's answer length (greedy)."""
    stop: list[str] = field(default_factory=list)
    judge: ModelSpec = field(default_factory=ModelSpec)
    """The LLM-Eval judge (paper: Mixtral-8x7B-Instruct); default the embedded SmolLM2."""
    min_label_mass: float = 0.01
    """A judgement whose P(Yes) + P(No) is below this is not a Yes/No answer: recorded as a failure."""
    embedder: str = DEFAULT_EMBEDDER
    """SemScore's sentence-embedding model (paper: all-mpnet-base-v2, a local folder)."""
    run: RunSpec = field(default_factory=RunSpec)


@dataclass(frozen=True)
class Item:
    item_id: str
    source_id: str
    question: str
    ground_truth: str


@dataclass
class Summary:
    model: str
    revision: str
    items: int
    ans_ppl: float
    ans_ppl_n: int
    semscore: float
    semscore_n: int
    llm_eval: float
    llm_eval_n: int
    failures: dict[str, int]
    settings: dict
    seconds: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def item_id(question: str, answer: str, source_id: str) -> str:
    return hashlib.sha256("\0".join([source_id, question, answer]).encode()).hexdigest()[:20]


def load_items(cfg: lake.LakeConfig, spec: TeleEvalSpec) -> list[Item]:
    """The release's Tele-Eval pairs (filtered, sampled), in item-id order."""
    from pipelines.release.ops import read_release

    table = read_release(cfg, spec.release, "gold.tele_eval", ["Statement", "Answer", "ID"])
    rows = zip(*(table.column(c).to_pylist() for c in ("Statement", "Answer", "ID")), strict=True)
    wanted = set(spec.source_ids) if spec.source_ids else None
    items = sorted({item_id(q, a, s): Item(item_id(q, a, s), s, q, a) for q, a, s in rows
                    if wanted is None or s in wanted}.values(), key=lambda i: i.item_id)
    if not items:
        raise EvalInputError(f"release {spec.release}: no Tele-Eval pairs"
                             + (f" for the {len(wanted)} source ids given" if wanted else "")
                             + "; check the release holds gold.tele_eval (telelake release show)")
    return seeded_sample(items, spec.limit, spec.seed)


def evaluate(calls: ModelCalls, cfg: lake.LakeConfig, spec: TeleEvalSpec, subjects: list[Subject], out: Path,
             backend: BackendConfig | None = None) -> list[Summary]:
    """Evaluate each subject on the same items; writes <out>/<subject>/tele_eval.{parquet,json}."""
    backend = backend or BackendConfig()
    prompts = load_prompt_set(spec.prompts)
    items = load_items(cfg, spec)
    judge = resolve(spec.judge, chat=True)
    embedder = Embedder(spec.embedder)
    summaries = []
    for subject in subjects:
        t0 = time.perf_counter()
        model = resolve_subject(subject, cache_dir=spec.judge.cache_dir, chat=spec.chat)
        answers = _answers(calls, spec, prompts, items, model, backend)
        verdicts = _judge(calls, spec, prompts, items, answers, judge, backend)
        table, summary = score(items, answers, verdicts, embedder, spec, model)
        summary.seconds = time.perf_counter() - t0
        folder = out / safe_name(subject.name)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "tele_eval.parquet")
        (folder / "tele_eval.json").write_text(summary.to_json())
        log.info("tele-eval %s: Ans-PPL %.2f (%d), SemScore %.4f (%d), LLM-Eval %.2f (%d) of %d pairs in %.0f s",
                 subject.name, summary.ans_ppl, summary.ans_ppl_n, summary.semscore, summary.semscore_n,
                 summary.llm_eval, summary.llm_eval_n, summary.items, summary.seconds)
        summaries.append(summary)
    return summaries


def _answers(calls: ModelCalls, spec: TeleEvalSpec, prompts: PromptSet, items: list[Item], model: ResolvedModel,
             backend: BackendConfig) -> dict[str, dict]:
    """item id → {prediction, logprob, tokens, error}: greedy answers and answer log-likelihoods."""
    tok = worker_tokenizer(model.path)
    prompt = prompts.get(spec.answer_prompt)
    gen = SamplingParams(max_tokens=spec.max_new_tokens, temperature=0.0, stop=tuple(spec.stop)).to_json()
    rows, keys = [], {}
    for it in items:
        text = prompt.fill(statement=it.question)
        if spec.chat:
            text = Renderer(tok, backend.max_context_tokens).chat(text)
        g = request_row("generate", model, prompts.version, prompt.name, gen, text, tokenizer=tok)
        s = request_row("continuation_logprob", model, prompts.version, prompt.name, "{}", text, tokenizer=tok,
                        continuation=" " + it.ground_truth.strip())
        rows += [g, s]
        keys[it.item_id] = (g["key"], s["key"])
    results = calls.run(rows, model, prompts.version, backend, spec.run)
    out = {}
    for it in items:
        gk, sk = keys[it.item_id]
        (g_out, g_err), (s_out, s_err) = results[gk], results[sk]
        n = len(tok(" " + it.ground_truth.strip(), add_special_tokens=False)["input_ids"])
        out[it.item_id] = {"prediction": json.loads(g_out)[0] if g_out else None,
                           "logprob": json.loads(s_out) if s_out else None, "tokens": n,
                           "error": "; ".join(f"{k}: {e}" for k, e in (("generate", g_err), ("score", s_err)) if e)
                           or None}
    return out


def _judge(calls: ModelCalls, spec: TeleEvalSpec, prompts: PromptSet, items: list[Item], answers: dict[str, dict],
           judge: ResolvedModel, backend: BackendConfig) -> dict[str, tuple]:
    """item id → ((logprob Yes, logprob No), None) or (None, error), for every answered item."""
    tok = worker_tokenizer(judge.path)
    prompt = prompts.get(spec.judge_prompt)
    renderer = Renderer(tok, backend.max_context_tokens)
    labels = list(prompt.labels)
    params = json.dumps({"token_ids": renderer.label_ids(prompt), "labels": labels}, sort_keys=True)
    rows, keys = [], {}
    for it in items:
        prediction = (answers[it.item_id]["prediction"] or "").strip()
        if not prediction:
            continue
        text = renderer.chat(prompt.fill(question=it.question, ground_truth=it.ground_truth, prediction=prediction))
        row = request_row("next_token_logprobs", judge, prompts.version, prompt.name, params, text, tokenizer=tok)
        rows.append(row)
        keys[it.item_id] = row["key"]
    results = calls.run(rows, judge, prompts.version, backend, spec.run)
    out = {}
    for item, key in keys.items():
        value, error = results[key]
        if value:
            got = json.loads(value)
            out[item] = ((got[labels[0]], got[labels[1]]), None)
        else:
            out[item] = (None, error)
    return out


def score(items: list[Item], answers: dict[str, dict], verdicts: dict[str, tuple], embedder: Embedder,
          spec: TeleEvalSpec, model: ResolvedModel) -> tuple[pa.Table, Summary]:
    """Per-item rows and the three metrics over the items each could be computed for."""
    answered = [it for it in items if (answers[it.item_id]["prediction"] or "").strip()]
    sims = dict(zip([it.item_id for it in answered],
                    embedder.cosine([it.ground_truth for it in answered],
                                    [answers[it.item_id]["prediction"] for it in answered]).tolist(), strict=True))
    rows, failures = [], {}
    for it in items:
        a = answers[it.item_id]
        reasons = [a["error"]] if a["error"] else []
        pair = None
        if a["logprob"] is not None and a["tokens"] > 0:
            pair = metrics.pair_mean_logprob(a["logprob"], a["tokens"])
        elif a["logprob"] is not None:
            reasons.append("empty_ground_truth")
        prediction = a["prediction"]
        if prediction is not None and not prediction.strip():
            reasons.append("empty_answer")
        v = None
        if it.item_id in verdicts:
            value, error = verdicts[it.item_id]
            if value is None:
                reasons.append(f"judge: {error}")
            else:
                v = metrics.verdict(*value)
                if v.label_mass < spec.min_label_mass:
                    reasons.append("judge_not_yes_no")
        for r in reasons:
            failures[r.split(":")[0]] = failures.get(r.split(":")[0], 0) + 1
        ok_v = v is not None and v.label_mass >= spec.min_label_mass
        rows.append({"item_id": it.item_id, "source_id": it.source_id, "question": it.question,
                     "ground_truth": it.ground_truth, "prediction": prediction, "answer_logprob": a["logprob"],
                     "answer_tokens": a["tokens"], "pair_mean_logprob": pair, "semscore": sims.get(it.item_id),
                     "judge_p_yes": v.p_yes if v else None, "judge_label_mass": v.label_mass if v else None,
                     "judge_correct": v.correct if ok_v else None, "failure": "; ".join(reasons) or None})
    pairs = [r["pair_mean_logprob"] for r in rows if r["pair_mean_logprob"] is not None]
    sem = [r["semscore"] for r in rows if r["semscore"] is not None]
    judged = [r["judge_correct"] for r in rows if r["judge_correct"] is not None]
    settings = {"release": spec.release, "source_ids": len(spec.source_ids or []), "limit": spec.limit,
                "seed": spec.seed, "prompts": Path(spec.prompts).name, "chat": spec.chat,
                "max_new_tokens": spec.max_new_tokens, "judge": spec.judge.path, "embedder": spec.embedder,
                "min_label_mass": spec.min_label_mass}
    summary = Summary(model=model.name, revision=model.revision, items=len(items), ans_ppl=metrics.ans_ppl(pairs),
                      ans_ppl_n=len(pairs), semscore=metrics.mean(sem), semscore_n=len(sem),
                      llm_eval=metrics.llm_eval(judged), llm_eval_n=len(judged), failures=failures,
                      settings=settings, seconds=0.0)
    return pa.Table.from_pylist(rows, schema=ITEM_SCHEMA), summary
