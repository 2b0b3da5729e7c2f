"""gold.instructions: supervised fine-tuning data in one schema (paper 000 §VIII and Appendix E,
paper 001 §3): imported Alpaca / Open-Instruct sets, MCQ answering from the benchmark splits, and the
literature tasks built from Tele-Data's papers and their citations."""
from __future__ import annotations

import pyarrow as pa

from schemas.contract import TableContract

TS = pa.timestamp("us", tz="UTC")

LITERATURE_TASKS = ("title_generation", "abstract_completion", "intro_to_abstract", "citation_sentence",
                    "citation_link", "citation_recommendation")
"""Paper 000 Table VII."""
TASKS = ("alpaca", "open_instruct", "mcq_answering", *LITERATURE_TASKS)

INSTRUCTIONS = TableContract(
    name="gold.instructions",
    schema=pa.schema([
        pa.field("instruction_id", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("instruction", pa.string(), nullable=False),
        pa.field("input", pa.string(), nullable=False),
        pa.field("output", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_ids", pa.list_(pa.string()), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_location", pa.string(), nullable=False),
        pa.field("build", pa.string(), nullable=False),
        pa.field("built_at", TS, nullable=False),
    ]),
    key=("instruction_id",),
    partition_by=("task",),
    description="instruction/input/output examples for supervised fine-tuning, one schema for every task, "
                "each traceable to its sources; rebuilt whole by each build",
    stats_strings=("instruction_id", "category", "split", "source", "build"),
    column_docs={
        "instruction_id": "task + '_' + 16 hex of sha256 of (task, source ids, instruction, input, output)",
        "task": f"one of {', '.join(TASKS)}",
        "category": "general (imported sets), the benchmark category (mcq_answering: one adapter each), or "
                    "literature",
        "input": "the task's input; '' when the instruction holds everything",
        "split": "train | val | test: a benchmark item's split (val for early stopping, test never trained on), "
                 "or a seeded hash of the paper (literature hold-out); imported sets are train",
        "source": "dataset the example came from: the import's name, gold.benchmarks, gold.tele_data",
        "source_ids": "ids it was built from: a benchmark item_id, Tele-Data ids (citing paper, then the cited or "
                      "negative paper; recommendation: citing, cited, then the negatives)",
        "source_location": "line=, index=, or the builder's record (edge=arxiv_3>arxiv_9, …)",
    },
)
