"""Train from a release: continual pretraining, instruction tuning or LoRA, on DeepSpeed.

    telelake train --recipe cpt --release demo-v1 --set train.max_steps=5
    telelake train --recipe cpt_lora --release tele-data-2026.11
    telelake train --recipe lora --category teleqna --release bench-v1     # one adapter per benchmark category
    telelake train --recipe lora --category all --release bench-v1         # the monolithic all-category adapter
    telelake train --recipe sft --release tele-data-2026.11 --set train.model.path=runs/cpt-…/checkpoints/step-000800/hf
    telelake train --resume runs/cpt-demo-v1-20261202T101500Z --recipe cpt --release demo-v1
    telelake train --recipe cpt --shards lake/_telelake/shards/demo-v1/<key>   # a GPU node: no lake, Spark or Delta
    telelake train compare runs/cpt-… runs/cpt_lora-… --out reports/lora_vs_full.png

Several GPUs (one process per GPU; rank 0 builds the shards, the others wait):

    deepspeed --num_gpus 8 --module jobs.train --recipe cpt --release NAME
    torchrun --nproc-per-node 8 -m jobs.train --recipe cpt --release NAME
    # several nodes: deepspeed --hostfile hosts --num_nodes 4 --num_gpus 8 --module jobs.train ...

The release is verified first (a changed or missing file refuses the run before any training), the
shards are built or reused, and the run directory records release, shard manifest, config and code.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console

from jobs._common import Runtime, load_config
from schemas import INSTRUCTIONS
from training.config import TrainSpec
from training.run import ended_note, run_name


@dataclass(frozen=True, kw_only=True)
class TrainJobConfig(Runtime):
    train: TrainSpec = field(default_factory=TrainSpec)


def for_category(cfg: TrainJobConfig, category: str) -> TrainJobConfig:
    """The recipe narrowed to one benchmark category's MCQ instructions (`all`: every category at once,
    the monolithic baseline). Only instruction (sft-mode) recipes have categories."""
    from pipelines.instruct.stage import MCQ_TASK

    shards = cfg.train.shards
    if shards.mode != "sft":
        raise SystemExit(f"telelake: --category trains on benchmark instructions; recipe {cfg.train.recipe} "
                         f"trains mode {shards.mode} shards (use --recipe lora)")
    key = f"{INSTRUCTIONS.name}:{MCQ_TASK}" + ("" if category == "all" else f"/{category}")
    return replace(cfg, train=replace(cfg.train, shards=replace(shards, blend={key: None})))


def load_recipe(recipe: str, overrides: list[str], runtime: Runtime) -> TrainJobConfig:
    """conf/training/<recipe>.yaml with `overrides`, under another job's lake and Spark settings."""
    from pipelines import config
    from pipelines.config import SHIPPED_CONF

    rc = config.load(TrainJobConfig, SHIPPED_CONF / "training" / f"{recipe}.yaml", list(overrides))
    return replace(rc, lake=runtime.lake, spark=runtime.spark)


def train_once(cfg: TrainJobConfig, release: str, name: str, console: Console) -> dict:
    """Train run `name` under train.out, or reuse it when it finished before (result.json) with the same
    config and release: experiments that train several runs rerun only what is missing. The run's
    result.json content is returned."""
    import json

    from pipelines import config

    run_dir = Path(cfg.train.out) / name
    done = run_dir / "result.json"
    if not done.is_file():
        console.rule(f"training {name}")
        return run(cfg, release, name=name, console=console).to_dict()
    recorded = json.loads((run_dir / "run.json").read_text())
    wanted = json.loads(json.dumps(config.to_dict(cfg.train), default=str))
    if recorded["config"] != wanted or recorded["release"]["name"] != release:
        raise SystemExit(f"telelake: {run_dir} was trained with another recipe or release than this run asks for; "
                         f"delete it to retrain, or write the experiment to a new folder")
    console.print(f"{name}: reusing {run_dir}")
    return json.loads(done.read_text())


