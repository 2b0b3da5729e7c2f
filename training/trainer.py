"""The DeepSpeed trainer: packed shards in, HF-format checkpoints and metrics out.

`deepspeed.initialize` directly rather than the HF Trainer integration: the step is ours to write
(token-weighted loss over a global batch, position-id block attention with no attention mask, a
consumed-samples counter that decides the data order), and the same loop serves continual
pretraining, instruction tuning, LoRA and, later, distillation.

    train → train_step → forward_backward → evaluate / save

One dense line per logged step (loss, val loss, grad norm, lr, tokens/s, MFU) goes to the log and to
metrics.jsonl in the run directory; plots are redrawn at every save. A checkpoint holds DeepSpeed's
engine state (model, optimizer, scheduler; for exact resume) plus an `hf/` folder (safetensors and the
tokenizer) that `from_pretrained` loads. SIGTERM, Ctrl-C or a STOP file in the run directory end a run
cleanly at the next step (training/stop.py).
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training import throughput
from training.config import TrainSpec
from training.data import IGNORE, GlobalOrder, PackedShards, step_batch
from training.kd_step import Distiller
from training.loss import FusedHead
from training.stop import StopRequest

log = logging.getLogger(__name__)


def setup_distributed() -> tuple[int, int, int]:
    """(rank, local rank, world size); a plain `python -m` run becomes a world of one (gloo on CPU)."""
    if "RANK" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import deepspeed

    if not torch.distributed.is_initialized():
        deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), int(os.environ["WORLD_SIZE"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Plan:
    """Derived numbers of a run, printed once."""
    micro: int
    accum: int
    world: int
    seq_len: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int

    @property
    def global_batch(self) -> int:
        return self.micro * self.accum * self.world

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch * self.seq_len


def make_plan(spec: TrainSpec, n_train: int, seq_len: int, world: int) -> Plan:
    micro = spec.batch.micro_batch
    accum = max(1, round(spec.batch.tokens_per_step / (seq_len * micro * world)))
    per_epoch = max(1, n_train // (micro * accum * world))
    total = max(1, math.ceil(spec.epochs * per_epoch))
    span = per_epoch  # the warm-up is a share of an epoch, or of the budget when that is shorter
    if spec.step_budget is not None and spec.step_budget < total:
        total = span = max(1, spec.step_budget)
    warmup = max(1, round(spec.schedule.warmup_epoch_share * min(span, per_epoch)))
    return Plan(micro, accum, world, seq_len, per_epoch, total, min(warmup, total))


@dataclass(frozen=True)
class MicroInputs:
    """A micro-batch as the step uses it."""
    labels: torch.Tensor
    """[B, T] next-token labels (IGNORE where no loss), on the device."""
    rows: torch.Tensor
    """Flat indices of the labelled positions of [B·T], on the device (found on the host: no sync)."""
    host_labels: torch.Tensor
    """The labels on the host (DSKD re-tokenizes documents from them)."""
    kwargs: dict
    """The model's keyword arguments (input_ids, position_ids) on the device."""


@dataclass
class State:
    step: int = 0
    consumed_samples: int = 0
    history: list[dict] = field(default_factory=list)
    best_val: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    """Evaluations since the last new best (early stopping)."""
    ended_by: str | None = None
    """What ended the last `train()`: schedule, max_steps, early stopping or request (<signal or file>)."""


