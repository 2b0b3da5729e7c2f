"""SFT packing: padding waste of instruction shards on a real instruction set.

    .venv/bin/python benchmarks/sft_packing.py --seq-len 2048

The instruction set is TeleQnA's 10,000 questions as MCQ answering (instruction: the question and its
options; output: the answer and its explanation; real lengths, 60-1,000 tokens rendered), released as
gold.instructions and packed with the embedded SmolLM2 chat template. Each example stays whole in one
sequence (answer-only loss), placed by best fit in the seeded order. Prints the padding waste, the
lower bound (tokens / seq_len sequences) and one example per sequence (no packing) beside it.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from shards import TELEQNA  # noqa: E402

from pipelines import lake  # noqa: E402
from pipelines.spark import SparkConfig, build_session  # noqa: E402


def instruction_rows() -> list[dict]:
    from pipelines.ingest.parse import utc_now

    now = utc_now()
    rows = []
    for i, (key, v) in enumerate(sorted(json.loads(TELEQNA.read_text()).items())):
        options = "\n".join(f"{k}: {v[k]}" for k in sorted(v) if k.startswith("option"))
        rows.append({"instruction_id": f"mcq_{i}", "task": "mcq_answering", "category": v.get("category") or "mcq",
                     "instruction": "Answer the multiple-choice question and explain the answer.",
                     "input": f"{v['question']}\n{options}", "output": f"{v['answer']}\n{v.get('explanation', '')}",
                     "split": "val" if i % 10 == 0 else "train", "source": "teleqna", "source_ids": [key],
                     "source_file": "TeleQnA.txt", "source_location": key, "build": "bench", "built_at": now})
    return rows


def release(spark, cfg: lake.LakeConfig) -> None:
    import pyarrow as pa

    from pipelines.lake.spark_types import spark_schema
    from pipelines.quality.suites import SuiteRules
    from pipelines.release.create import ReleaseSpec, create_release
    from schemas import INSTRUCTIONS, TELE_DATA
    from shards import release as release_tele_data

    table = pa.Table.from_pylist(instruction_rows(), schema=INSTRUCTIONS.schema)
    df = spark.createDataFrame(table.to_pandas(), spark_schema(INSTRUCTIONS.schema)).repartition(4)
    lake.write_dataframe(cfg, df, INSTRUCTIONS, batch=lake.Batch(app_id="bench.sft", version=1))
    release_tele_data(spark, cfg, ["telecom text " * 50] * 4)  # a release needs Tele-Data; SFT ignores it
    rules = SuiteRules(categories=["web"], min_chars=1, max_chars=10_000_000, max_duplicate_rate=1.0)
    create_release(spark, cfg, "bench-sft", ReleaseSpec(optional_tables=[INSTRUCTIONS.name],
                                                         suites={TELE_DATA.name: rules}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq-len", type=int, default=2048)
    args = p.parse_args()
    from pipelines.llm.models import ModelSpec, resolve
    from pipelines.tokenize.stage import ShardSpec, build_shards

    tokenizer = resolve(ModelSpec()).path
    work = Path(tempfile.mkdtemp(prefix="telelake-bench-sft-"))
    try:
        spark = build_session(SparkConfig(log_level="ERROR", conf={"spark.ui.showConsoleProgress": "false"}), "bench-sft")
        cfg = lake.LakeConfig(root=str(work / "lake"))
        release(spark, cfg)
        print(f"TeleQnA as instructions, seq_len {args.seq_len}, the embedded SmolLM2 chat template")
        t = time.perf_counter()
        s = build_shards(spark, cfg, "bench-sft", tokenizer,
                         ShardSpec(mode="sft", blend={"gold.instructions": None}, seq_len=args.seq_len,
                                   root=str(work / "shards")))
        wall = time.perf_counter() - t
        train = s.manifest["splits"]["train"]
        bound = -(-train["tokens"] // args.seq_len)
        print(f"{train['entries']:,} examples, {train['tokens']:,} tokens in {wall:.1f} s")
        print(f"best fit: {train['sequences']:,} sequences, padding {100 * train['padding_waste']:.2f}%")
        print(f"lower bound: {bound:,} sequences, padding {100 * (1 - train['tokens'] / (bound * args.seq_len)):.2f}%")
        print(f"one example per sequence: {train['entries']:,} sequences, padding "
              f"{100 * (1 - train['tokens'] / (train['entries'] * args.seq_len)):.2f}%")
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
