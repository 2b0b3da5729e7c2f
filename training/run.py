"""Launch a training run from a release: verify, build or reuse the shards, record, train.

The run directory (`<train.out>/<name>/`) records what the run was made of, in run.json: the release
(name, content hash), the shard set (folder, key, counts, tokenizer hash), the resolved config, the
code version, the model folder and its fingerprint, the world size. Beside it: metrics.jsonl,
loss.png, grad_norm.png, lr.png, checkpoints/step-NNNNNN/{DeepSpeed state, hf/} and, at the end,
result.json (the result checkpoint, trainable parameters, a LoRA adapter's file size, the last metrics,
what ended training: the schedule, early stopping or a stop request).

Under a multi-process launcher (deepspeed, torchrun) rank 0 builds the shards while the others wait,
then every rank memory-maps the same files.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from pipelines import config, lake
from pipelines.llm.models import resolve
from pipelines.tokenize.spec import ShardError, ShardSet, locate_shards, open_shards
from pipelines.version import code_version
from training.config import TrainSpec

log = logging.getLogger(__name__)

ADAPTER = "adapter_model.safetensors"


@dataclass
class RunResult:
    run_dir: Path
    shards: ShardSet
    checkpoint: Path | None
    """The best checkpoint under early stopping, else the last one."""
    final: dict
    """The last metrics record (loss, val_loss, tokens/s, ...)."""
    trainable_params: int = 0
    adapter_bytes: int | None = None
    """LoRA: the size of the checkpoint's adapter_model.safetensors (what a deployment stores per adapter)."""
    best_step: int | None = None
    ended_by: str | None = None
    """What ended training: schedule, max_steps, early stopping or request (SIGTERM, SIGINT, STOP file)."""
    planned_steps: int | None = None
    """The schedule's steps (the step reached is final["step"])."""

    @property
    def adapter(self) -> Path | None:
        """LoRA: the PEFT adapter folder of the result checkpoint."""
        return self.checkpoint / "hf" if self.adapter_bytes is not None else None

    def to_dict(self) -> dict:
        """What result.json in the run directory records."""
        return {"checkpoint": str(self.checkpoint) if self.checkpoint else None, "best_step": self.best_step,
                "adapter": str(self.adapter) if self.adapter else None, "adapter_bytes": self.adapter_bytes,
                "trainable_params": self.trainable_params, "shards": str(self.shards.folder),
                "ended_by": self.ended_by, "planned_steps": self.planned_steps,
                "final": {k: v for k, v in self.final.items() if k != "first_samples"}}


def ended_note(result: dict) -> str:
    """What a run's result.json (`RunResult.to_dict`) says ended it, when it was not its schedule running out."""
    by, step, planned = result.get("ended_by"), (result.get("final") or {}).get("step"), result.get("planned_steps")
    if not by or by == "schedule":
        return ""
    what = "stopped on " + by if by.startswith("request") else by
    return f"{what} at step {step} of {planned}" if step and planned else what


def run_figures(run_dir: Path, best_step: int | None) -> tuple[float | None, float | None]:
    """A run's validation loss at `best_step` (else its lowest) and its median training tokens/s over the
    steps after the first, which pays for warm-up, from its metrics.jsonl; None where nothing was recorded."""
    from training.plots import read_metrics

    rows = read_metrics(Path(run_dir) / "metrics.jsonl")
    val = [r for r in rows if r.get("val_loss") is not None]
    at_best = [r["val_loss"] for r in val if r["step"] == best_step]
    speeds = [r["tokens_per_s"] for r in rows[1:] or rows if r.get("tokens_per_s")]
    return (at_best[-1] if at_best else min((r["val_loss"] for r in val), default=None),
            statistics.median(speeds) if speeds else None)


def run_name(spec: TrainSpec, release: str, category: str | None = None) -> str:
    return (f"{spec.recipe}-{category + '-' if category else ''}{release}-"
            f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}")


