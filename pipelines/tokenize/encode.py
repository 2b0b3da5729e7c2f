"""Text → token ids: documents for continual pretraining, conversations for instruction tuning.

Pure functions over a tokenizer folder (a local Hugging Face model or tokenizer folder). Documents
are encoded with the Rust `tokenizers` library in batches, without special tokens, and end with the
end-of-sequence token, so a packed sequence shows the model where one document stops. Conversations
are rendered with the folder's chat template; the prompt and the answer are encoded separately and
concatenated, so the answer-only loss mask is exact (no re-tokenization across the boundary).
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.llm.models import has_chat_template


class TokenizerFolderError(ValueError):
    """The tokenizer folder is missing a file the shards need."""


@dataclass(frozen=True)
class TokenizerInfo:
    folder: str
    sha256: str
    """Hash of tokenizer.json, tokenizer_config.json and the chat template: shards built with another
    tokenizer are never reused."""
    eos_id: int
    eos_token: str
    vocab_size: int

    def to_dict(self) -> dict:
        return {"folder": self.folder, "sha256": self.sha256, "eos_id": self.eos_id, "eos_token": self.eos_token,
                "vocab_size": self.vocab_size}


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "chat_template.json",
                   "special_tokens_map.json")
"""The files that decide token ids and rendered conversations (hashed into the tokenizer's identity)."""


def inspect_tokenizer(folder: str | Path, *, chat: bool = False) -> TokenizerInfo:
    """Check `folder` (tokenizer.json, an eos token; a chat template when `chat`) and describe it."""
    folder = Path(folder)
    if not (folder / "tokenizer.json").is_file():
        raise TokenizerFolderError(f"tokenizer folder {folder} has no tokenizer.json; pass --tokenizer a local "
                                   f"Hugging Face model or tokenizer folder (a fast tokenizer)")
    config = _tokenizer_config(folder)
    eos = config.get("eos_token")
    eos = eos.get("content") if isinstance(eos, dict) else eos
    if not eos:
        raise TokenizerFolderError(f"{folder}/tokenizer_config.json names no eos_token: packed documents need "
                                   f"one to end on; add \"eos_token\" to it")
    if chat and not has_chat_template(folder):
        raise TokenizerFolderError(f"tokenizer folder {folder} has no chat template (chat_template.jinja or "
                                   f"chat_template in tokenizer_config.json): instruction tuning renders "
                                   f"conversations with it; use an instruct model's folder")
    tok = _rust_tokenizer(str(folder))
    eos_id = tok.token_to_id(eos)
    if eos_id is None:
        raise TokenizerFolderError(f"eos_token {eos!r} of {folder} is not in its vocabulary")
    h = hashlib.sha256()
    for name in TOKENIZER_FILES:
        if (folder / name).is_file():
            h.update(name.encode() + b"\0" + (folder / name).read_bytes())
    return TokenizerInfo(folder=str(folder.resolve()), sha256=h.hexdigest(), eos_id=int(eos_id), eos_token=eos,
                         vocab_size=tok.get_vocab_size(with_added_tokens=True))


def _tokenizer_config(folder: Path) -> dict:
    path = folder / "tokenizer_config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


@functools.lru_cache(maxsize=4)
def _rust_tokenizer(folder: str):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


@functools.lru_cache(maxsize=4)
def _hf_tokenizer(folder: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def token_lists(folder: str, texts: list[str], engine: str = "tokenizers") -> list[list[int]]:
    """Token ids of each text, no special tokens added (added tokens in the text stay special).
    engine "tiktoken": the folder's BPE run by tiktoken (fast.py; the caller has checked it agrees)."""
    if engine == "tiktoken":
        from pipelines.tokenize import fast

        enc, why = fast.tiktoken_for(folder)
        if enc is None:
            raise TokenizerFolderError(f"engine tiktoken cannot run {folder}: {why}")
        return [fast.encode(enc, t) for t in texts]
    return [e.ids for e in _rust_tokenizer(folder).encode_batch(texts, add_special_tokens=False)]


def choose_engine(folder: str, samples: list[str]) -> tuple[str, str]:
    """("tiktoken", why) when tiktoken runs this folder's BPE and gives its exact ids on `samples`
    (plus built-in edge cases), else ("tokenizers", why)."""
    from pipelines.tokenize import fast

    enc, why = fast.tiktoken_for(folder)
    if enc is None:
        return "tokenizers", why
    edge = ["", " ", "  leading and trailing  ", "tabs\tand\nnew\n\nlines", "numbers 1234567 3.14 1e-5 0x1F",
            "ümlauts, 中文, emoji 📡 and ﬁ ligatures", "code: def f(x): return x**2  # comment", "it's they're we'll I'd",
            "<|im_start|>user\nhello<|im_end|>", "5G NR gNB–AMF N2 (NGAP) TS 38.413 §9.2"]
    problem = fast.agrees(enc, _rust_tokenizer(folder), edge + samples)
    if problem:
        return "tokenizers", f"tiktoken differs from tokenizer.json: {problem}"
    return "tiktoken", f"tiktoken gives the tokenizer's ids on {len(edge) + len(samples)} sample texts"


def encode_documents(folder: str, texts: list[str], eos_id: int, engine: str = "tokenizers") -> list[np.ndarray]:
    """Token ids (int32) of each text followed by `eos_id`; an empty text gives an empty array."""
    if not texts:
        return []
    out = []
    for text, ids in zip(texts, token_lists(folder, texts, engine), strict=True):
        out.append(np.array([*ids, eos_id] if text else ids, dtype=np.int32))
    return out


def conversation(instruction: str, input_: str | None, output: str) -> tuple[list[dict], str]:
    """The chat messages of an instruction example (user turn, then the answer) and the answer text."""
    prompt = instruction if not input_ else f"{instruction}\n\n{input_}"
    return [{"role": "user", "content": prompt}], output


def encode_conversations(folder: str, examples: list[tuple[list[dict], str]],
                         engine: str = "tokenizers") -> list[tuple[np.ndarray, np.ndarray]]:
    """(token ids, loss mask) per (prompt messages, answer): the prompt is the chat template rendered
    with the generation prompt; the target is the answer and the template's end of turn. The mask is 1
    exactly on the target tokens."""
    hf = _hf_tokenizer(folder)
    prompts, targets = [], []
    for messages, answer in examples:
        prompt = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        full = hf.apply_chat_template([*messages, {"role": "assistant", "content": answer}], tokenize=False)
        if not full.startswith(prompt):
            raise TokenizerFolderError(f"the chat template of {folder} does not render the prompt as a prefix of "
                                       f"the whole conversation; the answer-only mask cannot be placed")
        target = full[len(prompt):].rstrip("\n")  # the turn's end token is the last target; the newline after it is not
        prompts.append(prompt)
        targets.append(target)
    out = []
    for p, t in zip(token_lists(folder, prompts, engine), token_lists(folder, targets, engine), strict=True):
        ids = np.asarray(p + t, dtype=np.int32)
        mask = np.zeros(len(ids), np.uint8)
        mask[len(p):] = 1
        out.append((ids, mask))
    return out
