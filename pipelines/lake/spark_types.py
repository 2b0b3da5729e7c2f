"""Spark schemas for contracts: all fields nullable on the wire, checked again by the sink."""
from __future__ import annotations

import pyarrow as pa
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType


def spark_schema(schema: pa.Schema) -> StructType:
    """Spark StructType for an Arrow schema; timestamps stay zoned (TimestampType, UTC session)."""
    relaxed = pa.schema([f.with_nullable(True) for f in schema])
    return from_arrow_schema(relaxed, prefer_timestamp_ntz=False)
