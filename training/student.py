"""A smaller student made from a model by keeping some of its decoder layers, for distillation.

    telelake train student --model embedded:smollm2-135m-instruct --layers 10 --out models/smollm2-10l

Paper 002 distils a large teacher into a smaller student. Where no smaller model of the same family
is on the machine, the project makes one the way DistilBERT initialises its student: keep `layers`
of the source's decoder layers, evenly spaced over the depth (always the first and the last), and
keep the embeddings, final norm and head as they are. The student then shares the teacher's tokenizer
(vanilla KD applies) and starts from the teacher's weights instead of random ones.

The output is a Hugging Face folder (safetensors, config with the new `num_hidden_layers`, tokenizer
and chat template) plus `student.json`: the source and its fingerprint, the kept layer indices and
the parameter counts. It is written to a temporary folder and renamed, and an existing folder is
refused.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from pipelines.llm.models import ModelSpec, resolve

MANIFEST = "student.json"


class StudentError(ValueError):
    """The layers asked for do not fit the source model, or the output folder exists."""


@dataclass(frozen=True)
class Student:
    folder: str
    source: str
    source_revision: str
    kept_layers: list[int]
    source_layers: int
    parameters: int
    source_parameters: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def spread(total: int, keep: int) -> list[int]:
    """`keep` layer indices out of `total`, evenly spaced, the first and the last included."""
    if not 1 <= keep <= total:
        raise StudentError(f"cannot keep {keep} of {total} decoder layers: give 1 to {total}")
    if keep == 1:
        return [0]
    return [round(i * (total - 1) / (keep - 1)) for i in range(keep)]


def parse_layers(value: str, total: int) -> list[int]:
    """'10' (how many, evenly spaced) or '0,3,7,29' (which, 0-based)."""
    try:
        idx = [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise StudentError(f"--layers {value!r}: give a count (10) or 0-based indices (0,3,7,29)") from None
    if not idx:
        raise StudentError("--layers is empty: give a count (10) or 0-based indices (0,3,7,29)")
    if "," not in value:
        return spread(total, idx[0])
    if sorted(set(idx)) != idx or idx[0] < 0 or idx[-1] >= total:
        raise StudentError(f"--layers {value!r}: indices must be increasing, distinct and in 0..{total - 1}")
    return idx


def decoder_layers(model):
    """The ModuleList of decoder layers (Llama, Mistral, Qwen, Gemma, Phi-3, OLMo: model.model.layers)."""
    import torch

    n = model.config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n and name.endswith("layers"):
            return name, module
    raise StudentError(f"{type(model).__name__} has no ModuleList of {n} decoder layers to drop from")


def make_student(source: str, layers: str | int, out: str | Path) -> Student:
    """Write the student of `source` (a local folder or embedded:<name>) keeping `layers` to `out`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from pipelines.llm.models import atomic_folder
    from training.export import copy_tokenizer

    out = Path(out)
    if out.exists():
        raise StudentError(f"{out} exists; give a new --out folder (a student is written once)")
    src = resolve(ModelSpec(path=source))
    total = AutoConfig.from_pretrained(src.path).num_hidden_layers
    kept = parse_layers(str(layers), total)  # refused before the weights are read
    model = AutoModelForCausalLM.from_pretrained(src.path, dtype=torch.float32)
    source_params = sum(p.numel() for p in model.parameters())
    name, module_list = decoder_layers(model)
    # saved, then reloaded: each attention's layer_idx is renumbered by the constructor
    model.set_submodule(name, torch.nn.ModuleList(module_list[i] for i in kept))
    model.config.num_hidden_layers = len(kept)
    if isinstance(getattr(model.config, "layer_types", None), list):  # per-layer attention kinds (sliding/full)
        model.config.layer_types = [model.config.layer_types[i] for i in kept]
    student = Student(folder=str(out), source=source, source_revision=src.revision, kept_layers=kept,
                      source_layers=total, parameters=sum(p.numel() for p in model.parameters()),
                      source_parameters=source_params)
    with atomic_folder(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        copy_tokenizer(src.path, tmp)
        (tmp / MANIFEST).write_text(student.to_json())
    return student