class Trainer:
    def __init__(self, spec: TrainSpec, model_dir: str, shards: str | Path, run_dir: str | Path) -> None:
        self.spec = spec
        self.model_dir = model_dir
        self.run_dir = Path(run_dir)
        self.rank, self.local_rank, self.world = setup_distributed()
        self.device = torch.device(f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu")
        on_gpu = self.device.type == "cuda"
        # GPUs: DeepSpeed's bf16 mode (bf16 weights, fp32 master copy). CPUs asked for bf16: fp32 weights,
        # gradients and optimizer, the forward's matmuls in bf16 under torch.autocast (oneDNN, AMX where
        # present); DeepSpeed's bf16 mode also runs there but learned less per step (docs/BENCHMARKS.md)
        self.bf16 = self._deepspeed_bf16(on_gpu)
        self.autocast = not self.bf16 and spec.precision == "bf16"
        self.train_data = PackedShards(shards, "train")
        has_val = self.train_data.manifest["splits"].get("val", {}).get("sequences", 0) > 0
        self.val_data = PackedShards(shards, "val") if has_val else None
        if spec.early_stopping is not None and self.val_data is None:
            raise ValueError(f"early stopping watches the validation loss, but the shards {shards} have no "
                             "validation sequences; set shards.val_share (cpt) or give the instructions a val split")
        self.order = GlobalOrder(len(self.train_data), spec.seed)
        self.plan = make_plan(spec, len(self.train_data), self.train_data.seq_len, self.world)
        self.state = State()
        self.metrics_path = self.run_dir / "metrics.jsonl"
        _seed_everything(spec.seed)
        self.model = self._build_model()
        self.distiller = Distiller.build(self, spec.kd) if spec.kd is not None else None
        self.engine = self._build_engine()
        self.fused = FusedHead.of(self.model) if spec.fused_loss and self.zero_stage < 3 else None
        if self.distiller is not None:
            self.distiller.ready(self)
        self.flops_token = throughput.flops_per_token(self.model, self.plan.seq_len)
        name = torch.cuda.get_device_name(self.local_rank) if self.device.type == "cuda" else None
        self.peak, self.peak_source = throughput.device_peak_flops(name, spec.peak_tflops, bf16=self.autocast)

    # --- building ------------------------------------------------------------------------------

    def _deepspeed_bf16(self, on_gpu: bool) -> bool:
        """DeepSpeed's bf16 mode (bf16 weights and activations, fp32 master weights): on GPUs, for bf16 or
        auto. (A test turns it on for a CPU to run the GPU's dtypes there.)"""
        return on_gpu and self.spec.precision in ("bf16", "auto")

    def _build_model(self):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32,
                                                     attn_implementation=self.spec.attention)
        model.config.use_cache = False
        if self.spec.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if self.spec.compile:
            for layer in _decoder_layers(model):
                layer.compile()  # in place: parameter names and checkpoints are unchanged
        if self.spec.lora is not None:
            from peft import LoraConfig, get_peft_model

            lc = self.spec.lora
            model = get_peft_model(model, LoraConfig(r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout,
                                                     target_modules=list(lc.target_modules), task_type="CAUSAL_LM"))
        return model

    def _build_engine(self):
        import deepspeed

        o = self.spec.optim
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
        groups = [{"params": ps, "weight_decay": wd} for ps, wd in ((decay, o.weight_decay), (no_decay, 0.0)) if ps]
        # fused: one kernel per parameter group instead of a dozen per tensor (CUDA and CPU)
        optimizer = torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, fused=o.fused)
        plan, sched = self.plan, self.spec.schedule
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: throughput.lr_factor(
            s, warmup=plan.warmup_steps, total=plan.total_steps, min_ratio=sched.min_lr_ratio))
        zero = zero_config(self.spec.zero, self.world)
        self.zero_stage = int(zero.get("zero_optimization", {}).get("stage", 0))
        # DeepSpeed's own clipping of plain fp32 gradients reports no norm: there the trainer clips (one pass
        # that also gives the norm to log); bf16 and ZeRO stages clip and report it themselves
        self.own_clip = self.zero_stage == 0 and not self.bf16
        ds_config = {**zero, "train_micro_batch_size_per_gpu": plan.micro, "gradient_accumulation_steps": plan.accum,
                     "gradient_clipping": 0.0 if self.own_clip else o.grad_clip,
                     "bf16": {"enabled": self.bf16}, "steps_per_print": 1 << 30, "wall_clock_breakdown": False}
        engine, _, _, _ = deepspeed.initialize(model=self.model, optimizer=optimizer, lr_scheduler=scheduler,
                                               config=ds_config)
        return engine

    # --- the loop ------------------------------------------------------------------------------

    def describe(self) -> list[str]:
        p = self.plan
        n_params = sum(x.numel() for x in self.model.parameters())
        n_train = sum(x.numel() for x in self.model.parameters() if x.requires_grad)
        return [f"model {self.model_dir}: {n_params / 1e6:,.1f}M parameters, {n_train / 1e6:,.2f}M trained"
                f"{' (LoRA)' if self.spec.lora else ''}; {self.precision_name} on {self.device} × {p.world}, "
                f"ZeRO stage {self.zero_stage}; loss {'fused chunked head' if self.fused else 'the model head'}",
                f"batch: {p.micro} sequences × {p.accum} accumulation × {p.world} ranks = {p.global_batch} sequences "
                f"= {p.tokens_per_step:,} tokens per step",
                f"schedule: {p.steps_per_epoch:,} steps per epoch, {p.total_steps:,} steps "
                + (f"(the step budget; {self.spec.epochs:g} epochs would be "
                   f"{math.ceil(self.spec.epochs * p.steps_per_epoch):,})"
                   if self.spec.step_budget is not None and p.total_steps == self.spec.step_budget
                   < math.ceil(self.spec.epochs * p.steps_per_epoch) else f"for {self.spec.epochs:g} epochs")
                + f", warm-up {p.warmup_steps:,}, cosine to {self.spec.schedule.min_lr_ratio:g}× peak lr "
                f"{self.spec.optim.lr:g}" + (f"; stopping at step {self.spec.max_steps}" if self.spec.max_steps else "")
                + (f"; early stopping after {self.spec.early_stopping.patience} evaluations without a better "
                   f"validation loss" if self.spec.early_stopping else ""),
                f"data: {len(self.train_data):,} train sequences of {p.seq_len:,} tokens, "
                f"{len(self.val_data) if self.val_data else 0:,} validation; "
                f"{self.flops_token / 1e9:,.2f} GFLOPs per token; MFU peak: {self.peak_source}",
                *([self.distiller.describe()] if self.distiller else [])]

    def train(self, progress=None) -> State:
        last = min(self.plan.total_steps, self.spec.max_steps or self.plan.total_steps)
        task = progress.add_task("training", total=last, completed=self.state.step) if progress else None
        self.state.ended_by = "schedule" if last == self.plan.total_steps else "max_steps"
        with StopRequest(self.run_dir) as request:
            while self.state.step < last:
                record = self.train_step()
                step = self.state.step
                asked = request.agreed(lambda x: x if self.world == 1 else float(_all_sum(
                    torch.tensor(x, dtype=torch.float64, device=self.device))))
                if self.val_data is not None and (step % self.spec.eval_every_steps == 0 or step == last or asked):
                    record["val_loss"] = self.evaluate()
                best, stop = self._early_stopping(record)
                if asked:
                    record["stop_requested"] = asked
                self._log(record)
                end = step == last or bool(asked)
                if step % self.spec.save_every_steps == 0 or end or best:
                    self.save(final=end or best)
                if progress:
                    progress.update(task, completed=step)
                if asked:
                    if self.rank == 0:
                        request.consume()
                    self.state.ended_by = f"request ({asked})"
                    log.warning("stopped on request (%s) at step %d of %d%s", asked, step, self.plan.total_steps,
                                f"; best validation loss {self.state.best_val:.4f} at step {self.state.best_step}"
                                if self.state.best_step is not None else "")
                    break
                if stop:
                    self.state.ended_by = "early stopping"
                    log.info("early stop at step %d: no better validation loss in %d evaluations; best %.4f at step %d",
                             step, self.state.bad_evals, self.state.best_val, self.state.best_step)
                    break
        return self.state

    def _early_stopping(self, record: dict) -> tuple[bool, bool]:
        """(this evaluation is a new best, training should stop), with early stopping on."""
        rule = self.spec.early_stopping
        if rule is None or "val_loss" not in record:
            return False, False
        s = self.state
        if s.best_val is None or record["val_loss"] < s.best_val - rule.min_delta:
            s.best_val, s.best_step, s.bad_evals = record["val_loss"], s.step, 0
            record["best"] = True
            return True, False
        s.bad_evals += 1
        record["early_stopped"] = s.bad_evals >= rule.patience
        return False, record["early_stopped"]

    def best_checkpoint(self) -> Path | None:
        """The checkpoint of the best validation loss (early stopping), else None."""
        marker = self.run_dir / "best"
        return self.run_dir / "checkpoints" / marker.read_text().strip() if marker.is_file() else None

    def train_step(self) -> dict:
        """One optimizer step. The micro-batch loop never waits for the device: losses are summed
        where they are computed and come back to the host once, after the optimizer step."""
        p = self.plan
        batch = step_batch(self.train_data, self.order, self.state.consumed_samples, micro=p.micro, accum=p.accum,
                           world=p.world, rank=self.rank)
        self.engine.train()
        lr = self.engine.get_lr()[0]
        self._sync()
        start = time.perf_counter()
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # cross-entropy, KD: summed over targets
        grad_norm = None
        for m, micro in enumerate(batch.micro):
            sums += self.forward_backward(micro, batch.targets)
            if m == len(batch.micro) - 1 and self.own_clip:  # the gradients are complete (and averaged over ranks)
                grad_norm = _clip_grad_norm(self.model, self.spec.optim.grad_clip)
            self.engine.step()
        if grad_norm is None:
            gn = self.engine.get_global_grad_norm()
            grad_norm = torch.as_tensor(float("nan") if gn is None else gn, dtype=torch.float64, device=self.device)
        ce_sum, kd_sum, grad_norm = torch.cat([_all_sum(sums), grad_norm.reshape(1)]).tolist()  # the step's one sync
        self._sync()
        elapsed = time.perf_counter() - start
        self.state.step += 1
        self.state.consumed_samples += p.global_batch
        positions = p.global_batch * p.seq_len
        return {"step": self.state.step, "epoch": self.state.consumed_samples / len(self.train_data),
                "consumed_samples": self.state.consumed_samples, "loss": ce_sum / max(1, batch.targets),
                "grad_norm": grad_norm, "lr": lr, "tokens": batch.tokens,
                "targets": batch.targets, "step_s": elapsed, "tokens_per_s": batch.tokens / elapsed,
                "mfu": throughput.mfu(self.flops_token, positions / elapsed, self.peak, p.world),
                "first_samples": batch.samples[:4],
                **({"kd": kd_sum / max(1, batch.targets)} if self.distiller is not None else {})}

    def forward_backward(self, micro: dict, step_targets: int) -> torch.Tensor:
        """[cross-entropy, KD] summed over this micro-batch's targets (float64, on the device); backward of
        its share of the global token mean (DeepSpeed divides by the accumulation steps and averages over
        ranks)."""
        scale = self.plan.accum * self.plan.world / max(1, step_targets)
        with self.forward_precision():
            if self.distiller is None:
                ce = loss = self._ce_sum(self.inputs(micro))
                kd = torch.zeros((), device=ce.device)
            else:
                ce, kd, extra = self.distiller.sums(self, micro)
                rate = self.spec.kd.loss.rate
                loss = (1 - rate) * ce + rate * (kd + extra)
        self.engine.backward(loss * scale)
        return torch.stack([ce.detach(), kd.detach()]).double()

    def _ce_sum(self, x: MicroInputs) -> torch.Tensor:
        if self.fused is not None:
            with self.fused.headless():
                hidden = self.engine(**x.kwargs).logits
            return self.fused.loss(hidden, x.labels, rows=x.rows)
        logits = self.engine(**x.kwargs).logits
        logits = logits if logits.dtype == torch.float32 else logits.float()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), x.labels.reshape(-1), ignore_index=IGNORE,
                               reduction="sum")

    def _sync(self) -> None:
        """Wait for the device's queued work (CUDA runs asynchronously), so a clock read measures it."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @property
    def precision_name(self) -> str:
        return "bf16" if self.bf16 else "bf16 autocast" if self.autocast else "fp32"

    def forward_precision(self):
        """The context forwards run in: bf16 autocast on a CPU asked for bf16, else nothing (backward
        runs outside it, in the dtypes the forward chose)."""
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext()

    def inputs(self, micro: dict) -> MicroInputs:
        """A host micro-batch's next-token labels, labelled rows and model arguments, on the device."""
        # shift the labels, not the logits: slicing [B, T, V] logits copies them (the largest tensor of the step)
        host = F.pad(micro["labels"][:, 1:], (0, 1), value=IGNORE)
        rows = (host.reshape(-1) != IGNORE).nonzero().squeeze(1)  # on the host: no device sync
        to = {"device": self.device, "non_blocking": True}
        return MicroInputs(labels=host.to(**to), rows=rows.to(**to), host_labels=host,
                           kwargs={"input_ids": micro["input_ids"].to(**to),
                                   "position_ids": micro["position_ids"].to(**to), "use_cache": False})

    @torch.no_grad()
    def evaluate(self) -> float:
        """Token-mean cross-entropy on the validation split (the first eval_batches micro-batches)."""
        self.engine.eval()
        data, micro = self.val_data, self.plan.micro
        n = len(data) if not self.spec.eval_batches else min(len(data), self.spec.eval_batches * micro * self.world)
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # cross-entropy, targets
        for start in range(self.rank * micro, n, micro * self.world):
            x = self.inputs(data.batch(range(start, min(n, start + micro))))
            with self.forward_precision():
                sums[0] += self._ce_sum(x).double()
            sums[1] += len(x.rows)
        total, targets = _all_sum(sums).tolist()
        self.engine.train()
        return total / max(1.0, targets)

    # --- records -------------------------------------------------------------------------------

    def _log(self, record: dict) -> None:
        self.state.history.append(record)
        if self.rank != 0:
            return
        with self.metrics_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if record["step"] % self.spec.log_every_steps == 0 or "val_loss" in record:
            log.info(format_record(record, self.plan.total_steps))

    def save(self, final: bool = False) -> Path:
        """DeepSpeed state (exact resume) and an HF folder, under checkpoints/step-NNNNNN/."""
        from training import export, plots

        tag = f"step-{self.state.step:06d}"
        root = self.run_dir / "checkpoints"
        state = {"step": self.state.step, "consumed_samples": self.state.consumed_samples, "rng": _rng_state(),
                 "best_val": self.state.best_val, "best_step": self.state.best_step, "bad_evals": self.state.bad_evals}
        self.engine.save_checkpoint(str(root), tag=tag, client_state={"telelake": state})
        export.save_hf(self.engine, self.model, self.model_dir, root / tag / "hf", rank=self.rank,
                       zero_stage=self.zero_stage, merge=final)
        if self.rank == 0:
            if self.spec.early_stopping is not None and self.state.best_step == self.state.step:
                (self.run_dir / "best").write_text(tag + "\n")
            best = f"step-{self.state.best_step:06d}" if self.state.best_step is not None else None
            tags = sorted(p.name for p in root.glob("step-*") if p.is_dir())
            for old in tags[:-self.spec.keep_checkpoints]:
                if old != best:  # the best checkpoint is the run's result: never pruned
                    shutil.rmtree(root / old, ignore_errors=True)
            plots.write_run_plots(self.metrics_path, self.run_dir)
        return root / tag

    def resume(self) -> bool:
        """Load the latest checkpoint of the run directory; False when it has none."""
        root = self.run_dir / "checkpoints"
        if not (root / "latest").is_file():
            return False
        path, client = self.engine.load_checkpoint(str(root))
        if path is None:
            raise RuntimeError(f"could not load the checkpoint named by {root / 'latest'}")
        t = client["telelake"]
        self.state.step, self.state.consumed_samples = t["step"], t["consumed_samples"]
        self.state.best_val, self.state.best_step = t.get("best_val"), t.get("best_step")
        self.state.bad_evals = t.get("bad_evals", 0)
        _set_rng_state(t["rng"])
        if self.rank == 0 and self.metrics_path.is_file():  # drop records of steps after the checkpoint
            kept = [ln for ln in self.metrics_path.read_text().splitlines() if json.loads(ln)["step"] <= t["step"]]
            self.metrics_path.write_text("".join(ln + "\n" for ln in kept))
        log.info("resumed from %s: step %d, %d samples consumed", path, self.state.step, self.state.consumed_samples)
        return True


