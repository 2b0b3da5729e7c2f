"""What the data-quality suites validate: a compact per-row profile of a gold table, and its aggregates.

Validating every row of a 1M-row table through Spark took ~28 s against ~2.5 s in pandas
(DESIGN.md). So Spark tasks read the table once and reduce each row to small columns (ids, lengths,
flags computed from the full text, a content hash, the first characters of each text column); the
driver validates that profile in pandas. The aggregate frame (one row: row count, distinct ids,
duplicate rate, category shares) carries the table-level rules.
"""
from __future__ import annotations

import re

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import lake
from pipelines.dedup.stage import content_hash
from schemas.contract import TableContract
from schemas.gold import PUBLIC_METADATA_KEYS

HEAD_CHARS = 32
"""Text columns are kept to their first characters: enough for the contract checks and for
reading a failing row in Data Docs, small enough for millions of rows."""

PREAMBLE = re.compile(r"\\(?:documentclass|usepackage|begin\s*\{document\}|end\s*\{document\}|newcommand|"
                      r"renewcommand|def\\[a-zA-Z@]+|makeatletter)(?![a-zA-Z@])")
"""LaTeX that must not survive cleaning: preamble, document wrapper, macro definitions."""

DERIVED = [pa.field("content_empty", pa.bool_()), pa.field("has_preamble", pa.bool_()),
           pa.field("metadata_ok", pa.bool_()), pa.field("content_hash", pa.string())]


def profile_schema(contract: TableContract, derived: list[pa.Field] = DERIVED) -> pa.Schema:
    """Every contract column (text columns cut to HEAD_CHARS), then the suite's derived columns."""
    fields = []
    for f in contract.schema:
        fields.append(pa.field(f.name, pa.string() if f.name in _texts(contract) else f.type, f.nullable))
    return pa.schema(fields + list(derived))


def contract_arrays(batch: pa.RecordBatch, contract: TableContract) -> list[pa.Array]:
    """The contract columns of a profile row: text columns cut to their first HEAD_CHARS characters."""
    texts = _texts(contract)
    return [pc.utf8_slice_codeunits(batch.column(f.name), 0, HEAD_CHARS) if f.name in texts else batch.column(f.name)
            for f in contract.schema]


def _texts(contract: TableContract) -> set[str]:
    return {f.name for f in contract.schema if pa.types.is_string(f.type) and f.name not in contract.stats_strings
            and f.name != "category"}


def metadata_ok(category: str, metadata: str) -> bool:
    """The metadata is a JSON object holding every public key of the category."""
    try:
        obj = orjson.loads(metadata)
    except orjson.JSONDecodeError:
        return False
    keys = PUBLIC_METADATA_KEYS.get(category)
    return isinstance(obj, dict) and keys is not None and all(k in obj for k in keys)


def profile_batch(batch: pa.RecordBatch, contract: TableContract) -> pa.RecordBatch:
    """One profile row per table row (pure)."""
    content = batch.column("content").to_pylist()
    cols = contract_arrays(batch, contract)
    cats, metas = batch.column("category").to_pylist(), batch.column("metadata").to_pylist()
    derived = [
        pa.array([not (c or "").strip() for c in content]),
        pa.array([bool(PREAMBLE.search(c or "")) for c in content]),
        pa.array([metadata_ok(c, m) for c, m in zip(cats, metas)]),
        pa.array([content_hash(c or "") for c in content]),  # dedup's exact-duplicate key
    ]
    return pa.RecordBatch.from_arrays(cols + derived, schema=profile_schema(contract))


def table_profile(spark, cfg: lake.LakeConfig, contract: TableContract, version: int, fn=None,
                  schema: pa.Schema | None = None) -> pd.DataFrame:
    """The profile of version `version` of the table, as a pandas frame on the driver (`fn` and
    `schema`: a suite's own profile; default the Tele-Data layout's)."""
    schema = schema or profile_schema(contract)
    fn = fn or (lambda b: profile_batch(b, contract))
    frame = lake.map_table(spark, cfg, contract.name, fn, schema, contract=contract, version=version, batch_rows=2048)
    return frame.toArrow().cast(schema).to_pandas()


def aggregates(profile: pd.DataFrame, categories: tuple[str, ...]) -> pd.DataFrame:
    """One row: rows, distinct ids, duplicate_rate (share of rows whose normalized content repeats an
    earlier row), share_<category> of rows and of tokens for each category."""
    n = len(profile)
    out = {"rows": n, "distinct_ids": int(profile["id"].nunique()),
           "duplicate_rate": float(1 - profile["content_hash"].nunique() / n) if n else 0.0}
    tokens = profile["tokens"].sum() if n else 0
    for c in categories:
        mine = profile["category"] == c
        out[f"rows_share_{c}"] = float(mine.mean()) if n else 0.0
        out[f"tokens_share_{c}"] = float(profile.loc[mine, "tokens"].sum() / tokens) if tokens else 0.0
    return pd.DataFrame([out])
