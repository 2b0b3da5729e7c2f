"""LLM stage tables: the result store every LLM call goes through, and the relevance verdicts."""
from __future__ import annotations

import pyarrow as pa

from schemas.contract import TableContract

TS = pa.timestamp("us", tz="UTC")

LLM_RESULTS = TableContract(
    name="silver.llm_results",
    schema=pa.schema([
        pa.field("key", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("model_revision", pa.string(), nullable=False),
        pa.field("prompt_version", pa.string(), nullable=False),
        pa.field("prompt_name", pa.string(), nullable=False),
        pa.field("params", pa.string(), nullable=False),
        pa.field("prompt_tokens", pa.int32(), nullable=False),
        pa.field("truncated", pa.bool_(), nullable=False),
        pa.field("output", pa.string(), nullable=True),
        pa.field("error", pa.string(), nullable=True),
        pa.field("created_at", TS, nullable=False),
    ]),
    key=("key",),
    partition_by=("task",),
    description="one row per LLM request, keyed by what produced it; reruns skip keys already here "
                "(a retried error adds a row: readers prefer the success)",
    stats_strings=("key", "model", "model_revision", "prompt_version"),
    column_docs={
        "key": "sha256 of (task, model, revision, prompt version, rendered prompt, parameters)",
        "task": "next_token_logprobs | generate | continuation_logprob",
        "params": "JSON of the request parameters (label token ids, sampling parameters)",
        "prompt_tokens": "tokens of the rendered prompt",
        "truncated": "the document was cut by tokens to fit the model's context",
        "output": "JSON result (e.g. {\"Yes\": logprob, \"No\": logprob}); null when error is set",
        "error": "why the request failed (empty_text, too_long, backend message); null on success",
    },
)

RELEVANCE = TableContract(
    name="silver.relevance",
    schema=pa.schema([
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("model_revision", pa.string(), nullable=False),
        pa.field("prompt_version", pa.string(), nullable=False),
        pa.field("prompt_name", pa.string(), nullable=False),
        pa.field("p_yes", pa.float64(), nullable=True),
        pa.field("threshold", pa.float64(), nullable=False),
        pa.field("verdict", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("truncated", pa.bool_(), nullable=False),
        pa.field("prompt_tokens", pa.int32(), nullable=False),
        pa.field("result_key", pa.string(), nullable=False),
        pa.field("judged_at", TS, nullable=False),
    ]),
    key=("doc_id", "source", "model", "model_revision", "prompt_version", "threshold"),
    partition_by=("source",),
    description="LLM relevance judgement per document: P(Yes)/(P(Yes)+P(No)) and the verdict at a threshold",
    stats_strings=("doc_id", "model", "prompt_version", "verdict", "reason"),
    column_docs={
        "p_yes": "P(Yes) / (P(Yes) + P(No)) for the first answer token; null when the request failed",
        "verdict": "keep (p_yes >= threshold) | drop | error",
        "reason": "llm_yes | llm_no | the request's error",
        "result_key": "key of the row in silver.llm_results that holds the raw log-probabilities",
    },
)

CASCADE = TableContract(
    name="silver.cascade",
    schema=pa.schema([
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("classifier_id", pa.string(), nullable=False),
        pa.field("p_clf", pa.float64(), nullable=False),
        pa.field("band", pa.string(), nullable=False),
        pa.field("p_yes", pa.float64(), nullable=True),
        pa.field("verdict", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("decided_at", TS, nullable=False),
    ]),
    key=("doc_id", "source", "classifier_id"),
    partition_by=("source",),
    description="distilled-classifier cascade: auto keep/drop outside the uncertain band, the LLM judge inside it",
    stats_strings=("doc_id", "classifier_id", "band", "verdict", "reason"),
    column_docs={
        "classifier_id": "hash of the judge settings, training sample and classifier parameters",
        "p_clf": "the distilled classifier's P(yes)",
        "band": "sample (judged to train the classifier: the judge decides) | auto_keep (p_clf >= hi) | "
                "auto_drop (p_clf < lo) | llm (in between: judged by the LLM)",
        "p_yes": "the LLM judge's P(Yes) for documents of the sample and llm bands; null otherwise",
        "reason": "auto_keep | auto_drop | llm_yes | llm_no | the LLM request's error",
    },
)
