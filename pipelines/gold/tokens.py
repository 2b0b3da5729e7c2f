"""Token counts under a configured tokenizer (paper Table I counts with the Llama-3 tokenizer).

`tokenizer` is a tokenizer.json file, a model folder holding one, or embedded:<model> (the embedded
SmolLM2 by default). The driver resolves it to a file path; Spark tasks load the file once per process
with the Rust `tokenizers` library and count in batches.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

DEFAULT_TOKENIZER = "embedded:smollm2-135m-instruct"


class TokenizerError(ValueError):
    """The configured tokenizer cannot be found."""


def resolve_tokenizer(spec: str) -> str:
    """Path of the tokenizer.json for `spec` (checked on the driver, before any task starts)."""
    if spec.startswith("embedded:"):
        from pipelines.llm.models import ModelSpec, resolve

        return str(Path(resolve(ModelSpec(path=spec), chat=False).path) / "tokenizer.json")
    path = Path(spec)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise TokenizerError(f"tokenizer {spec!r}: no tokenizer.json at {path}; set assemble.tokenizer to a "
                             f"tokenizer.json, a model folder holding one, or {DEFAULT_TOKENIZER}")
    return str(path)


@functools.lru_cache(maxsize=4)
def _load(path: str):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(path)
    tok.no_truncation()  # count whole documents, whatever the file's training-time settings
    tok.no_padding()
    return tok


def count_tokens(path: str, texts: list[str]) -> np.ndarray:
    """Tokens of each text (no special tokens added)."""
    if not texts:
        return np.zeros(0, np.int64)
    tok = _load(path)
    return np.fromiter((len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)),
                       dtype=np.int64, count=len(texts))
