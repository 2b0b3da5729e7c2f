"""Training tokens/s on the CPU: the telelake DeepSpeed trainer against the Hugging Face Trainer.

    .venv/bin/python benchmarks/train_throughput.py --steps 10 --model mid
    .venv/bin/python benchmarks/train_throughput.py --steps 4 --model embedded --lora   # LoRA vs full, adapter MB per rank
    .venv/bin/python benchmarks/train_throughput.py --steps 4 --model embedded --bf16   # CPU bf16 autocast vs fp32

Same model (a random Llama of the --model size with the embedded SmolLM2 tokenizer, or
`--model embedded` for SmolLM2-135M itself), same packed shards (a release of TeleQnA text, seq_len
512), the same sequences in the same order, optimizer and schedule (benchmarks/trainer_runs.py: fp32,
fused AdamW lr 1e-4, weight decay 0.1, clip 1.0, warm-up + cosine, micro-batch 4, 2 accumulation
steps, position ids and no attention mask): ours with the recipes' defaults (ZeRO `auto`: stage 0 in
one process, the fused chunked head), ours under ZeRO stage 2, ours with the model's own head, and
`transformers.Trainer` (use_cpu, no DeepSpeed). Each run is a fresh process, so the HF Trainer finds
no process group left by DeepSpeed (it would wrap the model in DDP). The first two optimizer steps of
each are warm-up and not timed; the runs alternate, the better of two counts. Prints tokens/s
(document tokens), the ratios and the two trainers' losses after the last step (the same batches: a
correctness check beside the speed).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SIZES = {  # hidden, layers, heads, kv heads, intermediate
    "mid": (384, 6, 6, 2, 1024),
    "small": (128, 2, 4, 2, 256),
    "1b": (2048, 22, 32, 4, 5632),   # TinyLlama-1.1B's shape, the GPU check's (benchmarks/gpu/)
}
SEQ, MICRO, ACCUM, WARM = 512, 4, 2, 2
"""Sequence length, micro-batch, accumulation steps, untimed warm-up steps (the schedule's warm-up too)."""


def llama_config(shape: tuple[int, int, int, int, int]):
    """A Llama of `shape` (hidden, layers, heads, kv heads, intermediate) over SmolLM2's vocabulary, tied head."""
    from transformers import LlamaConfig

    h, layers, heads, kv, inter = shape
    return LlamaConfig(vocab_size=49152, hidden_size=h, num_hidden_layers=layers, num_attention_heads=heads,
                       num_key_value_heads=kv, intermediate_size=inter, max_position_embeddings=4096,
                       tie_word_embeddings=True, eos_token_id=2, bos_token_id=1, pad_token_id=2)


def make_model(size: str, folder: Path) -> str:
    from pipelines.llm.models import ModelSpec, resolve

    if size == "embedded":
        return resolve(ModelSpec()).path
    import torch
    from transformers import LlamaForCausalLM

    from training.export import copy_tokenizer

    torch.manual_seed(0)
    LlamaForCausalLM(llama_config(SIZES[size])).save_pretrained(folder)
    copy_tokenizer(resolve(ModelSpec()).path, folder)
    return str(folder)


RUNS = {"ours": ("auto", True), "ours-zero2": ("zero2.yaml", True), "ours-model-head": ("auto", False), "hf": None}
LORA_RUNS = {"full-zero0": ("zero0.yaml", True, None), "lora-r16-zero0": ("zero0.yaml", True, 16)}
"""--lora: full fine-tuning against paper 001's adapter (r 16, alpha 32, the seven projections)."""
BF16_RUNS = {"lora-r16-fp32": (16, "fp32"), "lora-r16-bf16": (16, "bf16"), "full-fp32": (None, "fp32"),
             "full-bf16": (None, "bf16")}
"""--bf16: train.precision=bf16 on the CPU (bf16 autocast) against fp32, for LoRA and full fine-tuning."""


def one_run(name: str, model: str, shards: Path, out: Path, steps: int) -> dict:
    from trainer_runs import RunSettings, hf, ours

    s = RunSettings(steps=steps, micro=MICRO, accum=ACCUM, warmup=WARM)
    if name in BF16_RUNS:
        r, precision = BF16_RUNS[name]
        return ours(model, shards, out, replace(s, precision=precision), zero="zero0.yaml", lora_r=r).to_dict()
    if name in LORA_RUNS:
        zero, fused, r = LORA_RUNS[name]
        return ours(model, shards, out, s, zero=zero, fused_loss=fused, lora_r=r).to_dict()
    if RUNS[name] is None:
        return hf(model, shards, out, s).to_dict()
    zero, fused = RUNS[name]
    return ours(model, shards, out, s, zero=zero, fused_loss=fused).to_dict()


def adapter_sizes(model: str, ranks: list[int]) -> list[dict]:
    """File size of a saved PEFT adapter (safetensors, fp32) and its parameters per rank, on `model`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from training.config import LoraSpec

    targets = LoraSpec().target_modules
    out = []
    for r in ranks:
        m = get_peft_model(AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32),
                           LoraConfig(r=r, lora_alpha=2 * r, target_modules=list(targets), task_type="CAUSAL_LM"))
        with tempfile.TemporaryDirectory() as d:
            m.save_pretrained(d, safe_serialization=True)
            size = (Path(d) / "adapter_model.safetensors").stat().st_size
        params = sum(p.numel() for p in m.parameters() if p.requires_grad)
        total = sum(p.numel() for p in m.parameters())
        out.append({"rank": r, "bytes": size, "mb": size / 1e6, "params": params, "share": params / (total - params)})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--model", default="mid", choices=[*SIZES, "embedded"])
    p.add_argument("--mb", type=float, default=3)
    p.add_argument("--lora", action="store_true", help="LoRA (r 16) against full fine-tuning, and adapter size per rank")
    p.add_argument("--bf16", action="store_true", help="CPU bf16 autocast against fp32 (LoRA r 16 and full)")
    p.add_argument("--one", nargs=4, metavar=("RUN", "MODEL", "SHARDS", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:  # a child process: one trainer in a fresh interpreter (no process group left by another)
        name, model, shards, out = args.one
        print(json.dumps(one_run(name, model, Path(shards), Path(out), args.steps)))
        return
    from shards import corpus, release

    from pipelines import lake
    from pipelines.spark import SparkConfig, build_session
    from pipelines.tokenize.stage import ShardSpec, build_shards

    work = Path(tempfile.mkdtemp(prefix="telelake-bench-train-"))
    try:
        spark = build_session(SparkConfig(log_level="ERROR", conf={"spark.ui.showConsoleProgress": "false"}), "bench-train")
        cfg = lake.LakeConfig(root=str(work / "lake"))
        release(spark, cfg, corpus(args.mb))
        model = make_model(args.model, work / "model")
        shards = build_shards(spark, cfg, "bench", model, ShardSpec(blend={"gold.tele_data": None}, seq_len=SEQ)).folder
        spark.stop()
        if args.lora:
            return _lora(args, model, shards, work)
        if args.bf16:
            return _bf16(args, model, shards, work)
        runs = _alternated(args, RUNS, model, shards, work)
        r = {name: f["tokens_per_s"] for name, f in runs.items()}
        hf = r["hf"]
        ours_loss, hf_loss = runs["ours"]["losses"][-1], runs["hf"]["losses"][-1]
        print(f"model {args.model}; against the HF Trainer: ours (default recipe) {r['ours'] / hf:.2f}x, "
              f"ZeRO-2 {r['ours-zero2'] / hf:.2f}x, with the model's own head {r['ours-model-head'] / hf:.2f}x "
              f"(goal >= 1.1x); loss after step {args.steps}: ours {ours_loss:.4f}, HF {hf_loss:.4f} "
              f"({100 * (ours_loss - hf_loss) / hf_loss:+.3f}%); peak RSS ours {runs['ours']['peak_memory_gb']:.2f} GB, "
              f"HF {runs['hf']['peak_memory_gb']:.2f} GB")
        print(json.dumps({"model": args.model, "steps": args.steps, **r,
                          "loss": {"ours": ours_loss, "hf": hf_loss},
                          "peak_memory_gb": {n: f["peak_memory_gb"] for n, f in runs.items()}}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _alternated(args, names, model: str, shards: Path, work: Path) -> dict[str, dict]:
    """The figures of each named run (benchmarks/trainer_runs.py): alternated, each in a fresh process, the
    better of two by tokens/s."""
    results: dict[str, dict] = {}
    for n, name in enumerate([*names, *names]):
        child = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--one", name, model, str(shards),
                                str(work / f"alt{n}")], capture_output=True, text=True, check=False)
        if child.returncode != 0:
            raise SystemExit(f"{name} failed:\n{child.stderr[-3000:]}")
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{name:18s} {figures['tokens_per_s']:,.0f} tokens/s", flush=True)
        if figures["tokens_per_s"] > results.get(name, {}).get("tokens_per_s", 0.0):
            results[name] = figures
    return results


def _bf16(args, model: str, shards: Path, work: Path) -> None:
    r = {n: f["tokens_per_s"] for n, f in _alternated(args, BF16_RUNS, model, shards, work).items()}
    print(f"model {args.model}: bf16 autocast / fp32 tokens/s = LoRA r16 {r['lora-r16-bf16'] / r['lora-r16-fp32']:.2f}x, "
          f"full {r['full-bf16'] / r['full-fp32']:.2f}x")
    print(json.dumps({"model": args.model, "steps": args.steps, **r}))


def _lora(args, model: str, shards: Path, work: Path) -> None:
    results = {n: f["tokens_per_s"] for n, f in _alternated(args, LORA_RUNS, model, shards, work).items()}
    print(f"model {args.model}: LoRA r16 / full fine-tuning = {results['lora-r16-zero0'] / results['full-zero0']:.2f}x "
          f"tokens/s")
    sizes = adapter_sizes(model, [4, 8, 16, 32, 64])
    for row in sizes:
        print(f"rank {row['rank']:3d}: adapter {row['mb']:.2f} MB, {row['params']:,} parameters "
              f"({100 * row['share']:.2f}% of the backbone)")
    print(json.dumps({"model": args.model, "steps": args.steps, **results, "sizes": sizes}))


if __name__ == "__main__":
    main()
