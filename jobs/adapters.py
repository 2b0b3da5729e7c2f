"""Per-category LoRA adapters end to end (paper 001): train each, evaluate against zero-shot, report.

    telelake train adapters --release bench-v1                         # every category + the monolithic one
    telelake train adapters --release bench-v1 --categories teleqna,srsranbench --set adapters.eval.limit_per_group=100
    telelake train adapters --release bench-v1 --category teleqna --ranks 4,8,16,32   # the rank ablation

A category's adapter trains with conf/training/<adapters.recipe>.yaml narrowed to that category (as
`telelake train --recipe lora --category C`), under <adapters.out>/runs/lora-<C> (or
<adapters.runs>/lora-<C>); a run that already finished (result.json) is reused, so a rerun only
evaluates what is missing (model calls come from the result store). An evaluation-only check of an
experiment's adapters on another sample or split names that experiment's runs with adapters.runs and a
new adapters.out for its report. The zero-shot backbone, each adapter (on its category) and the
monolithic adapter (on every category) are evaluated on the same seeded items of the seen and unseen
splits, and eval/adapters.py writes report.md, adapters.json and adapters.png under <adapters.out>. The
category adapters merged into one by each of adapters.merges (TIES, DARE: training/merge.py) are written
under <adapters.out>/merged/<method>/ and evaluated on every category like the monolithic adapter.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rich.console import Console

from jobs._common import Runtime, load_config
from pipelines.config import SHIPPED_CONF
from pipelines.llm.backend import BackendConfig


@dataclass(frozen=True, kw_only=True)
class AdapterEvalSpec:
    """How an experiment's models answer the MCQ benchmarks (eval/mcq.py), all on the same seeded items."""
    splits: list[str] = field(default_factory=lambda: ["train", "test"])
    limit_per_group: int | None = 200
    k: int = 4
    temperature: float = 0.7
    max_new_tokens: int = 16
    seed: int = 42

    def mcq(self, release: str, categories: list[str] | None, splits: list[str] | None = None):
        from eval.mcq import McqSpec

        return McqSpec(release=release, categories=categories, splits=splits or self.splits,
                       limit_per_group=self.limit_per_group, seed=self.seed, k=self.k, temperature=self.temperature,
                       max_new_tokens=self.max_new_tokens)


@dataclass(frozen=True, kw_only=True)
class AblationSpec:
    ranks: list[int] = field(default_factory=lambda: [4, 8, 16, 32])
    alpha_per_rank: float = 2.0
    split: str = "test"


@dataclass(frozen=True, kw_only=True)
class AdaptersSection:
    categories: list[str] = field(default_factory=list)
    monolithic: bool = True
    recipe: str = "lora"
    train_overrides: list[str] = field(default_factory=list)
    out: str = "reports/adapters"
    runs: str | None = None
    """Where the adapters' runs live; None: <out>/runs."""
    merges: list[str] = field(default_factory=lambda: ["ties", "dare_ties"])
    """training/merge.py methods (ties, dare_ties, dare_linear, linear): the category adapters merged into
    one adapter by each, evaluated on every category like the monolithic adapter."""
    merge_density: float = 0.2
    eval: AdapterEvalSpec = field(default_factory=AdapterEvalSpec)
    backend: BackendConfig = field(default_factory=BackendConfig)
    ablation: AblationSpec = field(default_factory=AblationSpec)


@dataclass(frozen=True, kw_only=True)
class AdaptersJobConfig(Runtime):
    adapters: AdaptersSection = field(default_factory=AdaptersSection)


@dataclass
class Trained:
    name: str
    adapter: str
    adapter_bytes: int
    trainable_params: int
    best_step: int | None
    alpha: float
    ended: str = ""
    """How training ended, for the report: "" when the schedule ran out, else e.g. "stopped on request
    (SIGTERM) at step 72 of 144"."""
    best_val: float | None = None
    """The validation loss at the best step."""
    tokens_per_s: float | None = None
    """Median training tokens/s."""


