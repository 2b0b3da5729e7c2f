"""The tiktoken engine: the embedded tokenizer's exact ids on real telecom text; folders it cannot run
fall back to the tokenizers library with the reason."""
import json
import shutil
from pathlib import Path

from pipelines.tokenize import encode, fast

TELEQNA = Path(__file__).resolve().parents[4] / "shared" / "data" / "benchmarks" / "teleqna" / "TeleQnA.txt"


def test_tiktoken_gives_the_tokenizers_ids_on_teleqna(tokenizer_dir):
    enc, why = fast.tiktoken_for(tokenizer_dir)
    assert enc is not None, why
    items = list(json.loads(TELEQNA.read_text()).values())[:2000]
    texts = [f"{v['question']}\n{v.get('explanation', '')}" for v in items]
    assert fast.agrees(enc, encode._rust_tokenizer(tokenizer_dir), texts) is None
    assert encode.choose_engine(tokenizer_dir, texts[:50])[0] == "tiktoken"
    docs = encode.encode_documents(tokenizer_dir, texts[:20], eos_id=2, engine="tiktoken")
    assert [d.tolist() for d in docs] == [d.tolist() for d in encode.encode_documents(tokenizer_dir, texts[:20], eos_id=2)]


def test_a_folder_tiktoken_cannot_run_falls_back_with_the_reason(tokenizer_dir, tmp_path):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path(tokenizer_dir) / name, tmp_path / name)
    spec = json.loads((tmp_path / "tokenizer.json").read_text())
    spec["normalizer"] = {"type": "Lowercase"}
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    engine, why = encode.choose_engine(str(tmp_path), ["Hello World"])
    assert engine == "tokenizers" and "normalizer" in why
    assert encode.encode_documents(str(tmp_path), ["Hello"], eos_id=2)[0].tolist()[-1] == 2
