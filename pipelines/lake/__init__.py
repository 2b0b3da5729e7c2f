"""The lake layer: the only code that reads or writes Delta tables.

Spark tasks write Parquet files into the table folder (`sink`), the driver commits them in one
delta-rs transaction (`commit`), and readers load any version into pyarrow, DuckDB, Polars or
Spark (`read`). Maintenance: history, pins and vacuum.

The names below are imported on first use (PEP 562): `from pipelines import lake` costs nothing, and
delta-rs and pyspark load only when a table is read or written, so a training or evaluation node that
reads a release's files through its manifest needs neither.
"""
from __future__ import annotations

import importlib

from pipelines.lake.storage import LakeConfig, table_uri

_WHERE = {
    "pipelines.lake.commit": ("Batch", "CommitResult", "commit_files", "committed_version", "open_table"),
    "pipelines.lake.maintenance": ("batch_commit", "cleanup_logs", "history", "pin", "pins", "unpin", "vacuum"),
    "pipelines.lake.read": ("TableNotFoundError", "data_files", "dataset", "load", "map_table", "read_arrow",
                            "read_duckdb", "read_polars", "read_spark"),
    "pipelines.lake.write": ("map_write", "write_dataframe"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = ["LakeConfig", "table_uri", *sorted(_MODULE_OF)]


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'pipelines.lake' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
