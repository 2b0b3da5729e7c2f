"""General-skill retention (paper 000 Table III): MMLU, HellaSwag and GSM8K, zero-shot, from local files.

The task definitions follow lm-evaluation-harness 0.4's (`mmlu` default, `hellaswag`, `gsm8k`):
- MMLU: "The following are multiple choice questions (with answers) about {subject}." then the
  question, "A. …" to "D. …", "Answer:"; the choice is the highest log-likelihood of " A" … " D" (acc),
  read from one forward when each letter is a single token.
- HellaSwag: context "{activity_label}: {ctx_a} {ctx_b capitalized}", endings cleaned of "[title]"
  and bracketed tags; the choice is the highest log-likelihood per character of the ending (acc_norm).
- GSM8K: "Question: {question}\\nAnswer:", greedy until "Question:" or a blank line; exact match of the
  number after "####" (strict) or, failing that, the last number of the answer (flexible), against
  the reference's "#### N".
Data files are JSON lines in each dataset's published fields (MMLU: question, subject, choices, answer
0-3; HellaSwag: ctx_a, ctx_b, activity_label, endings, label; GSM8K: question, answer), given per task
in conf; a tiny bundled sample (`eval/data/`) keeps the path tested. Every model call goes through the
LLM stage's result store; settings (shots, batch, dtype, definition version) are recorded.
"""
from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eval.calls import EvalInputError, ModelCalls, safe_name, seeded_sample
from eval.subjects import Subject, resolve_subject
from pipelines import lake
from pipelines.llm.backend import BackendConfig, SamplingParams
from pipelines.llm.models import ResolvedModel
from pipelines.llm.requests import RunSpec, request_row, worker_tokenizer

log = logging.getLogger(__name__)

DEFINITIONS = "lm-evaluation-harness 0.4 zero-shot (mmlu, hellaswag acc_norm, gsm8k exact match)"
BUNDLED = Path(__file__).resolve().parent / "data"
TASKS = ("mmlu", "hellaswag", "gsm8k")
VERSION = "general-v1"
"""Prompt version of the requests (results are keyed by it)."""


@dataclass(frozen=True, kw_only=True)
class GeneralSpec:
    files: dict[str, str] = field(default_factory=lambda: {t: str(BUNDLED / f"{t}_sample.jsonl") for t in TASKS})
    """task → local JSON-lines file (default: the bundled samples of a few items each)."""
    limit: int | None = None
    """A seeded sample of this many items per task; default all."""
    seed: int = 1234
    max_new_tokens: int = 256
    """GSM8K answers."""
    run: RunSpec = field(default_factory=RunSpec)


@dataclass
class GeneralSummary:
    model: str
    revision: str
    scores: dict[str, float]
    items: dict[str, int]
    failures: dict[str, int]
    settings: dict
    seconds: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def read_task(task: str, path: str, spec: GeneralSpec) -> list[dict]:
    """The items of `task` from `path`; a malformed line is an error naming file and line."""
    if task not in TASKS:
        raise EvalInputError(f"unknown general task {task!r}; known: {list(TASKS)}")
    need = {"mmlu": ("question", "choices", "answer"), "hellaswag": ("ctx_a", "ctx_b", "endings", "label"),
            "gsm8k": ("question", "answer")}[task]
    items = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalInputError(f"{task}: cannot read {path}: {exc}; set eval.general.files.{task}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{path}:{n}: not JSON ({exc})") from exc
        missing = [k for k in need if k not in row]
        if missing:
            raise EvalInputError(f"{path}:{n}: {task} item lacks {missing} (fields: {list(need)})")
        items.append({**row, "item_id": f"{task}:{n}"})
    if not items:
        raise EvalInputError(f"{task}: {path} holds no items")
    return seeded_sample(items, spec.limit, [spec.seed, TASKS.index(task)])


def mmlu_prompt(item: dict) -> str:
    subject = str(item.get("subject") or "").replace("_", " ").strip()
    head = f"The following are multiple choice questions (with answers) about {subject}.\n\n" if subject else ""
    options = "".join(f"{letter}. {c}\n" for letter, c in zip("ABCD", item["choices"]))
    return f"{head}{item['question'].strip()}\n{options}Answer:"


def _hellaswag_clean(text: str) -> str:
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag_prompt(item: dict) -> tuple[str, list[str]]:
    ctx = item["ctx_a"] + " " + item["ctx_b"].capitalize()
    query = _hellaswag_clean(f"{item.get('activity_label', '')}: {ctx}")
    return query, [" " + _hellaswag_clean(e) for e in item["endings"]]


def letter_tokens(tok) -> dict[str, int] | None:
    """" A" … " D" as single token ids, or None where the tokenizer splits one: then each letter is a
    continuation of its own (the same log-likelihood: the continuation is tokenized on its own)."""
    ids = {x: tok(f" {x}", add_special_tokens=False)["input_ids"] for x in "ABCD"}
    return {x: v[0] for x, v in ids.items()} if all(len(v) == 1 for v in ids.values()) else None


