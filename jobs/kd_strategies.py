"""The four SFT-before-distillation strategies of paper 002, trained and compared in one command.

    telelake train kd-strategies --release bench-v1 --set kd_strategies.student.path=models/smollm2-10l

Supervised fine-tuning (the `sft_recipe`, a LoRA recipe by default, merged after training) is applied
before distillation to neither model, the teacher only, the student only, or both; each strategy then
distils its teacher into its student with the `kd_recipe` (vanilla KD, or DSKD for different
vocabularies). Every student after KD, and the four models before it, answer the same seeded MCQ
items; the report gives Pass@1 and Maj@k per strategy with a paired bootstrap against "neither"
(95% interval, p-value) and a PNG. Runs are reused when they finished before (result.json), so a
rerun only trains and evaluates what is missing.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from jobs._common import Runtime, load_config
from jobs.adapters import AdapterEvalSpec
from pipelines.config import SHIPPED_CONF
from pipelines.llm.backend import BackendConfig
from pipelines.llm.models import ModelSpec

STRATEGIES = {"neither": (False, False), "teacher": (True, False), "student": (False, True), "both": (True, True)}
"""name → (SFT on the teacher first, SFT on the student first)."""


@dataclass(frozen=True, kw_only=True)
class KDStrategiesSection:
    teacher: ModelSpec = field(default_factory=ModelSpec)
    student: ModelSpec = field(default_factory=ModelSpec)
    category: str = "all"
    """The benchmark category whose instructions SFT and KD train on (all: every category)."""
    sft_recipe: str = "lora"
    kd_recipe: str = "kd"
    train_overrides: list[str] = field(default_factory=list)
    """KEY=VALUE applied to both recipes (e.g. train.step_budget=20 on a CPU)."""
    kd_overrides: list[str] = field(default_factory=list)
    """KEY=VALUE for the KD recipe only (e.g. train.kd.method=dskd)."""
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    out: str = "reports/kd_strategies"
    eval: AdapterEvalSpec = field(default_factory=lambda: AdapterEvalSpec(splits=["test"]))
    backend: BackendConfig = field(default_factory=BackendConfig)
    resamples: int = 1000


@dataclass(frozen=True, kw_only=True)
class KDStrategiesJobConfig(Runtime):
    kd_strategies: KDStrategiesSection = field(default_factory=KDStrategiesSection)


def _sft(cfg: KDStrategiesJobConfig, release: str, role: str, model: str, console: Console) -> str:
    """The merged model folder of `model` after SFT (trained once per role)."""
    from jobs import train

    k = cfg.kd_strategies
    rc = train.load_recipe(k.sft_recipe, [*k.train_overrides, f"train.model.path={model}",
                                          f"train.out={Path(k.out) / 'runs'}"], cfg)
    rc = train.for_category(rc, k.category)
    r = train.train_once(rc, release, f"sft-{role}", console)
    merged = Path(r["checkpoint"]) / "hf" / "merged"
    return str(merged if merged.is_dir() else Path(r["checkpoint"]) / "hf")


def _kd(cfg: KDStrategiesJobConfig, release: str, strategy: str, teacher: str, student: str, console: Console) -> dict:
    from jobs import train

    k = cfg.kd_strategies
    rc = train.load_recipe(k.kd_recipe, [*k.train_overrides, *k.kd_overrides, f"train.model.path={student}",
                                         f"train.kd.teacher.path={teacher}", f"train.out={Path(k.out) / 'runs'}"], cfg)
    return train.train_once(train.for_category(rc, k.category), release, f"kd-{strategy}", console)


@dataclass
class StrategyRow:
    strategy: str
    sft_teacher: bool
    sft_student: bool
    items: int
    pass_at_1: float
    maj_at_k: float | None
    diff_points: float | None
    """Pass@1 − that of "neither", in points (None for neither itself)."""
    diff_low: float | None
    diff_high: float | None
    p_value: float | None
    kd_final: float | None
    """The last logged KD loss per target token of the run."""


def run(cfg: KDStrategiesJobConfig, release: str, console: Console | None = None) -> Path:
    from eval import bootstrap
    from eval.adapters import read_items
    from eval.calls import LakeCalls
    from eval.mcq import evaluate
    from eval.subjects import Subject
    from pipelines.llm.models import resolve
    from pipelines.spark import build_session

    console = console or Console()
    k = cfg.kd_strategies
    unknown = sorted(set(k.strategies) - set(STRATEGIES))
    if unknown:
        raise SystemExit(f"telelake: kd_strategies.strategies names {unknown}; known: {list(STRATEGIES)}")
    teacher = resolve(k.teacher, chat=True).path
    student = resolve(k.student, chat=True).path
    need_t = any(STRATEGIES[s][0] for s in k.strategies)
    need_s = any(STRATEGIES[s][1] for s in k.strategies)
    sft_teacher = _sft(cfg, release, "teacher", teacher, console) if need_t else None
    sft_student = _sft(cfg, release, "student", student, console) if need_s else None
    runs = {}
    for s in k.strategies:
        t_sft, s_sft = STRATEGIES[s]
        runs[s] = (_kd(cfg, release, s, sft_teacher if t_sft else teacher, sft_student if s_sft else student,
                       console), sft_student if s_sft else student)
    subjects = [Subject(name="teacher", path=teacher), Subject(name="student", path=student)]
    subjects += [Subject(name="teacher+sft", path=sft_teacher)] if sft_teacher else []
    subjects += [Subject(name="student+sft", path=sft_student)] if sft_student else []
    subjects += [Subject(name=f"kd-{s}", path=r["adapter"] or str(Path(r["checkpoint"]) / "hf"), base=base)
                 for s, (r, base) in runs.items()]
    categories = None if k.category == "all" else [k.category]
    spec = k.eval.mcq(release, categories)
    eval_dir = Path(k.out) / "eval"
    spark = build_session(cfg.spark, "telelake-kd-strategies")
    evaluate(LakeCalls(spark, cfg.lake), cfg.lake, spec, subjects, eval_dir, k.backend)

    def items(name: str) -> list[dict]:
        groups = read_items(eval_dir, name)
        return [groups[g][i] for g in sorted(groups) for i in sorted(groups[g])]

    ref = items("kd-neither") if "neither" in runs else None
    rows = []
    for s, (r, _) in runs.items():
        mine = items(f"kd-{s}")
        maj = [x["maj_at_k"] for x in mine if x["maj_at_k"] is not None]
        c = (bootstrap.paired([float(x["pass_at_1"]) for x in ref], [float(x["pass_at_1"]) for x in mine],
                              resamples=k.resamples, seed=11) if ref is not None and s != "neither" else None)
        rows.append(StrategyRow(s, *STRATEGIES[s], len(mine), sum(bool(x["pass_at_1"]) for x in mine) / len(mine),
                                sum(maj) / len(maj) if maj else None,
                                100 * c.diff.mean if c else None, 100 * c.diff.low if c else None,
                                100 * c.diff.high if c else None, c.p_value if c else None,
                                (r.get("final") or {}).get("kd")))
    refs = {name: items(name) for name in [x.name for x in subjects if not x.name.startswith("kd-")]}
    path = write_report(Path(k.out), rows, refs, k, release, teacher, student)
    console.print(f"[bold]report[/]: {path}")
    return path


def write_report(out: Path, rows: list[StrategyRow], refs: dict[str, list[dict]], k: KDStrategiesSection,
                 release: str, teacher: str, student: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def pct(x):
        return "–" if x is None else f"{100 * x:.1f}"

    lines = [f"# SFT before distillation: four strategies on {release}", "",
             f"Teacher `{teacher}`, student `{student}`; SFT with conf/training/{k.sft_recipe}.yaml, KD with "
             f"conf/training/{k.kd_recipe}.yaml" + (f" ({', '.join(k.kd_overrides)})" if k.kd_overrides else "")
             + (f"; both with {', '.join(k.train_overrides)}" if k.train_overrides else "")
             + f"; category {k.category}; splits {', '.join(k.eval.splits)}.", "",
             f"| strategy | SFT teacher | SFT student | items | Pass@1 | Maj@{k.eval.k} | Δ Pass@1 vs neither (95% CI) "
             f"| p | final KD loss |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        diff = "" if r.diff_points is None else f"{r.diff_points:+.1f} ({r.diff_low:+.1f}, {r.diff_high:+.1f})"
        lines.append(f"| {r.strategy} | {'yes' if r.sft_teacher else 'no'} | {'yes' if r.sft_student else 'no'} | "
                     f"{r.items} | {pct(r.pass_at_1)} | {pct(r.maj_at_k)} | {diff} | "
                     f"{'' if r.p_value is None else f'{r.p_value:.3f}'} | "
                     f"{'' if r.kd_final is None else f'{r.kd_final:.4f}'} |")
    lines += ["", "Before distillation (same items):", "", "| model | items | Pass@1 |", "|---|---:|---:|"]
    for name, its in refs.items():
        lines.append(f"| {name} | {len(its)} | {pct(sum(bool(x['pass_at_1']) for x in its) / len(its))} |")
    lines += ["", "Paired bootstrap over the same items (p < 0.05: the strategy differs from neither).", "",
              "![strategies](kd_strategies.png)"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([r.strategy for r in rows], [100 * r.pass_at_1 for r in rows], color="tab:blue", label="Pass@1")
    for i, r in enumerate(rows):
        if r.diff_low is not None and r.p_value is not None and r.p_value < 0.05:
            ax.annotate("*", (i, 100 * r.pass_at_1), ha="center", va="bottom", fontsize=14)
    ax.set_ylabel("Pass@1 (%)")
    ax.set_title("student after KD, by SFT strategy")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "kd_strategies.png", dpi=110)
    plt.close(fig)
    (out / "kd_strategies.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    path = out / "kd_strategies.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--release", required=True)
    p.add_argument("--conf", default=str(SHIPPED_CONF / "kd_strategies.yaml"))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    cfg = load_config(KDStrategiesJobConfig, args)
    return run(cfg, args.release)


if __name__ == "__main__":
    main()
