"""Training recipes as typed config: conf/training/<recipe>.yaml → TrainSpec.

Defaults are the paper's continual-pretraining setup (Tele-LLMs §VI): AdamW with weight decay 0.1 and
default betas, gradient clipping 1.0, linear warm-up over 10% of an epoch, cosine decay to 10% of the
peak learning rate, peak lr 1e-5 (Llama; Gemma 2e-5), 4M-token batches, 2 epochs, bf16 on GPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipelines.llm.models import ModelSpec
from pipelines.tokenize.spec import ShardSpec
from training.kd import KDSpec


@dataclass(frozen=True, kw_only=True)
class OptimSpec:
    lr: float = 1e-5
    """Peak learning rate (paper: 1e-5 for Llama-3-8B, 2e-5 for Gemma-2B)."""
    weight_decay: float = 0.1
    """Decoupled weight decay; not applied to biases and norm weights."""
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 1.0
    """Global gradient-norm clip (0 turns it off)."""
    fused: bool = True
    """torch's fused AdamW (one kernel per parameter group); False: the per-tensor foreach form."""


@dataclass(frozen=True, kw_only=True)
class ScheduleSpec:
    warmup_epoch_share: float = 0.1
    """Linear warm-up over this share of one epoch's optimizer steps."""
    min_lr_ratio: float = 0.1
    """Cosine decay ends at this fraction of the peak learning rate."""


@dataclass(frozen=True, kw_only=True)
class BatchSpec:
    tokens_per_step: int = 4_194_304
    """Global batch in tokens (paper: 4M); rounded to whole micro-batches × ranks × accumulation."""
    micro_batch: int = 4
    """Sequences per rank per forward pass."""


@dataclass(frozen=True, kw_only=True)
class LoraSpec:
    r: int = 64
    alpha: int = 32
    dropout: float = 0.1
    """The paper's LoRA comparison: r 64, alpha 32, dropout 0.1."""
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                               "up_proj", "down_proj"])


@dataclass(frozen=True, kw_only=True)
class EarlyStopSpec:
    patience: int = 3
    """Stop after this many evaluations in a row without a new best validation loss."""
    min_delta: float = 0.0
    """An evaluation is a new best when it is below the best so far by more than this."""

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"early_stopping.patience {self.patience}: at least 1 evaluation")
        if self.min_delta < 0:
            raise ValueError(f"early_stopping.min_delta {self.min_delta}: must be >= 0")


@dataclass(frozen=True, kw_only=True)
class DistillSpec:
    """Knowledge distillation from a frozen teacher (paper 002)."""
    teacher: ModelSpec = field(default_factory=ModelSpec)
    """A local HF causal LM folder (or embedded:<name>): the teacher, e.g. an SFT run's hf/ folder."""
    method: Literal["vanilla", "dskd"] = "vanilla"
    """vanilla: KL between the two next-token distributions (one vocabulary); dskd: dual-space KD with
    cross-model attention (different vocabularies, training/dskd.py)."""
    loss: KDSpec = field(default_factory=KDSpec)
    """Temperature, the KD/CE mixing rate, forward or reverse KL."""
    teacher_logits: Literal["on_the_fly", "cached"] = "on_the_fly"
    """vanilla only: run the teacher on each batch, or cache its top-k log-probabilities once."""
    cache_top_k: int = 64

    def __post_init__(self) -> None:
        if self.method == "dskd" and self.teacher_logits == "cached":
            raise ValueError("kd.teacher_logits cached: dskd needs the teacher's hidden states, not only its "
                             "top-k; use on_the_fly")
        if self.cache_top_k < 1:
            raise ValueError(f"kd.cache_top_k {self.cache_top_k}: at least 1")


@dataclass(frozen=True, kw_only=True)
class TrainSpec:
    recipe: str = "cpt"
    """Name recorded with the run (cpt, sft, cpt_lora, ...)."""
    model: ModelSpec = field(default_factory=ModelSpec)
    """Any local Hugging Face causal LM folder; default the embedded SmolLM2-135M."""
    tokenizer: str | None = None
    """Tokenizer folder for the shards; default the model's folder."""
    shards: ShardSpec = field(default_factory=ShardSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    batch: BatchSpec = field(default_factory=BatchSpec)
    lora: LoraSpec | None = None
    """Train a LoRA adapter instead of every parameter."""
    epochs: float = 2.0
    max_steps: int | None = None
    """Stop after this many optimizer steps (the schedule still spans `epochs`); for smoke runs."""
    step_budget: int | None = None
    """At most this many optimizer steps, with the schedule fit to them (warm-up the same share of
    them, cosine down to the end): a recipe sized to a machine, e.g. a CPU's adapter run."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """auto: bf16 on GPU (DeepSpeed bf16), fp32 on CPU; bf16 on a CPU: the forward under bf16 autocast,
    fp32 weights, gradients and optimizer."""
    zero: str = "auto"
    """DeepSpeed ZeRO config, a file in conf/training/ or a path; auto: zero0.yaml in a world of one
    process (nothing to partition), zero2.yaml across ranks."""
    attention: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"
    """Attention kernel; every one of them masks packed documents from each other through the
    position ids (no attention mask is passed)."""
    gradient_checkpointing: bool = False
    """Recompute each decoder layer's activations in backward (activation checkpointing): about a third
    more compute for a fraction of the activation memory; for long sequences or large micro-batches."""
    compile: bool = False
    """torch.compile each decoder layer in place (the state dict keeps its names): fuses the layers'
    elementwise work on a GPU; the first steps pay the compilation."""
    fused_loss: bool = True
    """Cross-entropy from the last hidden states in row chunks, without the full logits
    (training/loss.py), where the model family allows it and ZeRO stage < 3; the model's own head
    otherwise. Same loss and gradients; faster, and far less memory at large vocabularies."""
    kd: DistillSpec | None = None
    """Distil from a teacher: the objective becomes (1 − rate)·CE + rate·KD."""
    early_stopping: EarlyStopSpec | None = None
    """Stop when the validation loss stops improving (paper 001's adapters); each new best is saved
    and kept, and the run's result is the best checkpoint (named in <run>/best)."""
    eval_every_steps: int = 50
    eval_batches: int = 20
    """Validation micro-batches per evaluation (0: the whole validation split)."""
    save_every_steps: int = 200
    keep_checkpoints: int = 2
    log_every_steps: int = 1
    seed: int = 1234
    peak_tflops: float | None = None
    """Peak dense throughput of one device for MFU; default: known GPUs by name (bf16), on CPU a
    matmul measured at start."""
    out: str = "runs"
    """Folder the run directory is created in."""
