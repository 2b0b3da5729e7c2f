"""Tokenize and pack a release's training tables into Arrow IPC shards (with a manifest).

    telelake shards build --release tele-data-2026.11 --tokenizer /models/Meta-Llama-3-8B
    telelake shards build --release demo-v1 --conf conf/training/sft.yaml
    spark-submit --py-files dist/telelake.zip jobs/shards_build.py --release NAME --conf conf/training/cpt.yaml

The shard settings are the recipe's (train.shards in conf/training/<recipe>.yaml), so `telelake train`
with the same recipe reuses what this builds. Prints read = kept + dropped + rejected per table.
"""
from __future__ import annotations

import argparse
from dataclasses import replace

from rich.console import Console

from jobs._common import load_config
from jobs.train import TrainJobConfig
from pipelines.llm.models import resolve
from pipelines.version import code_version
from pipelines.spark import build_session
from pipelines.tokenize.stage import ShardSet, build_shards


def run(cfg: TrainJobConfig, release: str, tokenizer: str | None = None, console: Console | None = None) -> ShardSet:
    spec = cfg.train
    folder = tokenizer or spec.tokenizer or resolve(spec.model, chat=spec.shards.mode == "sft").path
    shards = build_shards(lambda: build_session(cfg.spark, "telelake-shards"), cfg.lake, release, folder, spec.shards,
                          code_version=code_version())
    console = console or Console()
    for line in shards.lines():
        console.print(line)
    return shards


def main(argv: list[str] | None = None) -> ShardSet:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--release", required=True, help="release name (telelake release list)")
    p.add_argument("--tokenizer", default=None, help="local tokenizer or model folder (default: the recipe's model)")
    p.add_argument("--conf", default="conf/shards.yaml", help="a training recipe conf; its train.shards section applies")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    cfg = load_config(TrainJobConfig, args)
    if args.tokenizer:
        cfg = replace(cfg, train=replace(cfg.train, tokenizer=args.tokenizer))
    return run(cfg, args.release, args.tokenizer)


if __name__ == "__main__":
    main()
