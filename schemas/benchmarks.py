"""gold.benchmarks: telecom multiple-choice benchmarks (TeleQnA, ORAN-Bench-13K, srsRANBench, GSMA
ot-full configs) in one MCQ schema, with a seeded train/val/test split per category."""
from __future__ import annotations

import pyarrow as pa

from schemas.contract import TableContract

TS = pa.timestamp("us", tz="UTC")

SPLITS = ("train", "val", "test")
"""Paper 001 §2: 60/20/20 per category with a fixed seed; `train` is "seen", `test` "unseen"."""

GSMA_CATEGORIES = ("teleqna", "6g_bench", "3gpp_tsg", "oranbench", "srsranbench", "teletables", "telemath",
                   "telelogs")
"""GSMA ot-full configurations (paper 001, Table 1); other names are accepted for local benchmarks."""

BENCHMARKS = TableContract(
    name="gold.benchmarks",
    schema=pa.schema([
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("subject", pa.string(), nullable=True),
        pa.field("difficulty", pa.string(), nullable=True),
        pa.field("question", pa.string(), nullable=False),
        pa.field("choices", pa.list_(pa.string()), nullable=False),
        pa.field("answer", pa.int32(), nullable=False),
        pa.field("explanation", pa.string(), nullable=True),
        pa.field("split", pa.string(), nullable=False),
        pa.field("question_key", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_location", pa.string(), nullable=False),
        pa.field("repairs", pa.list_(pa.string()), nullable=False),
        pa.field("import_batch", pa.string(), nullable=False),
        pa.field("imported_at", TS, nullable=False),
    ]),
    key=("item_id",),
    partition_by=("category",),
    description="multiple-choice benchmark items of every configured benchmark in one schema, each with its "
                "split; rebuilt whole by each import (ids and splits are stable as items are added)",
    stats_strings=("item_id", "subject", "difficulty", "split", "question_key", "source", "import_batch"),
    column_docs={
        "item_id": "category + '_' + 16 hex of sha256(category, question, choices) with case and spacing folded: "
                   "the same item keeps its id in every import",
        "category": "benchmark category (GSMA ot-full config name: teleqna, oranbench, srsranbench, 3gpp_tsg, "
                    "teletables, …); one LoRA adapter per category",
        "subject": "finer topic when the source has one (TeleQnA: Lexicon, Standards specifications, …; "
                   "GSMA: subject)",
        "difficulty": "easy | medium | hard where the source grades it (ORAN-Bench-13K files E/M/H)",
        "choices": "option texts in their original order, numbering prefixes (\"1. \") removed",
        "answer": "0-based index of the correct choice",
        "split": "train | val | test: hash(seed, category, question_key) against the conf fractions, so an "
                 "item keeps its split when items are added, and items sharing a question share a split",
        "question_key": "sha256 (16 hex) of the normalized question: the unit of the split and of "
                        "decontamination",
        "source": "upstream dataset and version from the conf, e.g. TeleQnA@d7ee5e3",
        "source_location": "where in the file: key=question 17, line=12 or row=5",
        "repairs": "what the import changed, e.g. option_prefix_removed, answer_index_from_text",
    },
)
