"""The suite of each released table: Tele-Data layout, gold.tele_eval, gold.benchmarks, gold.instructions.

Each validates two frames (profile.py): a compact per-row profile built in Spark tasks (the contract
columns with texts cut short, plus the suite's derived columns), and one row of aggregates; each
expectation checks one property. The contract part (columns, nulls, key) is the same for every
table (`suites.contract_expectations`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from pipelines.dedup.stage import content_hash
from pipelines.qna.filters import reads_as_question
from pipelines.quality.profile import aggregates, contract_arrays, profile_batch, profile_schema
from pipelines.quality.suites import SuiteRules, contract_expectations, gxe, row_expectations, table_expectations
from schemas.benchmarks import SPLITS
from schemas.contract import TableContract
from schemas.instructions import TASKS
from schemas.qna import TELE_EVAL_CATEGORIES


@dataclass(frozen=True)
class Suite:
    """What validate.py runs on one table: its profile and the expectations on both frames."""

    profile_schema: pa.Schema
    profile_batch: Callable[[pa.RecordBatch], pa.RecordBatch]
    rows: list
    aggregate: Callable[[pd.DataFrame], pd.DataFrame]
    table: list


def tele_data_suite(contract: TableContract, rules: SuiteRules) -> Suite:
    """gold.tele_data and gold.general_replay (the Tele-Data layout)."""
    return Suite(profile_schema(contract), lambda b: profile_batch(b, contract), row_expectations(contract, rules),
                 lambda p: aggregates(p, tuple(rules.categories)), table_expectations(rules))


# -- gold.tele_eval ---------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class TeleEvalRules:
    categories: list[str] = field(default_factory=lambda: list(TELE_EVAL_CATEGORIES))
    min_rows: int = 1
    min_statement_chars: int = 15
    max_statement_chars: int = 400
    max_answer_chars: int = 1500
    min_question_share: float = 0.95
    """Share of statements that read as questions (end with '?' or start with an interrogative)."""
    min_p_answerable: float = 0.0
    """Lowest prompt-4 P(Yes) a released pair may have (the filter's threshold, or lower)."""
    max_duplicate_rate: float = 0.01
    """Share of statements that repeat another one once normalized: dedup should leave ~0."""


TELE_EVAL_DERIVED = [pa.field("statement_chars", pa.int64()), pa.field("answer_chars", pa.int64()),
                     pa.field("is_question", pa.bool_()), pa.field("statement_hash", pa.string()),
                     pa.field("source_known", pa.bool_())]


def tele_eval_suite(contract: TableContract, rules: TeleEvalRules, source_ids: frozenset[str] | None) -> Suite:
    """`source_ids`: the Tele-Data ids of the release; every pair's ID must be one of them (None: unchecked)."""
    schema = profile_schema(contract, TELE_EVAL_DERIVED)

    def profile(b: pa.RecordBatch) -> pa.RecordBatch:
        st, an, ids = b.column("Statement").to_pylist(), b.column("Answer").to_pylist(), b.column("ID").to_pylist()
        return pa.RecordBatch.from_arrays(contract_arrays(b, contract) + [
            pa.array([len(s or "") for s in st], pa.int64()), pa.array([len(a or "") for a in an], pa.int64()),
            pa.array([reads_as_question(s or "") for s in st]), pa.array([content_hash(s or "") for s in st]),
            pa.array([source_ids is None or i in source_ids for i in ids])], schema=schema)

    rows = contract_expectations(contract) + [
        gxe.ExpectColumnValuesToBeInSet(column="category", value_set=list(rules.categories)),
        gxe.ExpectColumnValuesToMatchRegex(column="ID", regex=rf"^(?:{'|'.join(rules.categories)})_[1-9][0-9]*$"),
        gxe.ExpectColumnValuesToBeInSet(column="source_known", value_set=[True]),
        gxe.ExpectColumnValuesToBeBetween(column="statement_chars", min_value=rules.min_statement_chars,
                                          max_value=rules.max_statement_chars),
        gxe.ExpectColumnValuesToBeBetween(column="answer_chars", min_value=1, max_value=rules.max_answer_chars),
        gxe.ExpectColumnValuesToBeInSet(column="is_question", value_set=[True], mostly=rules.min_question_share),
        gxe.ExpectColumnValuesToBeBetween(column="p_answerable", min_value=rules.min_p_answerable, max_value=1.0),
    ]

    def aggregate(p: pd.DataFrame) -> pd.DataFrame:
        n = len(p)
        return pd.DataFrame([{"rows": n, "distinct_ids": int(p["pair_id"].nunique()),
                              "duplicate_rate": float(1 - p["statement_hash"].nunique() / n) if n else 0.0}])

    table = [gxe.ExpectColumnValuesToBeBetween(column="rows", min_value=rules.min_rows),
             gxe.ExpectColumnPairValuesToBeEqual(column_A="rows", column_B="distinct_ids"),
             gxe.ExpectColumnValuesToBeBetween(column="duplicate_rate", min_value=0.0,
                                               max_value=rules.max_duplicate_rate)]
    return Suite(schema, profile, rows, aggregate, table)


# -- gold.benchmarks --------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class BenchmarkRules:
    categories: list[str] = field(default_factory=list)
    """Categories a release must hold (empty: any)."""
    min_rows: int = 1
    min_question_chars: int = 12
    max_options: int = 10
    split_tolerance: float = 0.05
    """Each category of at least `split_min_items` items has train within 0.6 ± this, val and test within
    0.2 ± this (the conf fractions of the import)."""
    split_min_items: int = 200
    train: float = 0.6
    val: float = 0.2


BENCHMARK_DERIVED = [pa.field("n_choices", pa.int64()), pa.field("answer_in_range", pa.bool_()),
                     pa.field("question_chars", pa.int64()), pa.field("choices_distinct", pa.bool_())]


def benchmark_suite(contract: TableContract, rules: BenchmarkRules) -> Suite:
    schema = profile_schema(contract, BENCHMARK_DERIVED)

    def profile(b: pa.RecordBatch) -> pa.RecordBatch:
        choices, answers = b.column("choices").to_pylist(), b.column("answer").to_pylist()
        return pa.RecordBatch.from_arrays(contract_arrays(b, contract) + [
            pa.array([len(c or []) for c in choices], pa.int64()),
            pa.array([a is not None and 0 <= a < len(c or []) for a, c in zip(answers, choices)]),
            pa.array([len(q or "") for q in b.column("question").to_pylist()], pa.int64()),
            pa.array([len({" ".join(x.casefold().split()) for x in c or []}) == len(c or []) for c in choices])],
            schema=schema)

    rows = contract_expectations(contract) + [
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        gxe.ExpectColumnValuesToBeInSet(column="answer_in_range", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(column="choices_distinct", value_set=[True]),
        gxe.ExpectColumnValuesToBeBetween(column="n_choices", min_value=2, max_value=rules.max_options),
        gxe.ExpectColumnValuesToBeBetween(column="question_chars", min_value=rules.min_question_chars),
    ]
    if rules.categories:
        rows.append(gxe.ExpectColumnDistinctValuesToContainSet(column="category", value_set=list(rules.categories)))

    def aggregate(p: pd.DataFrame) -> pd.DataFrame:
        out = {"rows": len(p), "distinct_ids": int(p["item_id"].nunique())}
        worst = {"train": 0.0, "val": 0.0, "test": 0.0}
        target = {"train": rules.train, "val": rules.val, "test": 1 - rules.train - rules.val}
        for _, g in p.groupby("category"):
            if len(g) >= rules.split_min_items:
                shares = g["split"].value_counts(normalize=True)
                for s in worst:
                    worst[s] = max(worst[s], abs(float(shares.get(s, 0.0)) - target[s]))
        out.update({f"{s}_share_error": v for s, v in worst.items()})
        return pd.DataFrame([out])

    table = [gxe.ExpectColumnValuesToBeBetween(column="rows", min_value=rules.min_rows),
             gxe.ExpectColumnPairValuesToBeEqual(column_A="rows", column_B="distinct_ids"),
             *[gxe.ExpectColumnValuesToBeBetween(column=f"{s}_share_error", min_value=0.0, max_value=rules.split_tolerance)
               for s in SPLITS]]
    return Suite(schema, profile, rows, aggregate, table)


# -- gold.instructions ------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class InstructionRules:
    min_rows: int = 1
    max_chars: int = 100_000
    """Longest instruction + input + output."""


INSTRUCTION_DERIVED = [pa.field("instruction_chars", pa.int64()), pa.field("output_chars", pa.int64()),
                       pa.field("total_chars", pa.int64()), pa.field("n_source_ids", pa.int64())]


def instruction_suite(contract: TableContract, rules: InstructionRules) -> Suite:
    schema = profile_schema(contract, INSTRUCTION_DERIVED)

    def profile(b: pa.RecordBatch) -> pa.RecordBatch:
        ins, inp, out = (b.column(c).to_pylist() for c in ("instruction", "input", "output"))
        return pa.RecordBatch.from_arrays(contract_arrays(b, contract) + [
            pa.array([len((x or "").strip()) for x in ins], pa.int64()),
            pa.array([len((x or "").strip()) for x in out], pa.int64()),
            pa.array([len(a or "") + len(c or "") + len(d or "") for a, c, d in zip(ins, inp, out)], pa.int64()),
            pa.array([len(x or []) for x in b.column("source_ids").to_pylist()], pa.int64())], schema=schema)

    rows = contract_expectations(contract) + [
        gxe.ExpectColumnValuesToBeInSet(column="task", value_set=list(TASKS)),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        gxe.ExpectColumnValuesToBeBetween(column="instruction_chars", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="output_chars", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="total_chars", max_value=rules.max_chars),
        gxe.ExpectColumnValuesToBeBetween(column="n_source_ids", min_value=1),
    ]

    def aggregate(p: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame([{"rows": len(p), "distinct_ids": int(p["instruction_id"].nunique())}])

    table = [gxe.ExpectColumnValuesToBeBetween(column="rows", min_value=rules.min_rows),
             gxe.ExpectColumnPairValuesToBeEqual(column_A="rows", column_B="distinct_ids")]
    return Suite(schema, profile, rows, aggregate, table)
