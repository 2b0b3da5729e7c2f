"""The folder result store and in-process requests: the LLM stage's contract without Spark. A stored key
costs no model call, a later success wins over an earlier error, results are committed per chunk as
whole files, a request known to fail is recorded and never sent."""
import datetime as dt
import json

import pyarrow.parquet as pq
import pytest

from pipelines.llm.backend import BackendConfig
from pipelines.llm.local_store import FolderStore, run_in_process
from pipelines.llm.models import ModelSpec, ResolvedModel
from pipelines.llm.requests import RunSpec, request_row, worker_tokenizer
from schemas.llm import LLM_RESULTS
from tests.eval.test_tele_eval import _tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = _tiny(tmp_path_factory.mktemp("store") / "tiny")
    return ResolvedModel(name="tiny", path=str(folder), revision="r1")


def rows(model, texts, labels=(100, 200)):
    tok = worker_tokenizer(model.path)
    params = json.dumps({"token_ids": list(labels), "labels": ["Yes", "No"]})
    return [request_row("next_token_logprobs", model, "v1", "judge", params, t, tokenizer=tok) for t in texts]


def test_requests_run_once_in_chunks_and_a_rerun_reads_the_store(tiny, tmp_path):
    store = FolderStore(tmp_path / "results")
    cfg = BackendConfig(kind="transformers", model=ModelSpec(path=tiny.path))
    reqs = rows(tiny, ["The gNB schedules", "An AMF registers", "", "The UPF forwards", "The SMF"])
    stats = run_in_process(store, reqs, cfg, RunSpec(commit_every=2), model="tiny", revision="r1", prompt_version="v1")
    assert (stats.requests, stats.cached, stats.model_calls, stats.chunks, stats.errors) == (5, 0, 4, 3, 1)
    files = store.files()
    assert len(files) == 3 and not list((tmp_path / "results").glob(".*.tmp"))
    assert all(pq.read_schema(f).equals(LLM_RESULTS.schema, check_metadata=False) for f in files)
    results = store.results()
    assert results[reqs[2]["key"]] == (None, "empty_text")  # recorded, never sent
    scores = json.loads(results[reqs[0]["key"]][0])
    assert set(scores) == {"Yes", "No"} and all(v < 0 for v in scores.values())

    again = run_in_process(store, reqs + rows(tiny, ["A new one"]), cfg, RunSpec(commit_every=2), model="tiny",
                           revision="r1", prompt_version="v1")
    assert (again.cached, again.model_calls) == (5, 1) and len(store.files()) == 4


def test_a_later_success_wins_over_an_earlier_error_and_retry_sends_errors_again(tiny, tmp_path):
    store = FolderStore(tmp_path / "results")
    req = rows(tiny, ["The gNB schedules"])[0]
    failed = {**req, "model": "tiny", "model_revision": "r1", "prompt_version": "v1", "output": None,
              "error": "RuntimeError: out of memory", "created_at": dt.datetime.now(dt.UTC)}
    store.append([{k: failed[k] for k in LLM_RESULTS.schema.names}])
    cfg = BackendConfig(kind="transformers", model=ModelSpec(path=tiny.path))
    kept = run_in_process(store, [req], cfg, RunSpec(), model="tiny", revision="r1", prompt_version="v1")
    assert (kept.cached, kept.model_calls, kept.errors) == (1, 0, 1)  # an error is a result unless retried
    retried = run_in_process(store, [req], cfg, RunSpec(retry_errors=True), model="tiny", revision="r1",
                             prompt_version="v1")
    assert (retried.cached, retried.model_calls, retried.errors) == (0, 1, 0)
    output, error = store.results()[req["key"]]
    assert error is None and set(json.loads(output)) == {"Yes", "No"}
