"""One timed training run of telelake's trainer or of `transformers.Trainer`, on the same model, shards,
batches in the same order, optimizer and schedule: the two sides of benchmarks/train_throughput.py (CPU)
and benchmarks/gpu/check.py (GPU).

- data: the shard set's train split in telelake's seeded order (`GlobalOrder`); the HF Trainer reads it
  sequentially, so step s of both sees the same sequences, with position ids and no attention mask;
- optimizer: AdamW (fused), weight decay on matrices only, the same warm-up + cosine schedule (one
  `LambdaLR` over `training.throughput.lr_factor`), gradient clipping 1.0;
- timing: the first `warm` optimizer steps are not timed; the device is synchronized before each clock
  read; tokens are document tokens (padding excluded), exact per step on both sides;
- memory: the device's peak allocated bytes (CUDA), else the process's peak resident set.

Run each in a fresh process (a DeepSpeed process group left behind would make the HF Trainer wrap the
model in DDP).
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

WARM = 2


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    steps: int = 10
    micro: int = 4
    accum: int = 2
    lr: float = 1e-4
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    warmup: int = 2
    min_lr_ratio: float = 0.1
    precision: str = "auto"
    """auto: bf16 on a GPU, fp32 on a CPU (both sides)."""
    seed: int = 1234


@dataclass
class RunFigures:
    tokens_per_s: float
    losses: list[float]
    step_s: list[float]
    peak_memory_gb: float
    mfu: float | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"tokens_per_s": self.tokens_per_s, "losses": self.losses, "step_s": self.step_s,
                "peak_memory_gb": self.peak_memory_gb, "mfu": self.mfu, **self.extra}


def ours(model: str, shards: Path, out: Path, s: RunSettings, *, zero: str = "auto", fused_loss: bool = True,
         lora_r: int | None = None, compile_layers: bool = False, gradient_checkpointing: bool = False,
         kd_teacher: str | None = None) -> RunFigures:
    """`kd_teacher`: distil from this model folder (vanilla KD, rate 0.5, on the fly)."""
    import torch

    from pipelines.llm.models import ModelSpec
    from training.config import BatchSpec, DistillSpec, LoraSpec, OptimSpec, ScheduleSpec, TrainSpec
    from training.data import PackedShards
    from training.trainer import Trainer

    seq = PackedShards(shards, "train").seq_len
    lora = LoraSpec(r=lora_r, alpha=2 * lora_r, dropout=0.0) if lora_r else None
    # the schedule both sides share: `steps` optimizer steps, `warmup` of them warm-up, cosine to the end
    spec = TrainSpec(batch=BatchSpec(tokens_per_step=seq * s.micro * s.accum, micro_batch=s.micro),
                     optim=OptimSpec(lr=s.lr, weight_decay=s.weight_decay, grad_clip=s.grad_clip), epochs=1000,
                     step_budget=s.steps, eval_every_steps=10**9, save_every_steps=10**9, zero=zero,
                     log_every_steps=10**9, fused_loss=fused_loss, lora=lora, precision=s.precision, seed=s.seed,
                     schedule=ScheduleSpec(warmup_epoch_share=s.warmup / s.steps, min_lr_ratio=s.min_lr_ratio),
                     compile=compile_layers, gradient_checkpointing=gradient_checkpointing,
                     kd=DistillSpec(teacher=ModelSpec(path=kd_teacher)) if kd_teacher else None)
    out.mkdir(parents=True, exist_ok=True)
    t = Trainer(spec, model, shards, out)
    assert (t.plan.warmup_steps, t.plan.total_steps) == (s.warmup, s.steps), t.plan
    t.save = lambda final=False: None  # time the steps, not checkpoint writes
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t.train()
    h = t.state.history
    timed = h[WARM:]
    return RunFigures(tokens_per_s=sum(r["tokens"] for r in timed) / sum(r["step_s"] for r in timed),
                      losses=[r["loss"] for r in h], step_s=[r["step_s"] for r in h], peak_memory_gb=_peak_gb(),
                      mfu=max((r["mfu"] or 0) for r in timed),
                      extra={"peak_source": t.peak_source, "zero_stage": t.zero_stage, "precision": t.precision_name,
                             "flops_per_token": t.flops_token, "grad_norms": [r["grad_norm"] for r in h],
                             **({"kd": [r["kd"] for r in h]} if kd_teacher else {})})


def hf(model: str, shards: Path, out: Path, s: RunSettings) -> RunFigures:
    """`transformers.Trainer` (sdpa, fused AdamW, bf16 autocast on a GPU) on the same sequences in the same
    order, with the same optimizer groups and schedule as `ours`."""
    import torch
    from torch.utils.data import SequentialSampler
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    from training import throughput
    from training.data import GlobalOrder, PackedShards

    data = PackedShards(shards, "train")
    order = GlobalOrder(len(data), s.seed)
    cuda = torch.cuda.is_available()
    bf16 = cuda and s.precision in ("auto", "bf16")

    class Ordered(torch.utils.data.Dataset):
        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            x = data.sample(order[i])
            return {k: torch.from_numpy(x[k]) for k in ("input_ids", "position_ids", "labels")}

    class InOrder(Trainer):
        def _get_train_sampler(self, *args, **kwargs):
            return SequentialSampler(self.train_dataset)

    marks: list[float] = []
    losses: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            marks.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    m = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32, attn_implementation="sdpa")
    m.config.use_cache = False
    decay = [p for n, p in m.named_parameters() if p.ndim >= 2 and "norm" not in n.lower()]
    rest = [p for n, p in m.named_parameters() if not (p.ndim >= 2 and "norm" not in n.lower())]
    if cuda:
        m = m.cuda()
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": s.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                                  lr=s.lr, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: throughput.lr_factor(
        k, warmup=s.warmup, total=s.steps, min_ratio=s.min_lr_ratio))
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=s.micro,
                             gradient_accumulation_steps=s.accum, max_grad_norm=s.grad_clip, max_steps=s.steps,
                             use_cpu=not cuda, bf16=bf16, report_to=[], save_strategy="no", logging_steps=1,
                             disable_tqdm=True, dataloader_num_workers=0, seed=s.seed)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    InOrder(model=m, args=args, train_dataset=Ordered(), optimizers=(optimizer, scheduler), callbacks=[Clock()]).train()
    per_step = [_document_tokens(data, order, k, s.micro * s.accum) for k in range(s.steps)]
    step_s = [b - a for a, b in zip(marks, marks[1:])]
    timed = slice(WARM, s.steps)
    return RunFigures(tokens_per_s=sum(per_step[timed]) / (marks[-1] - marks[WARM - 1]), losses=losses,
                      step_s=step_s, peak_memory_gb=_peak_gb())


def _document_tokens(data, order, step: int, global_batch: int) -> int:
    total = 0
    for g in range(step * global_batch, (step + 1) * global_batch):
        segs, padded = data.segments(order[g])
        total += int(segs.sum() - (segs[-1] if padded else 0))
    return total


def _peak_gb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
