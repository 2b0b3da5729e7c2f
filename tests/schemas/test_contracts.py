import datetime as dt

import pyarrow as pa
import pytest

from schemas import KEYWORD_HITS, REJECTED, SchemaMismatchError, bronze_contract, contract_for


@pytest.mark.parametrize("contract", [KEYWORD_HITS, REJECTED, bronze_contract("wikipedia")])
def test_contract_is_complete(contract):
    assert contract.description
    assert contract.key and all(k in contract.schema.names for k in contract.key)
    # text never gets statistics in the Delta log
    assert "text" not in contract.stats_columns()
    assert not set(contract.partition_by) & set(contract.file_schema.names)


def test_contract_lookup():
    assert contract_for("bronze.refinedweb").name == "bronze.refinedweb"
    assert contract_for("silver.keyword_hits") is KEYWORD_HITS
    with pytest.raises(KeyError, match="known"):
        contract_for("gold.nope")
    with pytest.raises(ValueError, match="lower-case"):
        bronze_contract("Bad-Name")


def _rejected_row(**over):
    row = {"reject_id": "r1", "job": "ingest", "source": "s", "batch": "b", "source_file": "f",
           "source_location": "line=1", "reason": "malformed_json", "detail": "d", "raw": b"x",
           "raw_bytes": 1, "raw_truncated": False, "rejected_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}
    row.update(over)
    return row


def test_conform_casts_compatible_types():
    t = pa.Table.from_pylist([_rejected_row()])
    t = t.set_column(t.schema.get_field_index("raw_bytes"), "raw_bytes", pa.array([1], pa.int32()))
    out = REJECTED.conform(t)
    assert out.schema == REJECTED.schema


def test_conform_refuses_missing_extra_and_wrong_types():
    t = pa.Table.from_pylist([_rejected_row()])
    with pytest.raises(SchemaMismatchError, match="'reason'.*missing"):
        REJECTED.conform(t.drop_columns(["reason"]))
    with pytest.raises(SchemaMismatchError, match="unexpected columns"):
        REJECTED.conform(t.append_column("extra", pa.array([1])))
    bad = t.set_column(t.schema.get_field_index("raw_bytes"), "raw_bytes", pa.array(["1"]))
    with pytest.raises(SchemaMismatchError, match="raw_bytes"):
        REJECTED.conform(bad)


def test_conform_refuses_nulls_in_required_columns():
    t = pa.Table.from_pylist([_rejected_row(reason=None)])
    with pytest.raises(SchemaMismatchError, match="non-nullable.*reason"):
        REJECTED.conform(t)