def launch(cfg: lake.LakeConfig, spec: TrainSpec, release: str | None, *, spark_factory=None,
           shards_dir: str | Path | None = None, name: str | None = None, resume: str | None = None,
           console=None) -> RunResult:
    """Train `spec` on `release`'s shard set (found and checked without Spark; built with
    `spark_factory` when it is missing), or on the shard set in folder `shards_dir` (no lake needed: a node
    that holds the training stack and a copy of the shards). `resume`: a run directory to continue
    from its latest checkpoint."""
    import torch

    from training.trainer import Trainer, setup_distributed

    rank, _, world = setup_distributed()
    model = resolve(spec.model, chat=spec.shards.mode == "sft")
    tokenizer = spec.tokenizer or model.path
    if shards_dir is not None:
        shards = _checked_folder(shards_dir, tokenizer, spec, checksums=rank == 0)
        release = shards.manifest["release"]["name"]
    else:
        if release is None:
            raise ValueError("name a release (--release) or a built shard set (--shards DIR) to train on")
        shards = None
        if rank == 0:
            place = locate_shards(cfg, release, tokenizer, spec.shards)
            shards = place.existing
            if shards is None:  # the only step that needs Spark (and delta-rs, for the quarantine)
                from pipelines.tokenize.stage import build_shards

                if spark_factory is None:
                    raise ShardError(f"release {release} has no shard set for this tokenizer and shards spec yet, and "
                                     f"no Spark session to build one: run `telelake shards build --release {release}` "
                                     f"where Spark is installed")
                shards = build_shards(spark_factory, cfg, release, tokenizer, spec.shards, code_version=code_version(),
                                      place=place)
        if world > 1:
            torch.distributed.barrier()
        if rank != 0:  # the set exists now: this finds and checks it
            shards = locate_shards(cfg, release, tokenizer, spec.shards).existing
    run_dir = Path(resume) if resume else Path(spec.out) / (name or run_name(spec, release))
    if resume and not (run_dir / "run.json").is_file():
        raise FileNotFoundError(f"--resume {resume}: no run.json there; give a run directory made by `telelake train`")
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        _record(run_dir, spec, release, shards, model, world, resumed=bool(resume))
    trainer = Trainer(spec, model.path, shards.folder, run_dir)
    say = console.print if console else log.info
    for line in [*shards.lines(), *trainer.describe()]:
        if rank == 0:
            say(line)
    if resume:
        trainer.resume()
    state = _train(trainer, rank)
    final = state.history[-1] if state.history else {}
    ckpt = sorted((run_dir / "checkpoints").glob("step-*"))
    best = trainer.best_checkpoint()
    result = RunResult(run_dir=run_dir, shards=shards, checkpoint=best or (ckpt[-1] if ckpt else None), final=final,
                       trainable_params=sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
                       adapter_bytes=None, best_step=trainer.state.best_step, ended_by=state.ended_by,
                       planned_steps=trainer.plan.total_steps)
    if result.checkpoint is not None and (result.checkpoint / "hf" / ADAPTER).is_file():
        result.adapter_bytes = (result.checkpoint / "hf" / ADAPTER).stat().st_size
    if rank == 0:
        (run_dir / "result.json").write_text(json.dumps(result.to_dict(), indent=1, default=str))
    return result


def _checked_folder(folder: str | Path, tokenizer: str, spec: TrainSpec, *, checksums: bool) -> ShardSet:
    """The shard set in `folder`, refused when another vocabulary built it (a model trained on another
    tokenizer's ids learns nothing, silently) or when it holds another mode than the recipe's."""
    from pipelines.tokenize import encode

    found = open_shards(folder, checksums=checksums)
    m, built_by = found.manifest, found.manifest["tokenizer"]
    mine = encode.inspect_tokenizer(tokenizer, chat=spec.shards.mode == "sft")
    if (built_by["vocab_size"], built_by["eos_id"]) != (mine.vocab_size, mine.eos_id):
        raise ShardError(f"shard set {folder} was tokenized with {built_by.get('folder')} ({built_by['vocab_size']:,} "
                         f"tokens, EOS {built_by['eos_id']}), not with {tokenizer} ({mine.vocab_size:,} tokens, EOS "
                         f"{mine.eos_id}); train a model of that tokenizer, or build shards for this one")
    if built_by["sha256"] != mine.sha256:
        log.warning("shard set %s was built with tokenizer files other than %s's (same vocabulary size and EOS); "
                    "check that they map tokens to the same ids", folder, tokenizer)
    if m["spec"]["mode"] != spec.shards.mode:
        raise ShardError(f"shard set {folder} holds {m['spec']['mode']} sequences; recipe {spec.recipe} trains "
                         f"{spec.shards.mode} (choose the matching recipe)")
    return found


def _train(trainer, rank: int):
    if rank != 0 or not sys.stderr.isatty():
        return trainer.train()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn()) as progress:
        return trainer.train(progress)


def _record(run_dir: Path, spec: TrainSpec, release: str, shards: ShardSet, model, world: int, *, resumed: bool) -> None:
    m = shards.manifest
    record = {
        "recipe": spec.recipe, "release": m["release"],
        "shards": {"folder": str(shards.folder), "key": m["key"], "tokenizer": m["tokenizer"], "seq_len": m["seq_len"],
                   "splits": {s: {k: v for k, v in e.items() if k != "shards"} for s, e in m["splits"].items()},
                   "blend": m["blend"], "built_by": m.get("code_version")},
        "config": config.to_dict(spec), "code_version": code_version(),
        "model": {"name": model.name, "path": model.path, "revision": model.revision},
        "world_size": world, "command": sys.argv,
    }
    path = run_dir / "run.json"
    if resumed and path.is_file():
        first = json.loads(path.read_text())
        if first["release"]["content_hash"] != record["release"]["content_hash"] or first["shards"]["key"] != record["shards"]["key"]:
            raise ValueError(f"--resume {run_dir}: the run trained on release {first['release']['name']} / shards "
                             f"{first['shards']['key']}, not {release} / {record['shards']['key']}; resume with the same "
                             f"release and shard settings")
        record = {**first, "resumes": [*first.get("resumes", []), {"at": _now(), "code_version": record["code_version"],
                                                                   "world_size": world}]}
    else:
        record["started_at"] = _now()
    path.write_text(json.dumps(record, indent=1, default=str))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
