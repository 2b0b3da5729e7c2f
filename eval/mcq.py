"""Telecom MCQ benchmarks from a release's gold.benchmarks: Pass@1 and Maj@k per category and split.

Paper 001 §3: Pass@1 is the greedy answer's accuracy; Maj@k the accuracy of the majority vote of k
sampled answers (temperature in conf). Two ways to read a model's choice:
- `generate`: the model writes an answer; `eval/choice.py` extracts the option it names (an answer that
  names none counts wrong and is recorded as no_choice_found);
- `loglik`: no generation; each option is scored as the continuation of the prompt (mean
  log-probability per token) and the best one is the choice (lm-evaluation-harness's acc_norm idea).
`train` is reported as "seen", `test` as "unseen" (the adapters of issue 9 train on train); the
majority-class baseline (always the most common correct option index of the group) is printed
beside each score. All model calls go through the LLM stage's result store.
"""
from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eval import choice
from eval.calls import EvalInputError, ModelCalls, safe_name, seeded_sample
from eval.subjects import Subject, resolve_subject
from pipelines import lake
from pipelines.config import SHIPPED_CONF
from pipelines.llm.backend import BackendConfig, SamplingParams
from pipelines.llm.models import ResolvedModel
from pipelines.llm.prompts import Renderer, load_prompt_set
from pipelines.llm.requests import RunSpec, request_row, worker_tokenizer

log = logging.getLogger(__name__)

SPLIT_NAMES = {"train": "seen", "val": "val", "test": "unseen"}

ITEM_SCHEMA = pa.schema([
    pa.field("item_id", pa.string(), nullable=False),
    pa.field("category", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("answer", pa.int32(), nullable=False),
    pa.field("greedy_text", pa.string()),
    pa.field("greedy_choice", pa.int32()),
    pa.field("sample_choices", pa.list_(pa.int32())),
    pa.field("majority_choice", pa.int32()),
    pa.field("loglik_choice", pa.int32()),
    pa.field("pass_at_1", pa.bool_()),
    pa.field("maj_at_k", pa.bool_()),
    pa.field("failure", pa.string()),
])


@dataclass(frozen=True, kw_only=True)
class McqSpec:
    release: str = ""
    """Release name (telelake release list); the command line's --release sets it."""
    categories: list[str] | None = None
    """Benchmark categories (teleqna, oranbench, srsranbench, …); default every one in the release."""
    splits: list[str] = field(default_factory=lambda: ["train", "test"])
    """train = "seen", test = "unseen" (paper 001 Table 2)."""
    limit_per_group: int | None = None
    """A seeded sample of this many items per (category, split); default all."""
    seed: int = 1234
    mode: Literal["generate", "loglik"] = "generate"
    k: int = 4
    """Maj@k samples per item (0: Pass@1 only)."""
    temperature: float = 0.7
    max_new_tokens: int = 16
    chat: bool = True
    """Render through the model's chat template (instruct models); False for base models."""
    prompts: str = str(SHIPPED_CONF / "prompts" / "telelake_v1.yaml")
    prompt: str = "mcq"
    run: RunSpec = field(default_factory=RunSpec)


@dataclass(frozen=True)
class McqItem:
    item_id: str
    category: str
    split: str
    question: str
    choices: list[str]
    answer: int


@dataclass
class GroupScore:
    category: str
    split: str
    items: int
    pass_at_1: float
    maj_at_k: float | None
    baseline: float
    """Majority-class baseline: always the most common correct option index of the group."""
    failures: int


@dataclass
class McqSummary:
    model: str
    revision: str
    mode: str
    k: int
    groups: list[GroupScore]
    settings: dict
    seconds: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def load_items(cfg: lake.LakeConfig, spec: McqSpec) -> list[McqItem]:
    from pipelines.release.ops import read_release

    cols = ["item_id", "category", "split", "question", "choices", "answer"]
    rows = read_release(cfg, spec.release, "gold.benchmarks", cols).to_pylist()
    wanted = set(spec.categories) if spec.categories else None
    groups: dict[tuple[str, str], list[McqItem]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["item_id"]):
        if (wanted is None or r["category"] in wanted) and r["split"] in spec.splits:
            groups[(r["category"], r["split"])].append(McqItem(r["item_id"], r["category"], r["split"], r["question"],
                                                               list(r["choices"]), int(r["answer"])))
    missing = sorted((c, s) for c in (wanted or {k[0] for k in groups}) for s in spec.splits if (c, s) not in groups)
    if missing:
        raise EvalInputError(f"release {spec.release}: no benchmark items for "
                             + ", ".join(f"{c}/{s}" for c, s in missing)
                             + "; an empty split has no score: check `telelake benchmarks import` and the "
                               "release, or drop it from categories/splits")
    items = []
    for key in sorted(groups):
        items += seeded_sample(groups[key], spec.limit_per_group, [spec.seed, *map(ord, "|".join(key))])
    return items


def render(template, item: McqItem) -> str:
    options = "\n".join(f"{i + 1}. {c}" for i, c in enumerate(item.choices))
    return template.fill(question=item.question, options=options)


def evaluate(calls: ModelCalls, cfg: lake.LakeConfig, spec: McqSpec, subjects: list[Subject], out: Path,
             backend: BackendConfig | None = None) -> list[McqSummary]:
    backend = backend or BackendConfig()
    prompts = load_prompt_set(spec.prompts)
    prompt = prompts.get(spec.prompt)
    items = load_items(cfg, spec)
    summaries = []
    for subject in subjects:
        t0 = time.perf_counter()
        model = resolve_subject(subject, chat=spec.chat)
        rows = _predict(calls, spec, prompts.version, prompt, items, model, backend)
        table = pa.Table.from_pylist(rows, schema=ITEM_SCHEMA)
        summary = McqSummary(model=subject.name, revision=model.revision, mode=spec.mode,
                             k=spec.k if spec.mode == "generate" else 0, groups=group_scores(rows, spec),
                             settings={k: v for k, v in asdict(spec).items() if k != "run"}, seconds=0.0)
        summary.seconds = time.perf_counter() - t0
        folder = out / safe_name(subject.name)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"mcq_{spec.mode}.parquet")
        (folder / f"mcq_{spec.mode}.json").write_text(summary.to_json())
        for g in summary.groups:
            log.info("mcq %s %s/%s: Pass@1 %.3f%s (majority baseline %.3f) on %d items", subject.name, g.category,
                     SPLIT_NAMES.get(g.split, g.split), g.pass_at_1,
                     f", Maj@{spec.k} {g.maj_at_k:.3f}" if g.maj_at_k is not None else "", g.baseline, g.items)
        summaries.append(summary)
    return summaries