def format_record(r: dict, total: int) -> str:
    parts = [f"step {r['step']:,}/{total:,}", f"loss {r['loss']:.4f}"]
    if "val_loss" in r:
        parts.append(f"val {r['val_loss']:.4f}" + (" (best)" if r.get("best") else "")
                     + (" (early stop)" if r.get("early_stopped") else ""))
    parts += [f"gnorm {r['grad_norm']:.3f}", f"lr {r['lr']:.2e}", f"{r['tokens_per_s']:,.0f} tok/s"]
    if r.get("mfu") is not None:
        parts.append(f"MFU {100 * r['mfu']:.1f}%")
    return " | ".join(parts)


def zero_config(name: str, world: int | None = None) -> dict:
    """The DeepSpeed config fragment of conf/training/<name> (or a path): ZeRO stage and its options.
    `auto`: stage 0 in a world of one process (partitioning across one rank saves nothing and costs a
    copy of every gradient per step), stage 2 across ranks (`world`: the ranks; default the launch's)."""
    import yaml

    from pipelines.config import SHIPPED_CONF

    if name == "auto":
        world = world if world is not None else int(os.environ.get("WORLD_SIZE", "1"))
        name = "zero0.yaml" if world == 1 else "zero2.yaml"
    path = Path(name)
    if not path.is_file():
        path = SHIPPED_CONF / "training" / name
    if not path.is_file():
        known = sorted(p.name for p in (SHIPPED_CONF / "training").glob("zero*.yaml"))
        raise FileNotFoundError(f"DeepSpeed config {name!r} not found (as a path or in conf/training/); known: {known}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a mapping of DeepSpeed config keys is expected")
    return data


def _decoder_layers(model) -> list[torch.nn.Module]:
    """The repeated blocks of a transformers causal LM (model.model.layers for the Llama family)."""
    for path in ("model.layers", "transformer.h", "model.decoder.layers", "gpt_neox.layers"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, torch.nn.ModuleList):
            return list(obj)
    raise ValueError(f"train.compile: no decoder layer list found in {type(model).__name__}; set compile: false")


def _clip_grad_norm(model, max_norm: float) -> torch.Tensor:
    """Clip the gradients to `max_norm` (0: no clipping) and return their global norm before clipping
    (float64, on the gradients' device)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros((), dtype=torch.float64, device=next(model.parameters()).device)
    norm = torch.nn.utils.get_total_norm(grads, foreach=True)
    if max_norm > 0:
        torch.nn.utils.clip_grads_with_norm_(grads, max_norm, norm, foreach=True)
    return norm.double()


def _all_sum(x: torch.Tensor) -> torch.Tensor:
    """`x` summed over the ranks (float64, on x's device; gloo on a CPU, NCCL on GPUs)."""
    x = x.to(torch.float64)
    if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        x = x.clone()
        torch.distributed.all_reduce(x)
    return x


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
