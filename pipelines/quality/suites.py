"""Expectation suites of the gold tables: derived from the table contract, plus domain rules from conf.

Two frames are validated (see profile.py): `rows` (one profile row per table row) and `table` (one
row of aggregates). Each expectation checks one property, so a failure names exactly what broke.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # 1.24 sends nothing; older versions honour this
logging.getLogger("great_expectations").setLevel(logging.WARNING)
import great_expectations.expectations as gxe  # noqa: E402

from schemas.contract import TableContract
from schemas.gold import GENERAL_CATEGORY, TELE_DATA_CATEGORIES


@dataclass(frozen=True, kw_only=True)
class SuiteRules:
    """Domain rules of one gold table (conf quality.suites.<table>)."""

    categories: list[str] = field(default_factory=lambda: list(TELE_DATA_CATEGORIES))
    min_rows: int = 1
    min_chars: int = 200
    max_chars: int = 20_000_000
    max_duplicate_rate: float = 0.01
    """Share of rows whose normalized content repeats another row: dedup should leave ~0."""
    max_preamble_share: float = 0.0
    """Share of rows allowed to keep LaTeX preamble (\\documentclass, \\usepackage, macro definitions)."""
    token_shares: dict[str, list[float]] = field(default_factory=dict)
    """category → [min, max] share of the table's tokens, e.g. {web: [0.3, 0.95]}."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.token_shares) - set(self.categories))
        if unknown:
            raise ValueError(f"token_shares names categories {unknown} that are not in categories {self.categories}")
        bad = {c: b for c, b in self.token_shares.items() if len(b) != 2 or not 0 <= b[0] <= b[1] <= 1}
        if bad:
            raise ValueError(f"token_shares {bad}: each must be [min, max] with 0 <= min <= max <= 1")


DEFAULT_RULES = {
    "gold.tele_data": SuiteRules(),
    "gold.general_replay": SuiteRules(categories=[GENERAL_CATEGORY], min_chars=1, max_duplicate_rate=0.05,
                                      max_preamble_share=1.0),
}


def contract_expectations(contract: TableContract) -> list:
    """The contract's columns exist, its non-nullable columns hold no null, its key is unique."""
    out: list = [gxe.ExpectColumnToExist(column=f.name) for f in contract.schema]
    out += [gxe.ExpectColumnValuesToNotBeNull(column=f.name) for f in contract.schema if not f.nullable]
    if len(contract.key) == 1:
        out.append(gxe.ExpectColumnValuesToBeUnique(column=contract.key[0]))
    else:
        out.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(contract.key)))
    return out


def row_expectations(contract: TableContract, rules: SuiteRules) -> list:
    """Expectations on the per-row profile: the contract's columns, nulls and key, then the domain rules."""
    out = contract_expectations(contract)
    out += [
        gxe.ExpectColumnValuesToBeUnique(column="doc_id"),
        gxe.ExpectColumnValuesToBeInSet(column="category", value_set=list(rules.categories)),
        gxe.ExpectColumnValuesToMatchRegex(column="id", regex=rf"^(?:{'|'.join(rules.categories)})_[1-9][0-9]*$"),
        gxe.ExpectColumnValuesToBeInSet(column="content_empty", value_set=[False]),
        gxe.ExpectColumnValuesToBeBetween(column="content_chars", min_value=rules.min_chars, max_value=rules.max_chars),
        gxe.ExpectColumnValuesToBeBetween(column="tokens", min_value=1),
        gxe.ExpectColumnValuesToBeInSet(column="metadata_ok", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(column="has_preamble", value_set=[False],
                                        mostly=max(1e-9, 1.0 - rules.max_preamble_share)),
    ]
    return out


def table_expectations(rules: SuiteRules) -> list:
    """Expectations on the one-row aggregate frame."""
    out: list = [
        gxe.ExpectColumnValuesToBeBetween(column="rows", min_value=rules.min_rows),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="rows", column_B="distinct_ids"),
        gxe.ExpectColumnValuesToBeBetween(column="duplicate_rate", min_value=0.0, max_value=rules.max_duplicate_rate),
    ]
    for category, (lo, hi) in sorted(rules.token_shares.items()):
        out.append(gxe.ExpectColumnValuesToBeBetween(column=f"tokens_share_{category}", min_value=lo, max_value=hi))
    return out
