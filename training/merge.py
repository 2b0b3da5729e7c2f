"""Merge LoRA adapters of one base model into one adapter: linear, TIES, DARE (paper 001's open question).

Merging works on each adapted module's weight update Δ = scale · B·A (scale = alpha / r, or
alpha / √r with rsLoRA), not on A and B apart: two adapters' A and B live in different bases, and
averaging the factors is not averaging the updates.
- linear: Σ wᵢ Δᵢ (default wᵢ = 1/n).
- TIES (Yadav et al. 2023): keep each wᵢΔᵢ's `density` share of entries of largest magnitude, elect
  each entry's sign as the sign of their sum, and average the kept entries that agree with it.
- DARE (Yu et al. 2024): drop each entry with probability 1 − density and rescale the rest by
  1/density (seeded), then linear (dare_linear) or TIES's sign election and disjoint mean
  (dare_ties).
The merged Δ is factored back to rank `rank` by a truncated SVD (default the largest input rank)
and written as a PEFT adapter with alpha = rank (scale 1); the relative Frobenius error of that
truncation is reported per module, so what the adapter format lost is visible.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch

METHODS = ("linear", "ties", "dare_linear", "dare_ties")


class MergeError(ValueError):
    """Adapters that cannot be merged (other bases, other shapes, unsupported parts)."""


@dataclass(frozen=True, kw_only=True)
class MergeSpec:
    method: Literal["linear", "ties", "dare_linear", "dare_ties"] = "ties"
    weights: list[float] | None = None
    """Per adapter; default 1/n for linear and dare_linear, 1 for TIES (its disjoint mean averages)."""
    density: float = 0.2
    """TIES: share of entries kept by magnitude; DARE: share of entries kept at random."""
    rank: int | None = None
    """Rank of the merged adapter; default the largest input rank."""
    seed: int = 42

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise MergeError(f"merge method {self.method!r}: expected one of {list(METHODS)}")
        if not 0 < self.density <= 1:
            raise MergeError(f"density {self.density}: must lie in (0, 1]")
        if self.rank is not None and self.rank < 1:
            raise MergeError(f"rank {self.rank}: at least 1")


@dataclass
class Adapter:
    """A PEFT LoRA adapter folder read into memory: module name → (A [r, in], B [out, r]) and scale."""
    path: str
    config: dict
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]]
    scale: float

    @property
    def rank(self) -> int:
        return int(self.config["r"])

    def weight_shape(self, module: str) -> tuple[int, int]:
        """[out, in] of the weight the module's update adds to."""
        a, b = self.factors[module]
        return b.shape[0], a.shape[1]

    def delta(self, module: str) -> torch.Tensor:
        a, b = self.factors[module]
        return self.scale * (b.double() @ a.double())


def read_adapter(folder: str | Path) -> Adapter:
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path, weights = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise MergeError(f"{folder}: not a PEFT adapter folder (needs adapter_config.json and "
                         f"adapter_model.safetensors)")
    config = json.loads(cfg_path.read_text())
    if config.get("peft_type", "LORA") != "LORA":
        raise MergeError(f"{folder}: a {config.get('peft_type')} adapter; only LoRA adapters merge")
    if config.get("modules_to_save"):
        raise MergeError(f"{folder}: trains whole modules too ({config['modules_to_save']}); merging covers LoRA "
                         "updates only")
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise MergeError(f"{folder}: per-module ranks or alphas (rank_pattern/alpha_pattern) are not supported")
    scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    tensors = load_file(str(weights))
    factors: dict[str, list] = {}
    for key, t in tensors.items():
        for part, slot in ((".lora_A.weight", 0), (".lora_B.weight", 1)):
            if key.endswith(part):
                factors.setdefault(key[: -len(part)], [None, None])[slot] = t
    incomplete = [m for m, (a, b) in factors.items() if a is None or b is None]
    if incomplete or not factors:
        raise MergeError(f"{folder}: no complete lora_A/lora_B pairs" + (f" (lacking one: {incomplete[:3]})"
                                                                         if incomplete else ""))
    return Adapter(str(folder), config, {m: (a, b) for m, (a, b) in factors.items()}, scale)


def check_compatible(adapters: list[Adapter]) -> None:
    """Same base model, same adapted modules with the same shapes; else a MergeError naming the difference."""
    if len(adapters) < 2:
        raise MergeError(f"merging needs at least two adapters, got {len(adapters)}")
    first = adapters[0]
    base = first.config.get("base_model_name_or_path")
    for other in adapters[1:]:
        if other.config.get("base_model_name_or_path") != base:
            raise MergeError(f"{other.path} was trained on base {other.config.get('base_model_name_or_path')!r}, "
                             f"{first.path} on {base!r}: adapters of different bases do not merge")
        if set(other.factors) != set(first.factors):
            diff = sorted(set(other.factors) ^ set(first.factors))
            raise MergeError(f"{other.path} and {first.path} adapt different modules (e.g. {diff[:3]}); train them "
                             "with the same target_modules")
        for m in first.factors:
            mine, theirs = first.weight_shape(m), other.weight_shape(m)
            if mine != theirs:
                raise MergeError(f"{other.path}: module {m} updates a {list(theirs)} weight, {first.path} a "
                                 f"{list(mine)} one: not the same base")


