"""LLM requests without Spark: what a request is, its key, and how a batch of them is answered.

A request row (REQUEST_SCHEMA) carries a rendered prompt and its parameters; its key is what produced
the result (task, model and revision, prompt version and name, parameters, prompt), so any store of
results keyed by it (the lake's `silver.llm_results`, or a folder: `pipelines/llm/local_store.py`)
answers a rerun without a model call. `answer` turns request rows into result rows with the
process's backend, loaded once; a failing request is isolated and recorded, never fatal.
Spark stages run it inside tasks (`runner.py`); an evaluation node without Spark runs it in process.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass

import pyarrow as pa

from pipelines.llm.backend import Backend, BackendConfig, SamplingParams

REQUEST_SCHEMA = pa.schema([
    pa.field("key", pa.string(), nullable=False),
    pa.field("task", pa.string(), nullable=False),
    pa.field("prompt_name", pa.string(), nullable=False),
    pa.field("prompt", pa.string(), nullable=False),
    pa.field("prompt_tokens", pa.int32(), nullable=False),
    pa.field("truncated", pa.bool_(), nullable=False),
    pa.field("params", pa.string(), nullable=False),
    pa.field("error", pa.string(), nullable=True),
    pa.field("continuation", pa.string(), nullable=True),
])
"""A request: `error` set means it is already known to fail (e.g. empty text) and is not sent;
`continuation` is the text whose log-likelihood after the prompt a continuation_logprob wants."""


def request_key(task: str, model, prompt_version: str, prompt_name: str, params: str, body: str,
                continuation: str | None = None) -> str:
    """What produced a result: task, model and revision, prompt version and name, parameters, the
    rendered prompt (and the scored continuation)."""
    parts = [task, model.name, model.revision, prompt_version, prompt_name, params, body]
    if continuation is not None:
        parts.append(continuation)
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def request_row(task: str, model, prompt_version: str, prompt_name: str, params: str, text: str, *,
                tokenizer, continuation: str | None = None) -> dict:
    """A REQUEST_SCHEMA row for an already rendered prompt `text` (an empty one is an error, not sent)."""
    error = None if text.strip() else "empty_text"
    if continuation is not None and not continuation.strip():
        error = "empty_continuation"
    return {"key": request_key(task, model, prompt_version, prompt_name, params, text, continuation),
            "task": task, "prompt_name": prompt_name, "prompt": text,
            "prompt_tokens": len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0,
            "truncated": False, "params": params, "error": error, "continuation": continuation}


def render_request(renderer, task: str, model, prompt_version: str, prompt, params: str, text: str,
                   item_id: str) -> dict:
    """A REQUEST_SCHEMA row for `text` under `prompt`: rendered through the chat template (cut to the
    renderer's token budget, the cut recorded), or with the error that keeps it from being sent.
    The key is what produced the result: task, model and revision, prompt version and name,
    parameters and the rendered prompt (for a request that cannot be rendered, its item id)."""
    error, rendered = None, None
    if not (text or "").strip():
        error = "empty_text"
    else:
        try:
            rendered = renderer.render(prompt, text)
        except Exception as exc:  # noqa: BLE001 - recorded on the request
            error = f"render_failed: {exc}"[:2000]
    body = rendered.text if rendered else ""
    key = request_key(task, model, prompt_version, prompt.name, params, body if rendered else f"{error}:{item_id}")
    return {"key": key, "task": task, "prompt_name": prompt.name,
            "prompt": body, "prompt_tokens": rendered.tokens if rendered else 0,
            "truncated": bool(rendered and rendered.truncated), "params": params, "error": error,
            "continuation": None}


_TOKENIZERS: dict[str, object] = {}


def worker_tokenizer(path: str):
    """The tokenizer of the model folder `path`, loaded once per worker process."""
    if path not in _TOKENIZERS:
        from transformers import AutoTokenizer

        _TOKENIZERS[path] = AutoTokenizer.from_pretrained(path)
    return _TOKENIZERS[path]


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    commit_every: int = 256
    """Requests per atomic commit to the result store: the most a crash can lose."""
    retry_errors: bool = False
    """Send again requests whose stored result is an error."""


@dataclass
class RunStats:
    requests: int = 0
    cached: int = 0
    model_calls: int = 0
    errors: int = 0
    chunks: int = 0
    seconds: float = 0.0


_BACKENDS: OrderedDict[str, Backend] = OrderedDict()
"""The backends of this process per config, most recently used last: a Spark worker or an evaluation
process loads a model once, and keeps at most MAX_BACKENDS (an evaluated model and its judge)."""
MAX_BACKENDS = 2


def worker_backend(cfg: BackendConfig) -> Backend:
    """The backend of this process for `cfg`, loaded on first use; the least recently used one is let go
    when more than MAX_BACKENDS would be held (a GPU holds few models at once)."""
    from pipelines.llm.backend import load_backend

    key = repr(cfg)
    if key in _BACKENDS:
        _BACKENDS.move_to_end(key)
        return _BACKENDS[key]
    while len(_BACKENDS) >= MAX_BACKENDS:
        _BACKENDS.popitem(last=False)
        _free_device_memory()
    _pin_task_gpus()
    _BACKENDS[key] = load_backend(cfg)
    return _BACKENDS[key]


def _free_device_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _pin_task_gpus() -> None:
    """On a Spark cluster with GPU scheduling (spark.task.resource.gpu.amount), make the GPUs
    Spark assigned to this task the only ones the engine sees: one engine per GPU."""
    import os

    try:
        from pyspark import TaskContext
    except ImportError:  # not in a Spark task: an evaluation node runs its requests in process
        return
    ctx = TaskContext.get()
    gpus = ctx.resources().get("gpu") if ctx is not None else None
    if gpus is not None and gpus.addresses:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus.addresses)


def answer(backend: Backend, rows: list[dict], model: str, revision: str, prompt_version: str) -> list[dict]:
    """Result-store rows (schemas.LLM_RESULTS) for request rows: requests of one task and parameters are
    batched into one backend call; a failing batch is retried request by request, and a request that
    still fails keeps its error."""
    now = pa.scalar(int(time.time() * 1e6), pa.timestamp("us", tz="UTC")).as_py()
    outputs: dict[int, tuple[str | None, str | None]] = {}
    groups: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(rows):
        if r["error"]:
            outputs[i] = (None, r["error"])
        else:
            groups.setdefault((r["task"], r["params"]), []).append(i)
    for (task, params), idx in groups.items():
        try:
            results = _call(backend, task, json.loads(params), [rows[i]["prompt"] for i in idx],
                            [rows[i].get("continuation") for i in idx])
            outputs.update({i: (json.dumps(res), None) for i, res in zip(idx, results)})
        except Exception:  # noqa: BLE001 - isolate the failing request(s), one by one
            for i in idx:
                try:
                    outputs[i] = (json.dumps(_call(backend, task, json.loads(params), [rows[i]["prompt"]],
                                                   [rows[i].get("continuation")])[0]), None)
                except Exception as exc:  # noqa: BLE001 - recorded per request, never fatal
                    outputs[i] = (None, f"{type(exc).__name__}: {exc}"[:2000])
    return [{"key": r["key"], "task": r["task"], "model": model, "model_revision": revision,
             "prompt_version": prompt_version, "prompt_name": r["prompt_name"], "params": r["params"],
             "prompt_tokens": r["prompt_tokens"], "truncated": r["truncated"], "output": outputs[i][0],
             "error": outputs[i][1], "created_at": now} for i, r in enumerate(rows)]


def _call(backend: Backend, task: str, params: dict, prompts: list[str], continuations: list) -> list:
    if task == "next_token_logprobs":
        lp = backend.next_token_logprobs(prompts, params["token_ids"])
        return [dict(zip(params["labels"], map(float, row))) for row in lp]
    if task == "generate":
        return backend.generate(prompts, SamplingParams(**{**params, "stop": tuple(params.get("stop", ()))}))
    if task == "continuation_logprob":
        tails = [c if c is not None else params.get("continuation") for c in continuations]
        if any(t is None for t in tails):
            raise ValueError("continuation_logprob needs a continuation (the request's, or in its params)")
        return backend.continuation_logprob(prompts, tails)
    raise ValueError(f"unknown task {task!r}; expected next_token_logprobs, generate or continuation_logprob")


