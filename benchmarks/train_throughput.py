"""Training tokens/s on the CPU: the telelake DeepSpeed trainer against the Hugging Face Trainer.

    .venv/bin/python benchmarks/train_throughput.py --steps 8 --model mid
    .venv/bin/python benchmarks/train_throughput.py --steps 4 --model embedded --lora   # LoRA vs full, adapter MB per rank
    .venv/bin/python benchmarks/train_throughput.py --steps 4 --model embedded --bf16   # CPU bf16 autocast vs fp32

Same model (a random Llama of the --model size with the embedded SmolLM2 tokenizer, or
`--model embedded` for SmolLM2-135M itself), same packed shards (a release of TeleQnA text, seq_len
512), same settings (fp32, AdamW lr 1e-4, weight decay 0.1, clip 1.0, warm-up + cosine, micro-batch 4,
2 accumulation steps, position ids and no attention mask): ours with ZeRO stage 0, with stage 0 and
the model's own head (fused_loss off), with the recipes' default stage 2, and `transformers.Trainer`
(use_cpu, no DeepSpeed). Each run is a fresh process, so the HF Trainer finds no process group left by
DeepSpeed (it would wrap the model in DDP). The first two optimizer steps of each are warm-up and not
timed; the runs alternate, the better of two counts. Prints tokens/s (document tokens) and the ratios.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SIZES = {  # hidden, layers, heads, kv heads, intermediate
    "mid": (384, 6, 6, 2, 1024),
    "small": (128, 2, 4, 2, 256),
    "1b": (2048, 22, 32, 4, 5632),   # TinyLlama-1.1B's shape: the GPU MFU check (--gpu-only)
}
SEQ, MICRO, ACCUM, WARM = 512, 4, 2, 2


def make_model(size: str, folder: Path) -> str:
    from pipelines.llm.models import ModelSpec, resolve

    if size == "embedded":
        return resolve(ModelSpec()).path
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.export import copy_tokenizer

    h, layers, heads, kv, inter = SIZES[size]
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=49152, hidden_size=h, num_hidden_layers=layers, num_attention_heads=heads,
                                 num_key_value_heads=kv, intermediate_size=inter, max_position_embeddings=2048,
                                 tie_word_embeddings=True)).save_pretrained(folder)
    copy_tokenizer(resolve(ModelSpec()).path, folder)
    return str(folder)


def ours(model: str, shards: Path, out: Path, steps: int, zero: str, fused: bool = True, micro: int = MICRO,
         report: dict | None = None, lora_r: int | None = None, precision: str = "auto") -> float:
    from training.config import BatchSpec, LoraSpec, OptimSpec, TrainSpec
    from training.trainer import Trainer

    lora = LoraSpec(r=lora_r, alpha=2 * lora_r, dropout=0.05) if lora_r else None  # paper 001: r 16, alpha 32
    spec = TrainSpec(batch=BatchSpec(tokens_per_step=SEQ * micro * ACCUM, micro_batch=micro), optim=OptimSpec(lr=1e-4),
                     epochs=1, max_steps=steps, eval_every_steps=10**9, save_every_steps=10**9, zero=zero,
                     log_every_steps=10**9, fused_loss=fused, lora=lora, precision=precision)
    out.mkdir()
    t = Trainer(spec, model, shards, out)
    t.save = lambda final=False: None  # time the steps, not the checkpoint writes
    t.train()
    timed = t.state.history[WARM:]
    if report is not None:
        report["mfu"] = max((r["mfu"] or 0) for r in timed)
        report["peak"] = t.peak_source
    return sum(r["tokens"] for r in timed) / sum(r["step_s"] for r in timed)


def hf_trainer(model: str, shards: Path, out: Path, steps: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    from training.data import GlobalOrder, PackedShards

    data = PackedShards(shards, "train")
    order = GlobalOrder(len(data), 1234)

    class Packed(torch.utils.data.Dataset):
        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            return {k: torch.from_numpy(v) for k, v in data.sample(order[i]).items()}

    marks: list[tuple[float, int]] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append((time.perf_counter(), state.global_step))

    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=MICRO, gradient_accumulation_steps=ACCUM,
                             learning_rate=1e-4, weight_decay=0.1, max_grad_norm=1.0, lr_scheduler_type="cosine",
                             warmup_steps=1, max_steps=steps, use_cpu=True, report_to=[], save_strategy="no",
                             logging_steps=10**6, disable_tqdm=True, dataloader_num_workers=0, seed=1234,
                             optim="adamw_torch")
    m = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32, attn_implementation="sdpa")
    m.config.use_cache = False
    Trainer(model=m, args=args, train_dataset=Packed(), callbacks=[Clock()]).train()
    # document tokens per step: the shards' mean per sequence (HF's sampler order is its own)
    split = data.manifest["splits"]["train"]
    per_step = split["tokens"] / split["sequences"] * MICRO * ACCUM
    (t0, _), (t1, _) = marks[WARM - 1], marks[-1]
    return per_step * (len(marks) - WARM) / (t1 - t0)


RUNS = {"ours-zero0": ("zero0.yaml", True), "ours-zero0-model-head": ("zero0.yaml", False),
        "ours-zero2": ("zero2.yaml", True), "hf": None}
LORA_RUNS = {"full-zero0": ("zero0.yaml", True, None), "lora-r16-zero0": ("zero0.yaml", True, 16)}
"""--lora: full fine-tuning against paper 001's adapter (r 16, alpha 32, the seven projections)."""
BF16_RUNS = {"lora-r16-fp32": (16, "fp32"), "lora-r16-bf16": (16, "bf16"), "full-fp32": (None, "fp32"),
             "full-bf16": (None, "bf16")}