def _trim(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the `density` share of entries of largest magnitude."""
    if density >= 1:
        return delta
    k = max(1, int(round(density * delta.numel())))
    threshold = delta.abs().flatten().kthvalue(delta.numel() - k + 1).values
    return torch.where(delta.abs() >= threshold, delta, torch.zeros_like(delta))


def _drop(delta: torch.Tensor, density: float, generator: torch.Generator) -> torch.Tensor:
    """DARE: keep each entry with probability `density`, rescaled by 1/density."""
    if density >= 1:
        return delta
    keep = torch.rand(delta.shape, generator=generator, dtype=torch.float64) < density
    return torch.where(keep, delta / density, torch.zeros_like(delta))


def _disjoint_mean(deltas: list[torch.Tensor]) -> torch.Tensor:
    """TIES's sign election and mean of the entries that agree with the elected sign."""
    stacked = torch.stack(deltas)
    sign = torch.sign(stacked.sum(0))
    agree = (torch.sign(stacked) == sign) & (stacked != 0)
    count = agree.sum(0)
    total = torch.where(agree, stacked, torch.zeros_like(stacked)).sum(0)
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


def merge_deltas(deltas: list[torch.Tensor], spec: MergeSpec, generator: torch.Generator) -> torch.Tensor:
    """One module's merged update from the adapters' updates (pure)."""
    n = len(deltas)
    linear_like = spec.method in ("linear", "dare_linear")
    weights = spec.weights or [1.0 / n if linear_like else 1.0] * n
    if len(weights) != n:
        raise MergeError(f"{len(weights)} weights for {n} adapters")
    weighted = [w * d for w, d in zip(weights, deltas, strict=True)]
    if spec.method == "linear":
        return torch.stack(weighted).sum(0)
    if spec.method == "ties":
        return _disjoint_mean([_trim(d, spec.density) for d in weighted])
    dropped = [_drop(d, spec.density, generator) for d in weighted]
    return torch.stack(dropped).sum(0) if spec.method == "dare_linear" else _disjoint_mean(dropped)


def factor(delta: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(A [rank, in], B [out, rank], relative Frobenius error) with B·A the best rank-`rank` fit of delta."""
    u, s, vh = torch.linalg.svd(delta, full_matrices=False)
    r = min(rank, s.numel())
    root = s[:r].sqrt()
    b, a = u[:, :r] * root, root[:, None] * vh[:r]
    if r < rank:  # a module narrower than the rank: pad with zero directions
        a = torch.cat([a, a.new_zeros(rank - r, a.shape[1])])
        b = torch.cat([b, b.new_zeros(b.shape[0], rank - r)], dim=1)
    norm = float(delta.norm())
    error = float((delta - b @ a).norm()) / norm if norm > 0 else 0.0
    return a, b, error


@dataclass
class MergeResult:
    folder: str
    method: str
    adapters: list[str]
    rank: int
    modules: int
    max_truncation_error: float
    mean_truncation_error: float
    spec: dict

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def merge_adapters(folders: list[str | Path], out: str | Path, spec: MergeSpec) -> MergeResult:
    """Read the adapters, merge every module's update, write <out> as a PEFT adapter plus merge.json."""
    from safetensors.torch import save_file

    from pipelines.llm.models import atomic_folder

    if Path(out).exists():
        raise MergeError(f"{out} exists: a merged adapter is written once; choose another folder or remove it")
    adapters = [read_adapter(f) for f in folders]
    check_compatible(adapters)
    rank = spec.rank or max(a.rank for a in adapters)
    generator = torch.Generator().manual_seed(spec.seed)
    dtype = next(iter(adapters[0].factors.values()))[0].dtype
    tensors, errors = {}, {}
    for module in sorted(adapters[0].factors):
        merged = merge_deltas([a.delta(module) for a in adapters], spec, generator)
        a, b, errors[module] = factor(merged, rank)
        tensors[f"{module}.lora_A.weight"] = a.to(dtype).contiguous()
        tensors[f"{module}.lora_B.weight"] = b.to(dtype).contiguous()
    config = {**adapters[0].config, "r": rank, "lora_alpha": rank, "use_rslora": False, "lora_dropout": 0.0,
              "target_modules": sorted({m for a in adapters for m in _as_list(a.config.get("target_modules"))})}
    result = MergeResult(folder=str(out), method=spec.method, adapters=[a.path for a in adapters], rank=rank,
                         modules=len(errors), max_truncation_error=max(errors.values()),
                         mean_truncation_error=sum(errors.values()) / len(errors), spec=asdict(spec))
    with atomic_folder(Path(out)) as tmp:
        save_file(tensors, str(tmp / "adapter_model.safetensors"))
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        (tmp / "merge.json").write_text(result.to_json())
        (tmp / "truncation_errors.json").write_text(json.dumps(errors, indent=2, sort_keys=True))
    return result


def _as_list(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
