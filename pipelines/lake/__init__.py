"""The lake layer: the only code that reads or writes Delta tables.

Spark tasks write Parquet files into the table folder (`sink`), the driver commits them in one
delta-rs transaction (`commit`), and readers load any version into pyarrow, DuckDB, Polars or
Spark (`read`). Maintenance: history, pins and vacuum.
"""
from pipelines.lake.commit import Batch, CommitResult, commit_files, committed_version, open_table
from pipelines.lake.maintenance import batch_commit, cleanup_logs, history, pin, pins, unpin, vacuum
from pipelines.lake.read import (TableNotFoundError, data_files, dataset, load, map_table, read_arrow,
                                 read_duckdb, read_polars, read_spark)
from pipelines.lake.storage import LakeConfig, table_uri
from pipelines.lake.write import map_write, write_dataframe

__all__ = ["Batch", "batch_commit", "CommitResult", "LakeConfig", "TableNotFoundError", "cleanup_logs", "commit_files",
           "committed_version", "data_files", "dataset", "history", "load", "map_table", "map_write", "open_table",
           "pin", "pins", "read_arrow", "read_duckdb", "read_polars", "read_spark", "table_uri",
           "unpin", "vacuum", "write_dataframe"]
