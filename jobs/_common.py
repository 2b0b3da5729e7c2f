"""What every job does around its stage: parse args, load conf, log, build Spark, print the summary."""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from typing import TypeVar

from pipelines import config
from pipelines.lake import LakeConfig
from pipelines.spark import SparkConfig

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """The conf sections every job has."""

    lake: LakeConfig = field(default_factory=LakeConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--conf", required=True, help="YAML config file (see conf/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set spark.master=local[4] (repeatable)")
    return p.parse_args(argv)


def load_config(cls: type[T], args: argparse.Namespace) -> T:
    setup_logging()
    try:
        cfg = config.load(cls, args.conf, args.overrides)
    except config.ConfigError as exc:
        sys.exit(f"telelake: {exc}")
    logging.getLogger("telelake").info("config %s: %s", args.conf, config.to_dict(cfg))
    return cfg


def setup_logging(level: int = logging.INFO) -> None:
    if logging.getLogger().handlers:
        return
    from rich.logging import RichHandler

    logging.basicConfig(level=level, format="%(message)s", datefmt="%H:%M:%S",
                        handlers=[RichHandler(show_path=False, rich_tracebacks=False)])
    for noisy in ("py4j", "py4j.clientserver", "py4j.java_gateway"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
