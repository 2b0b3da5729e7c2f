"""A small real release (Tele-Data, general replay, instructions) and the embedded model's tokenizer."""
from __future__ import annotations

import pytest

from pipelines.ingest.parse import utc_now
from pipelines.release.create import ReleaseSpec, create_release
from schemas import GENERAL_REPLAY, INSTRUCTIONS
from tests.pipelines.gold.conftest import plain_text, write_rows
from tests.pipelines.release.test_release import gold_rows, write_gold


@pytest.fixture(scope="session")
def tokenizer_dir() -> str:
    from pipelines.llm.models import ModelSpec, resolve

    return resolve(ModelSpec()).path


def instruction_rows(n: int) -> list[dict]:
    now = utc_now()
    return [{"instruction_id": f"title_generation_{i}", "task": "title_generation" if i % 3 else "mcq_answering",
             "category": "literature", "instruction": "Write the title of this abstract.",
             "input": f"Abstract {i}: " + plain_text(i, 20 + 7 * (i % 5)), "output": f"Title number {i}",
             "split": "val" if i % 10 == 0 else "test" if i % 10 == 1 else "train", "source": "gold.tele_data",
             "source_ids": [f"arxiv_{i}"], "source_file": "gold.tele_data", "source_location": f"paper=arxiv_{i}",
             "build": "b", "built_at": now} for i in range(n)]


def make_release(spark, cfg, name: str = "r1", *, docs: int = 40, replay: int = 8, instructions: int = 30) -> str:
    write_gold(spark, cfg, gold_rows(1, docs) + gold_rows(1, 6, "arxiv"), f"{name}-g")
    if replay:
        rows = gold_rows(1, replay, "general", content=lambda i: plain_text(i, 80))
        write_rows(spark, cfg, GENERAL_REPLAY, rows, f"{name}-r")
    if instructions:
        write_rows(spark, cfg, INSTRUCTIONS, instruction_rows(instructions), f"{name}-i")
    spec = ReleaseSpec(suites={"gold.general_replay": _replay_rules()})
    create_release(spark, cfg, name, spec)
    return name


def _replay_rules():
    from pipelines.quality.suites import SuiteRules

    return SuiteRules(categories=["general"], min_chars=1, max_duplicate_rate=0.05, max_preamble_share=1.0)
