"""Tele-Eval (paper §IV): chunks of Tele-Data, generated question/answer pairs, the filter ledger and
gold.tele_eval in the public layout (Statement, Answer, ID) with its lineage."""
from __future__ import annotations

import pyarrow as pa

from schemas.contract import TableContract

TS = pa.timestamp("us", tz="UTC")

TELE_EVAL_CATEGORIES = ("arxiv", "standard", "wiki")
"""Paper §IV: papers, standards and Wikipedia, cleaner than the web."""

QNA_CHUNKS = TableContract(
    name="silver.qna_chunks",
    schema=pa.schema([
        pa.field("chunk_id", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("chunk_index", pa.int32(), nullable=False),
        pa.field("chunks", pa.int32(), nullable=False),
        pa.field("char_start", pa.int64(), nullable=False),
        pa.field("char_end", pa.int64(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("verdict", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("tele_data_version", pa.int64(), nullable=False),
        pa.field("chunker", pa.string(), nullable=False),
        pa.field("chunked_at", TS, nullable=False),
    ]),
    key=("chunk_id",),
    partition_by=("category",),
    description="segments of gold.tele_data content cut on paragraph boundaries, the unit of QnA generation",
    stats_strings=("chunk_id", "source_id", "doc_id", "verdict", "reason", "chunker"),
    column_docs={
        "chunk_id": "source_id:char_start-char_end, e.g. arxiv_12:0-19874",
        "source_id": "the Tele-Data id of the document (gold.tele_data.id): the ID of every pair from it",
        "char_start": "offset of the chunk's first character in the document's content",
        "char_end": "offset after its last character: text == content[char_start:char_end]",
        "verdict": "keep (sent to generation) | drop (reason chunk_too_short)",
        "chunker": "JSON of the chunker parameters (size, min_chars)",
    },
)

QNA_PAIRS = TableContract(
    name="silver.qna_pairs",
    schema=pa.schema([
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("chunk_id", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("pair_index", pa.int32(), nullable=False),
        pa.field("question", pa.string(), nullable=False),
        pa.field("answer", pa.string(), nullable=False),
        pa.field("parse_format", pa.string(), nullable=False),
        pa.field("parse_notes", pa.list_(pa.string()), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("model_revision", pa.string(), nullable=False),
        pa.field("prompt_version", pa.string(), nullable=False),
        pa.field("generation", pa.string(), nullable=False),
        pa.field("result_key", pa.string(), nullable=False),
        pa.field("generated_at", TS, nullable=False),
    ]),
    key=("pair_id",),
    partition_by=("category",),
    description="question/answer pairs parsed from the generator's output, one row per pair, before filtering",
    stats_strings=("pair_id", "chunk_id", "source_id", "parse_format", "model", "prompt_version", "generation"),
    column_docs={
        "pair_id": "sha256 (20 hex) of the chunk, the result key and the pair's index: stable for a model, prompt "
                   "and chunk (two chunks with the same text share one request, not their pairs)",
        "pair_index": "position of the pair in the model's output, from 0",
        "parse_format": "json (structured output or a JSON answer) | json_repaired (truncated JSON, complete "
                        "objects kept) | text (\"Question 1: … Answer 1: …\")",
        "parse_notes": "what the parser met in this output: fewer_pairs:<n>, extra_pairs:<n>, truncated, …",
        "generation": "id of the generation batch (fingerprint of tele_data version, chunker, model, prompt, sampling)",
        "result_key": "key of the silver.llm_results row that holds the raw output",
    },
)

QNA_VERDICTS = TableContract(
    name="silver.qna_verdicts",
    schema=pa.schema([
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("filtering", pa.string(), nullable=False),
        pa.field("verdict", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("regex_hits", pa.list_(pa.string()), nullable=False),
        pa.field("language", pa.string(), nullable=True),
        pa.field("language_score", pa.float64(), nullable=True),
        pa.field("p_answerable", pa.float64(), nullable=True),
        pa.field("duplicate_of", pa.string(), nullable=True),
        pa.field("similarity", pa.float64(), nullable=True),
        pa.field("contaminated_by", pa.string(), nullable=True),
        pa.field("filtered_at", TS, nullable=False),
    ]),
    key=("pair_id", "filtering"),
    description="the filter ledger: per generated pair and filtering run, where it left the chain and why",
    stats_strings=("pair_id", "filtering", "verdict", "stage", "reason", "duplicate_of", "contaminated_by"),
    column_docs={
        "filtering": "id of the filtering run (fingerprint of its inputs and filter conf)",
        "verdict": "keep | drop",
        "stage": "where the pair left the chain: regex | length | form | language | answerability | dedup | "
                 "decontamination; kept for kept pairs",
        "reason": "the filter's reason: the name of the first regex that matched (regex_hits holds all), "
                  "question_too_short, copies_passage, not_english, llm_no, near_duplicate, benchmark_overlap, …",
        "p_answerable": "P(Yes)/(P(Yes)+P(No)) of prompt 4 (answerable without the source); null when not asked",
        "duplicate_of": "pair kept from this pair's near-duplicate cluster (dedup)",
        "contaminated_by": "gold.benchmarks item_id the question overlaps (decontamination)",
    },
)

TELE_EVAL = TableContract(
    name="gold.tele_eval",
    schema=pa.schema([
        pa.field("Statement", pa.string(), nullable=False),
        pa.field("Answer", pa.string(), nullable=False),
        pa.field("ID", pa.string(), nullable=False),
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("chunk_id", pa.string(), nullable=False),
        pa.field("char_start", pa.int64(), nullable=False),
        pa.field("char_end", pa.int64(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("model_revision", pa.string(), nullable=False),
        pa.field("prompt_version", pa.string(), nullable=False),
        pa.field("p_answerable", pa.float64(), nullable=True),
        pa.field("language_score", pa.float64(), nullable=False),
        pa.field("filtering", pa.string(), nullable=False),
        pa.field("generated_at", TS, nullable=False),
    ]),
    key=("pair_id",),
    partition_by=("category",),
    description="Tele-Eval: open-ended telecom questions that passed every filter, in the paper's layout "
                "(Statement, Answer, ID) plus lineage",
    stats_strings=("ID", "pair_id", "chunk_id", "model", "prompt_version", "filtering"),
    column_docs={
        "Statement": "the question",
        "Answer": "the generated reference answer",
        "ID": "Tele-Data id of the source document (arxiv_36721, standard_1309, wiki_5438): select questions "
              "by the material they come from",
        "chunk_id": "the 20,000-character segment the pair was generated from (silver.qna_chunks)",
        "char_start": "the chunk's offsets in the source document's content",
        "p_answerable": "prompt 4's P(Yes): answerable without the source material (null when the LLM filter is off)",
        "filtering": "the filtering run that kept it (silver.qna_verdicts)",
    },
)

PUBLIC_TELE_EVAL_COLUMNS = ("Statement", "Answer", "ID")
