"""HF-format checkpoints: safetensors weights, config and tokenizer, loadable by `from_pretrained`.

Full fine-tuning writes the whole model (under ZeRO-3 the partitioned weights are gathered first);
a LoRA run writes the adapter (adapter_model.safetensors + adapter_config.json, loadable with
peft's `PeftModel.from_pretrained` on the base model) and, at the end, the merged model in `merged/`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from pipelines.tokenize.encode import TOKENIZER_FILES as _TOKEN_ID_FILES
from training.dskd import PROJECTOR

TOKENIZER_FILES = (*_TOKEN_ID_FILES, "tokenizer.model", "generation_config.json")
"""Copied beside each checkpoint's weights: the tokenizer's files and the generation defaults."""


def save_hf(engine, model, base_dir: str, out: Path, *, rank: int, zero_stage: int, merge: bool = False) -> Path:
    """Write the HF folder of the current weights to `out` (rank 0 writes; every rank joins a gather).
    `merge` (LoRA, the final checkpoint): also the merged model in `out/merged`."""
    state = engine._zero3_consolidated_16bit_state_dict() if zero_stage == 3 else None
    if rank != 0:
        return out
    out.mkdir(parents=True, exist_ok=True)
    is_peft = hasattr(model, "peft_config")
    module = engine.module
    if is_peft:
        module.save_pretrained(out, safe_serialization=True)
        if merge:
            _merged_copy(module).save_pretrained(out / "merged", safe_serialization=True)
            copy_tokenizer(base_dir, out / "merged")
    else:
        if hasattr(module, PROJECTOR):  # DSKD's projector trains with the student but is not part of it
            state = {k: v for k, v in (state or module.state_dict()).items() if not k.startswith(PROJECTOR + ".")}
        module.save_pretrained(out, state_dict=state, safe_serialization=True)
    copy_tokenizer(base_dir, out)
    return out


def _merged_copy(peft_model):
    """The base model with the adapter folded in, leaving the training model untouched."""
    import copy

    merged = copy.deepcopy(peft_model).merge_and_unload()
    if hasattr(merged, PROJECTOR):
        delattr(merged, PROJECTOR)
    return merged


def copy_tokenizer(base_dir: str, out: Path) -> None:
    for name in TOKENIZER_FILES:
        src = Path(base_dir) / name
        if src.is_file():
            shutil.copy2(src, out / name)
