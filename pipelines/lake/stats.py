"""Delta per-file statistics (numRecords, minValues, maxValues, nullCount) for small columns."""
from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.compute as pc

# Strings longer than this get no min/max: a truncated max would be wrong, a long one is bloat.
MAX_STRING_STAT_CHARS = 64


def file_stats(table: pa.Table, columns: list[str]) -> str:
    """The `stats` JSON of a Delta add action for `table`, covering only `columns`."""
    mins, maxs, nulls = {}, {}, {}
    for name in columns:
        col = table.column(name)
        nulls[name] = col.null_count
        if col.null_count == len(col):
            continue
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            longest = pc.max(pc.utf8_length(col)).as_py() or 0
            if longest > MAX_STRING_STAT_CHARS:
                continue
        if pa.types.is_boolean(col.type):
            continue  # Delta keeps no min/max for booleans, only null counts.
        mm = pc.min_max(col)
        mins[name], maxs[name] = _json_value(mm["min"].as_py()), _json_value(mm["max"].as_py())
    return json.dumps({"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs,
                       "nullCount": nulls}, separators=(",", ":"))


def _json_value(value):
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value