def train_adapter(cfg: AdaptersJobConfig, release: str, category: str, *, rank: int | None = None,
                  console: Console) -> Trained:
    """Train (or reuse) the adapter of `category` ('all': the monolithic one) at `rank`."""
    from jobs import train
    from training.run import ended_note, run_figures

    a = cfg.adapters
    name = f"lora-{category}" + (f"-r{rank}" if rank else "")
    runs = Path(a.runs) if a.runs else Path(a.out) / "runs"
    extra = [f"train.out={runs}"]
    if rank:
        extra += [f"train.lora.r={rank}", f"train.lora.alpha={a.ablation.alpha_per_rank * rank:g}"]
    rc = train.for_category(train.load_recipe(a.recipe, [*a.train_overrides, *extra], cfg), category)
    r = train.train_once(rc, release, name, console)
    if not r.get("adapter"):
        raise SystemExit(f"telelake: run {name} holds no adapter (recipe {a.recipe} is not a LoRA recipe)")
    best_val, speed = run_figures(runs / name, r.get("best_step"))
    return Trained(name, r["adapter"], int(r["adapter_bytes"]), int(r["trainable_params"]), r.get("best_step"),
                   rc.train.lora.alpha, ended_note(r), best_val, speed)


def merge_trained(cfg: AdaptersJobConfig, trained: dict[str, Trained], console: Console) -> dict[str, dict]:
    """The category adapters merged by each of adapters.merges, under <adapters.out>/merged/<method>/:
    method → merge.json's content. A merge made before from the same adapters and spec is reused."""
    import json

    from training.merge import METHODS, MergeSpec, merge_adapters

    a = cfg.adapters
    unknown = [m for m in a.merges if m not in METHODS]
    if unknown:
        raise SystemExit(f"telelake: adapters.merges names {', '.join(unknown)}; the merge methods are "
                         f"{', '.join(METHODS)}")
    folders = [t.adapter for _, t in sorted(trained.items())]
    out = {}
    for method in a.merges:
        spec = MergeSpec(method=method, density=a.merge_density)
        folder = Path(a.out) / "merged" / method
        if (folder / "merge.json").is_file():
            made = json.loads((folder / "merge.json").read_text())
            wanted = json.loads(json.dumps({"adapters": [str(Path(f)) for f in folders], "spec": asdict(spec)}))
            if {k: made[k] for k in wanted} != wanted:
                raise SystemExit(f"telelake: {folder} was merged from other adapters or with another spec than this "
                                 f"run asks for; delete it to merge again")
            console.print(f"{method}: reusing the merged adapter {folder}")
        else:
            console.print(f"merging {len(folders)} adapters ({method}, density {a.merge_density:g}) → {folder}")
            merge_adapters(folders, folder, spec)
        out[method] = json.loads((folder / "merge.json").read_text())
    return out


def _mcq(cfg: AdaptersJobConfig, release: str, categories: list[str] | None, splits: list[str], subjects, spark):
    from eval.calls import LakeCalls
    from eval.mcq import evaluate

    e = cfg.adapters.eval
    spec = e.mcq(release, categories, splits)
    return evaluate(LakeCalls(spark, cfg.lake), cfg.lake, spec, subjects, Path(cfg.adapters.out) / "eval",
                    cfg.adapters.backend)


def release_categories(cfg: AdaptersJobConfig, release: str) -> list[str]:
    from pipelines.release.ops import read_release

    return sorted(set(read_release(cfg.lake, release, "gold.benchmarks", ["category"])["category"].to_pylist()))


def train_router(cfg: AdaptersJobConfig, release: str, categories: list[str]):
    """The category router (pipelines/llm/router.py) on the train split's questions, measured on the
    test split; router.bin and router.json under <adapters.out>."""
    from pipelines.llm import router
    from pipelines.release.ops import read_release

    rows = read_release(cfg.lake, release, "gold.benchmarks", ["category", "split", "question", "choices"]).to_pylist()
    rows = [r for r in rows if r["category"] in categories]
    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    path = str(Path(cfg.adapters.out) / "router.bin")
    router.train_router([router.question_text(r["question"], r["choices"]) for r in train],
                        [r["category"] for r in train], path)
    measured = router.measure(router.load_router(path), path,
                              [router.question_text(r["question"], r["choices"]) for r in test],
                              [r["category"] for r in test], train_items=len(train))
    (Path(cfg.adapters.out) / "router.json").write_text(measured.to_json())
    return measured