def _predict(calls: ModelCalls, spec: McqSpec, version: str, prompt, items: list[McqItem], model: ResolvedModel,
             backend: BackendConfig) -> list[dict]:
    tok = worker_tokenizer(model.path)

    def text_of(item: McqItem) -> str:
        text = render(prompt, item)
        if spec.chat:
            text = Renderer(tok, backend.max_context_tokens).chat(text)
        return text

    requests, keys = [], defaultdict(dict)
    greedy = SamplingParams(max_tokens=spec.max_new_tokens, temperature=0.0).to_json()
    sampled = SamplingParams(max_tokens=spec.max_new_tokens, temperature=spec.temperature, n=spec.k,
                             seed=spec.seed).to_json()
    for it in items:
        text = text_of(it)
        if spec.mode == "generate":
            r = request_row("generate", model, version, prompt.name, greedy, text, tokenizer=tok)
            requests.append(r)
            keys[it.item_id]["greedy"] = r["key"]
            if spec.k > 0:
                r = request_row("generate", model, version, prompt.name, sampled, text, tokenizer=tok)
                requests.append(r)
                keys[it.item_id]["sampled"] = r["key"]
        else:
            for i, c in enumerate(it.choices):
                r = request_row("continuation_logprob", model, version, prompt.name, "{}", text, tokenizer=tok,
                                continuation=f" {i + 1}. {c}")
                requests.append(r)
                keys[it.item_id][i] = r["key"]
    results = calls.run(requests, model, version, backend, spec.run)
    rows = []
    for it in items:
        k = keys[it.item_id]
        row = {"item_id": it.item_id, "category": it.category, "split": it.split, "answer": it.answer,
               "greedy_text": None, "greedy_choice": None, "sample_choices": None, "majority_choice": None,
               "loglik_choice": None, "pass_at_1": False, "maj_at_k": None, "failure": None}
        failures = []
        if spec.mode == "generate":
            out, err = results[k["greedy"]]
            if err:
                failures.append(f"generate: {err}")
            else:
                row["greedy_text"] = json.loads(out)[0]
                row["greedy_choice"] = choice.extract(row["greedy_text"], it.choices)
                if row["greedy_choice"] is None:
                    failures.append("no_choice_found")
            row["pass_at_1"] = row["greedy_choice"] == it.answer
            if spec.k > 0:
                out, err = results[k["sampled"]]
                if err:
                    failures.append(f"sample: {err}")
                    row["maj_at_k"] = False
                else:
                    votes = [choice.extract(t, it.choices) for t in json.loads(out)]
                    row["sample_choices"] = [-1 if v is None else v for v in votes]
                    row["majority_choice"] = choice.majority(votes)
                    row["maj_at_k"] = row["majority_choice"] == it.answer
        else:
            scores = []
            for i in range(len(it.choices)):
                out, err = results[k[i]]
                if err:
                    failures.append(f"score: {err}")
                    break
                n = max(1, len(tok(f" {i + 1}. {it.choices[i]}", add_special_tokens=False)["input_ids"]))
                scores.append(json.loads(out) / n)
            if not failures:
                row["loglik_choice"] = int(np.argmax(scores))
            row["pass_at_1"] = row["loglik_choice"] == it.answer
        row["failure"] = "; ".join(failures) or None
        rows.append(row)
    return rows


def group_scores(rows: list[dict], spec: McqSpec) -> list[GroupScore]:
    """Scores per (category, split), and "all" per split; each with its item count and baseline."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["category"], r["split"])].append(r)
        groups[("all", r["split"])].append(r)
    out = []
    for (cat, split), g in sorted(groups.items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        maj = [r["maj_at_k"] for r in g if r["maj_at_k"] is not None]
        out.append(GroupScore(category=cat, split=split, items=len(g),
                              pass_at_1=sum(r["pass_at_1"] for r in g) / len(g),
                              maj_at_k=sum(maj) / len(maj) if maj and spec.mode == "generate" and spec.k else None,
                              baseline=choice.majority_baseline([r["answer"] for r in g]),
                              failures=sum(r["failure"] is not None for r in g)))
    return out