"""--bf16: train.precision=bf16 on the CPU (bf16 autocast) against fp32, for LoRA and full fine-tuning."""


def one_run(name: str, model: str, shards: Path, out: Path, steps: int) -> float:
    if name in BF16_RUNS:
        r, precision = BF16_RUNS[name]
        return ours(model, shards, out, steps, "zero0.yaml", lora_r=r, precision=precision)
    if name in LORA_RUNS:
        zero, fused, r = LORA_RUNS[name]
        return ours(model, shards, out, steps, zero, fused=fused, lora_r=r)
    if RUNS[name] is None:
        return hf_trainer(model, shards, out, steps)
    zero, fused = RUNS[name]
    return ours(model, shards, out, steps, zero, fused=fused)


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
    p.add_argument("--gpu-only", action="store_true", help="only our trainer (bf16 on the GPU), print its MFU")
    p.add_argument("--micro", type=int, default=MICRO)
    p.add_argument("--lora", action="store_true", help="LoRA (r 16) against full fine-tuning, and adapter size per rank")
    p.add_argument("--bf16", action="store_true", help="CPU bf16 autocast against fp32 (LoRA r 16 and full)")
    p.add_argument("--one", nargs=4, metavar=("RUN", "MODEL", "SHARDS", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:  # a child process: one trainer in a fresh interpreter (no process group left by another)
        name, model, shards, out = args.one
        print(json.dumps({"rate": one_run(name, model, Path(shards), Path(out), args.steps)}))
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
        if args.gpu_only:
            report: dict = {}
            rate = ours(model, shards, work / "gpu", args.steps, "zero2.yaml", True, args.micro, report)
            print(f"ours on GPU, model {args.model}: {rate:,.0f} tokens/s, MFU {100 * report['mfu']:.1f}% ({report['peak']})")
            return
        if args.lora:
            return _lora(args, model, shards, work)
        if args.bf16:
            return _bf16(args, model, shards, work)
        results: dict[str, float] = {}
        for n, name in enumerate([*RUNS, *RUNS]):  # alternated, each in its own process; the better of two
            out = work / f"run{n}"
            child = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--one", name, model,
                                    str(shards), str(out)], capture_output=True, text=True, check=False)
            if child.returncode != 0:
                raise SystemExit(f"{name} failed:\n{child.stderr[-3000:]}")
            rate = json.loads(child.stdout.strip().splitlines()[-1])["rate"]
            print(f"{name:22s} {rate:,.0f} tokens/s", flush=True)
            results[name] = max(results.get(name, 0.0), rate)
        hf = results["hf"]
        print(f"model {args.model}; against the HF Trainer: ours ZeRO-0 {results['ours-zero0'] / hf:.2f}x, "
              f"ZeRO-2 {results['ours-zero2'] / hf:.2f}x, ZeRO-0 with the model's own head "
              f"{results['ours-zero0-model-head'] / hf:.2f}x (goal >= 1.0x)")
        print(json.dumps({"model": args.model, "steps": args.steps, **results}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _alternated(args, names, model: str, shards: Path, work: Path) -> dict[str, float]:
    """tokens/s of each named run: alternated, each in a fresh process, the better of two."""
    results: dict[str, float] = {}
    for n, name in enumerate([*names, *names]):
        child = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--one", name, model, str(shards),
                                str(work / f"alt{n}")], capture_output=True, text=True, check=False)
        if child.returncode != 0:
            raise SystemExit(f"{name} failed:\n{child.stderr[-3000:]}")
        rate = json.loads(child.stdout.strip().splitlines()[-1])["rate"]
        print(f"{name:16s} {rate:,.0f} tokens/s", flush=True)
        results[name] = max(results.get(name, 0.0), rate)
    return results


def _bf16(args, model: str, shards: Path, work: Path) -> None:
    r = _alternated(args, BF16_RUNS, model, shards, work)
    print(f"model {args.model}: bf16 autocast / fp32 tokens/s = LoRA r16 {r['lora-r16-bf16'] / r['lora-r16-fp32']:.2f}x, "
          f"full {r['full-bf16'] / r['full-fp32']:.2f}x")
    print(json.dumps({"model": args.model, "steps": args.steps, **r}))


def _lora(args, model: str, shards: Path, work: Path) -> None:
    results = _alternated(args, LORA_RUNS, model, shards, work)
    print(f"model {args.model}: LoRA r16 / full fine-tuning = {results['lora-r16-zero0'] / results['full-zero0']:.2f}x "
          f"tokens/s")
    sizes = adapter_sizes(model, [4, 8, 16, 32, 64])
    for row in sizes:
        print(f"rank {row['rank']:3d}: adapter {row['mb']:.2f} MB, {row['params']:,} parameters "
              f"({100 * row['share']:.2f}% of the backbone)")
    print(json.dumps({"model": args.model, "steps": args.steps, **results, "sizes": sizes}))


if __name__ == "__main__":
    main()
