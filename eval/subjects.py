"""The models an evaluation compares: a model folder, a training checkpoint's `hf/` folder, the
embedded default, or a LoRA adapter on a base model.

An adapter is checked against its base before anything runs (every adapted module must exist in the
base with the adapter's shapes) and merged once into a folder of the model cache, so every backend
(transformers on CPU, vLLM on GPU) serves it like any other model; the merged folder is keyed by the
adapter's and the base's fingerprints, so a retrained adapter gets a new one.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pipelines.llm.models import (ModelError, ModelSpec, ResolvedModel, atomic_folder, default_cache_dir,
                                  fingerprint, resolve)

log = logging.getLogger(__name__)

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


@dataclass(frozen=True, kw_only=True)
class Subject:
    name: str
    """Row label in reports ("SmolLM2-135M", "SmolLM2-135M-Tele")."""
    path: str
    """A Hugging Face model folder (a checkpoint's hf/ or hf/merged folder), embedded:<name>, or a LoRA
    adapter folder (adapter_config.json + adapter_model.safetensors)."""
    base: str | None = None
    """Adapter only: the base model folder; default the adapter's base_model_name_or_path."""


def is_adapter(folder: Path) -> bool:
    return (folder / "adapter_config.json").is_file()


def resolve_subject(subject: Subject, *, cache_dir: str | None = None, chat: bool = False) -> ResolvedModel:
    """A checked local model folder for `subject` (adapters merged into the cache on first use).
    Raises ModelError saying what is missing or does not match."""
    if subject.path.startswith("embedded:") or not is_adapter(Path(subject.path)):
        model = resolve(ModelSpec(path=subject.path, cache_dir=cache_dir), chat=chat)
        return ResolvedModel(name=subject.name, path=model.path, revision=model.revision)
    adapter = Path(subject.path)
    missing = [f for f in ADAPTER_FILES if not (adapter / f).is_file()]
    if missing:
        raise ModelError(f"adapter folder {adapter} lacks {', '.join(missing)}; point the subject at the "
                         f"checkpoint's hf/ folder that `telelake train` wrote for a LoRA run")
    config = json.loads((adapter / "adapter_config.json").read_text())
    base_path = subject.base or config.get("base_model_name_or_path")
    if not base_path:
        raise ModelError(f"adapter {adapter}: adapter_config.json names no base_model_name_or_path; "
                         f"give the subject a base: <model folder>")
    base = resolve(ModelSpec(path=base_path, cache_dir=cache_dir), chat=chat)
    check_adapter(adapter, Path(base.path))
    cache = Path(cache_dir or default_cache_dir()) / "merged"
    revision = f"{fingerprint(adapter)}+{base.revision}"
    target = cache / f"{adapter.name}-{revision.replace('+', '-')}"
    if not (target / "config.json").is_file():
        _merge(adapter, Path(base.path), target)
    return ResolvedModel(name=subject.name, path=str(target), revision=revision)


def check_adapter(adapter: Path, base: Path) -> None:
    """Every LoRA matrix of the adapter must fit a module of the base: same module names, A's input
    size and B's output size those of the base's weight. An adapter trained on another base fails here."""
    from safetensors import safe_open

    base_shapes = _weight_shapes(base)
    problems = []
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as fh:
        for key in fh.keys():  # noqa: SIM118 - safe_open API
            if ".lora_A." not in key and ".lora_B." not in key:
                continue
            module = key.split(".lora_")[0].removeprefix("base_model.model.")
            weight = f"{module}.weight"
            shape = tuple(fh.get_slice(key).get_shape())
            if weight not in base_shapes:
                problems.append(f"{module}: not a module of the base")
                continue
            out_f, in_f = base_shapes[weight][:2]
            if (".lora_A." in key and shape[1] != in_f) or (".lora_B." in key and shape[0] != out_f):
                problems.append(f"{module}: adapter {key.split('.')[-2]} {list(shape)} against base weight "
                                f"{list(base_shapes[weight])}")
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise ModelError(f"adapter {adapter} does not fit base {base}: {shown}. It was trained on another "
                         f"base model: give the subject the base it was trained on (base: <folder>)")


def _weight_shapes(folder: Path) -> dict[str, tuple]:
    """Tensor name → shape of a safetensors model folder (one file or an index of shards), headers only."""
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    files = (sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file()
             else [p.name for p in sorted(folder.glob("*.safetensors"))])
    if not files:
        raise ModelError(f"base model {folder} has no .safetensors weights; an adapter is checked and merged "
                         f"against safetensors weights (re-save the base with save_pretrained)")
    shapes = {}
    for name in files:
        with safe_open(str(folder / name), "pt") as fh:
            shapes.update({k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()})  # noqa: SIM118 - safe_open API
    return shapes


def _merge(adapter: Path, base: Path, target: Path) -> None:
    """base + adapter → merged safetensors folder with the tokenizer, renamed into place (atomic)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from training.export import copy_tokenizer

    log.info("merging adapter %s into %s → %s (once)", adapter, base, target)
    with atomic_folder(target) as tmp:
        model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
        merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        merged.save_pretrained(tmp, safe_serialization=True)
        copy_tokenizer(str(base), tmp)
        copy_tokenizer(str(adapter), tmp)  # the adapter's own tokenizer files, when it has them, win
