"""Shared fixtures: one local Spark session per test run, a fresh lake per test."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def spark():
    from pipelines.spark import SparkConfig, build_session

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = build_session(SparkConfig(master="local[2]", driver_memory="2g", log_level="ERROR",
                                        conf={"spark.ui.showConsoleProgress": "false",
                                              "spark.sql.shuffle.partitions": "2"}), "telelake-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def backend():
    """The embedded SmolLM2-135M-Instruct on transformers, converted once per machine into the model cache."""
    from pipelines.llm.backend import BackendConfig, load_backend

    return load_backend(BackendConfig(kind="transformers", max_context_tokens=512, max_batch_tokens=2048))


@pytest.fixture
def lake_cfg(tmp_path):
    from pipelines.lake import LakeConfig

    return LakeConfig(root=str(tmp_path / "lake"))


@pytest.fixture(scope="session")
def lexicon_path() -> str:
    return str(ROOT / "conf" / "lexicon" / "telecom_v1.yaml")


DISTRIBUTED = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
"""Set in this process by an in-process training test (a world of one): a child trainer would otherwise
join that world's rendezvous port."""


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for running telelake jobs as child processes."""
    env = {k: v for k, v in os.environ.items() if k not in DISTRIBUTED}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYSPARK_PYTHON"] = sys.executable
    env.update(extra)
    return env
