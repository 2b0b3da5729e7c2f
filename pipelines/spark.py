"""One function builds the Spark session, for local runs and for spark-submit on a cluster."""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# Settings every telelake job relies on; conf may add to them but not change these.
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",  # Delta timestamps are UTC microseconds
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


@dataclass(frozen=True, kw_only=True)
class SparkConfig:
    master: str = "local[2]"
    """Used only when the job is not launched by spark-submit (which sets its own master)."""
    driver_memory: str = "4g"
    log_level: str = "WARN"
    conf: dict[str, str] = field(default_factory=dict)
    """Extra spark.* settings, e.g. spark.sql.shuffle.partitions."""


def build_session(cfg: SparkConfig, app_name: str):
    """Create (or reuse) the SparkSession for a job."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    launched_by_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if not launched_by_submit:
        builder = builder.master(cfg.master).config("spark.driver.memory", cfg.driver_memory)
    settings = {"spark.ui.showConsoleProgress": "true", "spark.sql.shuffle.partitions": "8",
                **cfg.conf, **REQUIRED_CONF}
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg.log_level)
    log.info("spark %s, master %s", spark.version, spark.sparkContext.master)
    return spark


def has_delta_connector(spark) -> bool:
    """True when the delta-spark jars are on the classpath and its extension is configured."""
    ext = spark.conf.get("spark.sql.extensions", "") or ""
    return "io.delta.sql.DeltaSparkSessionExtension" in ext


def flat_map(fn, schema):
    """A mapInArrow function: every input row (a dict) → `fn(row)`, a list of dicts → batches of
    `schema` (empty results yield nothing)."""
    import pyarrow as pa

    def run(batches):
        for b in batches:
            out = [o for row in b.to_pylist() for o in fn(row)]
            if out:
                yield pa.RecordBatch.from_pylist(out, schema=schema)

    return run