def run(cfg: AdaptersJobConfig, release: str, console: Console | None = None) -> Path:
    from eval import adapters as report
    from eval.subjects import Subject
    from pipelines.spark import build_session

    console = console or Console()
    a = cfg.adapters
    categories = a.categories or release_categories(cfg, release)
    from jobs.train import load_recipe

    base = load_recipe(a.recipe, a.train_overrides, cfg).train.model.path
    trained = {c: train_adapter(cfg, release, c, console=console) for c in categories}
    mono = train_adapter(cfg, release, "all", console=console) if a.monolithic else None
    merges = merge_trained(cfg, trained, console) if len(trained) > 1 else {}
    spark = build_session(cfg.spark, "telelake-adapters")
    zero = Subject(name="zero-shot", path=base)
    shared = [zero] + ([Subject(name=mono.name, path=mono.adapter)] if mono else []) + [
        Subject(name=f"merged-{m}", path=info["folder"]) for m, info in merges.items()]
    _mcq(cfg, release, categories, a.eval.splits, shared, spark)
    for c, t in trained.items():
        _mcq(cfg, release, [c], a.eval.splits, [Subject(name=t.name, path=t.adapter)], spark)
    routing = train_router(cfg, release, categories) if len(categories) > 1 else None
    rows = report.category_rows(Path(a.out) / "eval", zero.name, {c: t.name for c, t in trained.items()},
                                mono.name if mono else None, {c: t.adapter_bytes for c, t in trained.items()},
                                merged={report.merge_label(m): f"merged-{m}" for m in merges})
    notes = [f"Release `{release}`; backbone `{base}`; recipe conf/training/{a.recipe}.yaml"
             + (f" with {', '.join(a.train_overrides)}" if a.train_overrides else "") + ".",
             "Each model answers the same " + (f"seeded sample of at most {a.eval.limit_per_group} items"
                                               if a.eval.limit_per_group else "items, all of them,")
             + f" per category and split; Pass@1 greedy, Maj@{a.eval.k} at temperature {a.eval.temperature:g}; seen = train split, "
             f"unseen = test split.",
             "Adapters: " + "; ".join(f"{c}: {t.adapter} (best step {t.best_step}, "
                                      + (f"{t.ended}, " if t.ended else "") + f"{t.trainable_params:,} parameters)"
                                      for c, t in trained.items())
             + (f"; monolithic: {mono.adapter}" if mono else "") + "."]
    if merges:
        notes.append("Merged adapters (training/merge.py, every category's adapter into one, factored back to rank "
                     + f"{next(iter(merges.values()))['rank']}): " + "; ".join(
                         f"{report.merge_label(m)}: density {info['spec']['density']:g}, truncation error mean "
                         f"{info['mean_truncation_error']:.3f} / max {info['max_truncation_error']:.3f} (relative "
                         f"Frobenius), `{info['folder']}`" for m, info in merges.items()) + ".")
    if routing:
        notes.append(f"Router for requests without a category (fastText over {len(routing.categories)} categories, "
                     f"trained on {routing.train_items:,} train-split questions, `{routing.path}`): accuracy "
                     f"{100 * routing.accuracy:.1f}% on {routing.test_items:,} test-split questions ("
                     + ", ".join(f"{c} {100 * v:.1f}%" for c, v in routing.per_category.items()) + ").")
    path = report.write_report(Path(a.out), rows, k=a.eval.k, title=f"Per-category LoRA adapters on {release}",
                               notes=notes)
    _print(console, rows, a.eval.k)
    console.print(f"[bold]report[/]: {path}")
    return path