def run(cfg: TrainJobConfig, release: str | None, *, name: str | None = None, resume: str | None = None,
        shards: str | None = None, console: Console | None = None):
    """Train on `release` (its shard set found, or built in Spark), or on the shard set in folder `shards`."""
    from pipelines.spark import build_session
    from training.run import launch

    console = console or Console()
    result = launch(cfg.lake, cfg.train, release, spark_factory=lambda: build_session(cfg.spark, "telelake-shards"),
                    shards_dir=shards, name=name, resume=resume, console=console)
    release = result.shards.manifest["release"]["name"]
    f = result.final
    if f:
        console.print(f"train {cfg.train.recipe} on {release}: step {f['step']:,}, loss {f['loss']:.4f}"
                      + (f", val loss {f['val_loss']:.4f}" if "val_loss" in f else "")
                      + f", {f['tokens_per_s']:,.0f} tokens/s")
    if ended := ended_note(result.to_dict()):
        console.print(ended + ("; `--resume` the run directory to train on" if result.ended_by.startswith("request") else ""))
    console.print(f"[bold]checkpoint[/]: {result.checkpoint}/hf" if result.checkpoint else "no checkpoint written")
    if result.adapter_bytes is not None:
        console.print(f"[bold]adapter[/]: {result.adapter} ({result.adapter_bytes / 2**20:,.2f} MiB, "
                      f"{result.trainable_params:,} parameters"
                      + (f", best validation loss at step {result.best_step}" if result.best_step else "") + ")")
    console.print(f"[bold]plots[/]: {result.run_dir / 'loss.png'}, {result.run_dir / 'grad_norm.png'}, "
                  f"{result.run_dir / 'lr.png'}; metrics {result.run_dir / 'metrics.jsonl'}")
    return result


def compare(runs: list[str], out: str, console: Console | None = None) -> list[Path]:
    from training.plots import compare_runs

    named = {Path(r).name: Path(r) for r in runs}
    written = [compare_runs(named, Path(out)),
               compare_runs(named, Path(out).with_name(Path(out).stem + "_val.png"), key="val_loss")]
    (console or Console()).print("wrote " + ", ".join(map(str, written)))
    return written


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="cpt", help="conf/training/<recipe>.yaml: cpt, cpt_lora, sft, lora")
    p.add_argument("--category", default=None,
                   help="sft/lora recipes: train on this benchmark category's questions only (teleqna, oranbench, "
                        "srsranbench, ...); all: every category (the monolithic adapter)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--release", help="release name (telelake release list): its shard set is found, or built")
    where.add_argument("--shards", metavar="DIR", help="a built shard set's folder (what `telelake shards build` "
                                                       "printed): trains without the lake, Spark or delta-rs")
    p.add_argument("--conf", default=None, help="a recipe conf file (default conf/training/<recipe>.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="e.g. --set train.max_steps=5 --set train.batch.micro_batch=2")
    p.add_argument("--run-name", default=None, help="run directory name (default <recipe>-<release>-<UTC time>)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue this run from its latest checkpoint")
    p.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)  # deepspeed launcher
    return p


def main(argv: list[str] | None = None):
    args = parser().parse_args(argv)
    args.conf = args.conf or str(Path(__file__).resolve().parents[1] / "conf" / "training" / f"{args.recipe}.yaml")
    if not Path(args.conf).is_file():
        known = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "training").glob("*.yaml")
                       if not p.stem.startswith("zero"))
        raise SystemExit(f"telelake: no recipe {args.recipe!r} ({args.conf} not found); recipes: {known}")
    cfg = load_config(TrainJobConfig, args)
    name = args.run_name
    if args.category:
        cfg = for_category(cfg, args.category)
        if args.shards:
            raise SystemExit("telelake: --category narrows a release's instructions; a built shard set (--shards) "
                             "is trained as it is")
        name = name or run_name(cfg.train, args.release, args.category)
    return run(cfg, args.release, name=name, resume=args.resume, shards=args.shards)


if __name__ == "__main__":
    main()
