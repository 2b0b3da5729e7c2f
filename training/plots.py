"""PNG plots of a run (loss, grad norm, lr) and of several runs side by side (LoRA vs full)."""
from __future__ import annotations

import json
from pathlib import Path


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_run_plots(metrics: Path, out: Path) -> list[Path]:
    """loss.png (train and validation), grad_norm.png, lr.png beside the run's metrics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics)
    if not rows:
        return []
    steps = [r["step"] for r in rows]
    written = []
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, [r["loss"] for r in rows], label="train", lw=1)
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation", ms=3)
    ax.set(xlabel="optimizer step", ylabel="cross-entropy (nats/token)", title="loss")
    ax.legend()
    ax.grid(alpha=0.3)
    written.append(_save(fig, out / "loss.png"))
    for key, label, name in (("grad_norm", "gradient norm (before clipping)", "grad_norm.png"),
                             ("lr", "learning rate", "lr.png")):
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.plot(steps, [r[key] for r in rows], lw=1)
        ax.set(xlabel="optimizer step", ylabel=label, title=label)
        ax.grid(alpha=0.3)
        written.append(_save(fig, out / name))
    return written


def compare_runs(runs: dict[str, Path], out: Path, *, key: str = "loss") -> Path:
    """One figure of `key` (loss or val_loss) per run against training tokens: e.g. LoRA vs full."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, run in runs.items():
        rows = [r for r in read_metrics(Path(run) / "metrics.jsonl") if key in r]
        tokens, total = [], 0
        for r in read_metrics(Path(run) / "metrics.jsonl"):
            total += r["tokens"]
            if key in r:
                tokens.append(total)
        ax.plot(tokens, [r[key] for r in rows], "-" if key == "loss" else "o-", label=label, lw=1, ms=3)
    ax.set(xlabel="training tokens", ylabel="cross-entropy (nats/token)", title=f"{key}: " + " vs ".join(runs))
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, out)


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