def ablate(cfg: AdaptersJobConfig, release: str, category: str, console: Console | None = None) -> Path:
    from eval import adapters as report
    from eval.subjects import Subject
    from jobs.train import load_recipe
    from pipelines.spark import build_session

    console = console or Console()
    a = cfg.adapters
    base = load_recipe(a.recipe, a.train_overrides, cfg).train.model.path
    runs = {r: train_adapter(cfg, release, category, rank=r, console=console) for r in a.ablation.ranks}
    spark = build_session(cfg.spark, "telelake-rank-ablation")
    zero = Subject(name="zero-shot", path=base)
    _mcq(cfg, release, [category], [a.ablation.split],
         [zero] + [Subject(name=t.name, path=t.adapter) for t in runs.values()], spark)
    rows = report.rank_rows(Path(a.out) / "eval", zero.name, {r: report.RankRun(
        t.name, t.alpha, t.adapter_bytes, t.trainable_params, t.best_step, t.best_val, t.tokens_per_s)
        for r, t in runs.items()}, category, a.ablation.split)
    notes = [f"Release `{release}`; backbone `{base}`; recipe conf/training/{a.recipe}.yaml with alpha = "
             f"{a.ablation.alpha_per_rank:g}·r" + (f" and {', '.join(a.train_overrides)}" if a.train_overrides else "")
             + "; every model answers the same "
             + (f"seeded sample of at most {a.eval.limit_per_group} items" if a.eval.limit_per_group
                else "items, all of them")
             + f"; Pass@1 greedy, Maj@{a.eval.k} at temperature {a.eval.temperature:g}."]
    path = report.write_rank_report(Path(a.out), rows, category=category, split=a.ablation.split, k=a.eval.k,
                                    notes=notes)
    for r in rows:
        console.print(f"rank {r.rank}: {r.adapter_mb:.2f} MB, Pass@1 {100 * r.pass_at_1:.1f}%"
                      + (f", Maj@{a.eval.k} {100 * r.maj_at_k:.1f}%" if r.maj_at_k is not None else "")
                      + f" (zero-shot {100 * r.zero_shot.pass_at_1:.1f}%, majority baseline {100 * r.baseline:.1f}%)")
    console.print(f"[bold]report[/]: {path}")
    return path


def _print(console: Console, rows, k: int) -> None:
    from rich.table import Table

    from eval.mcq import SPLIT_NAMES

    t = Table(title="per-category adapters (Pass@1 %)")
    merged = list(rows[0].merged) if rows else []
    for col in ("category", "split", "items", "baseline", "zero-shot", "adapter", "gain", "p", "monolithic", *merged,
                "goal"):
        t.add_column(col, justify="left" if col in ("category", "split", "goal") else "right")
    for r in rows:
        t.add_row(r.category, SPLIT_NAMES.get(r.split, r.split), str(r.items), f"{100 * r.baseline:.1f}",
                  f"{100 * r.zero_shot.pass_at_1:.1f}", f"{100 * r.adapter.pass_at_1:.1f}", f"{r.gain_points:+.1f}",
                  f"{r.p_value:.3f}", f"{100 * r.monolithic.pass_at_1:.1f}" if r.monolithic else "–",
                  *(f"{100 * r.merged[m].pass_at_1:.1f}" if m in r.merged else "–" for m in merged),
                  r.goal_text.replace("*", ""))
    console.print(t)


def main(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--release", required=True)
    p.add_argument("--conf", default=str(SHIPPED_CONF / "adapters.yaml"))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--categories", default=None, help="comma-separated (default adapters.categories, else all)")
    p.add_argument("--category", default=None, help="the rank ablation's category")
    p.add_argument("--ranks", default=None, help="comma-separated LoRA ranks: run the rank ablation on --category")
    args = p.parse_args(argv)
    cfg = load_config(AdaptersJobConfig, args)
    if args.categories:
        cfg = replace(cfg, adapters=replace(cfg.adapters, categories=args.categories.split(",")))
    if args.ranks:
        if not args.category:
            raise SystemExit("telelake: --ranks runs the rank ablation on one category: give --category C")
        ranks = [int(r) for r in args.ranks.split(",")]
        cfg = replace(cfg, adapters=replace(cfg.adapters, ablation=replace(cfg.adapters.ablation, ranks=ranks)))
        return ablate(cfg, args.release, args.category)
    return run(cfg, args.release)


if __name__ == "__main__":
    main()