def gsm8k_prompt(item: dict) -> str:
    return f"Question: {item['question']}\nAnswer:"


_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_NUMBER = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")


def gsm8k_number(text: str, *, strict: bool) -> str | None:
    """The answer number: after '####' (strict), else the last number in the text (flexible)."""
    m = _STRICT.search(text or "")
    if m:
        return _norm(m.group(1))
    if strict:
        return None
    found = [a or b for a, b in _NUMBER.findall(text or "")]
    return _norm(found[-1]) if found else None


def _norm(number: str) -> str:
    return number.replace(",", "").replace("$", "").rstrip(".").strip()


def evaluate(calls: ModelCalls, cfg: lake.LakeConfig, spec: GeneralSpec, subjects: list[Subject], out: Path,
             backend: BackendConfig | None = None) -> list[GeneralSummary]:
    backend = backend or BackendConfig()
    tasks = {t: read_task(t, p, spec) for t, p in spec.files.items()}
    summaries = []
    for subject in subjects:
        t0 = time.perf_counter()
        model = resolve_subject(subject, chat=False)
        rows = _score(calls, spec, tasks, model, backend)
        scores, items, failures = {}, {}, {}
        for t in tasks:
            mine = [r for r in rows if r["task"] == t]
            items[t] = len(mine)
            scores[t] = sum(r["correct"] for r in mine) / len(mine)
            failures[t] = sum(r["failure"] is not None for r in mine)
        settings = {"definitions": DEFINITIONS, "shots": 0, "files": spec.files, "limit": spec.limit,
                    "seed": spec.seed, "batch": backend.max_batch_size, "dtype": backend.dtype,
                    "max_new_tokens": spec.max_new_tokens}
        summary = GeneralSummary(model=subject.name, revision=model.revision, scores=scores, items=items,
                                 failures=failures, settings=settings, seconds=time.perf_counter() - t0)
        folder = out / safe_name(subject.name)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), folder / "general.parquet")
        (folder / "general.json").write_text(summary.to_json())
        log.info("general %s: %s", subject.name, ", ".join(f"{t} {s:.4f} ({items[t]})" for t, s in scores.items()))
        summaries.append(summary)
    return summaries


def _score(calls: ModelCalls, spec: GeneralSpec, tasks: dict[str, list[dict]], model: ResolvedModel,
           backend: BackendConfig) -> list[dict]:
    tok = worker_tokenizer(model.path)
    requests, plan = [], []
    gen = SamplingParams(max_tokens=spec.max_new_tokens, temperature=0.0, stop=("Question:", "\n\n")).to_json()

    def ask(task, prompt, continuation=None):
        kind = "generate" if continuation is None else "continuation_logprob"
        r = request_row(kind, model, VERSION, task, gen if continuation is None else "{}", prompt, tokenizer=tok,
                        continuation=continuation)
        requests.append(r)
        return r["key"]

    letters = letter_tokens(tok)
    for task, items in tasks.items():
        for it in items:
            if task == "mmlu":
                prompt, options = mmlu_prompt(it), "ABCD"[:len(it["choices"])]
                if letters:  # one forward reads every letter's log-likelihood
                    params = json.dumps({"token_ids": [letters[x] for x in options], "labels": list(options)})
                    r = request_row("next_token_logprobs", model, VERSION, task, params, prompt, tokenizer=tok)
                    requests.append(r)
                    plan.append((task, it, [r["key"]], None))
                else:
                    plan.append((task, it, [ask(task, prompt, f" {x}") for x in options], None))
            elif task == "hellaswag":
                query, endings = hellaswag_prompt(it)
                plan.append((task, it, [ask(task, query, e) for e in endings], [len(e) for e in endings]))
            else:
                plan.append((task, it, [ask(task, gsm8k_prompt(it))], None))
    results = calls.run(requests, model, VERSION, backend, spec.run)
    rows = []
    for task, it, keys, norms in plan:
        outs = [results[k] for k in keys]
        error = next((e for _, e in outs if e), None)
        row = {"task": task, "item_id": it["item_id"], "prediction": None, "reference": None, "correct": False,
               "failure": error}
        if error is None:
            if task == "gsm8k":
                text = json.loads(outs[0][0])[0]
                reference = gsm8k_number(it["answer"], strict=True)
                got = gsm8k_number(text, strict=True) or gsm8k_number(text, strict=False)
                row.update(prediction=got, reference=reference, correct=got is not None and got == reference)
                if got is None:
                    row["failure"] = "no_number_found"
            else:
                got = [json.loads(o) for o, _ in outs]
                ll = np.array([got[0][x] for x in "ABCD"[:len(it["choices"])]] if isinstance(got[0], dict) else got)
                if norms:
                    ll = ll / np.maximum(1, np.array(norms))
                gold = int(it["answer"] if task == "mmlu" else it["label"])
                choice = int(np.argmax(ll))
                row.update(prediction=str(choice), reference=str(gold), correct=choice == gold)
        rows.append(row)
    return rows
