"""The `telelake` command: one entry point for every job and lake operation.

    telelake demo                                   # whole flow on the embedded corpus
    telelake ingest --conf conf/ingest/wikipedia.yaml
    telelake keywords --conf conf/keyword_filter.yaml
    telelake keywords redecide --conf conf/keyword_filter.yaml --set keywords.thresholds.min_hits=2
    telelake judge --conf conf/judge.yaml            # LLM Yes/No relevance of the keyword pool
    telelake classify eval --labels labels.jsonl     # judge vs human labels: P/R/F1, PR curve
    telelake cascade --conf conf/cascade.yaml        # distilled classifier, LLM only on its uncertain band
    telelake ingest arxiv --conf conf/ingest/arxiv.yaml         # arXiv sources → bronze.arxiv_sources
    telelake ingest standards --conf conf/ingest/standards.yaml # 3GPP .zip/.doc/.docx → bronze
    telelake clean latex --conf conf/clean/arxiv.yaml           # → silver.cleaned (+ quarantine)
    telelake clean standards --conf conf/clean/standards.yaml
    telelake clean latex 2411.01234.tar.gz [--report]          # print one cleaned arXiv source
    telelake clean standards 38331-i40.docx [--report]         # print one cleaned 3GPP spec
    telelake clean measure --conf conf/clean/measure.yaml      # cross-entropy cleanliness, raw vs cleaned
    telelake ingest --conf conf/ingest/slimpajama.yaml          # general replay data (category general)
    telelake assemble --conf conf/gold/tele_data.yaml          # silver verdicts + dedup → gold.tele_data
    telelake qna generate [--conf conf/qna/generate.yaml]    # Tele-Data chunks → 5 QnA pairs each (prompt 3)
    telelake qna filter [--conf conf/qna/filter.yaml]        # 111 regex filters, LLM answerability, dedup → gold.tele_eval
    telelake benchmarks import [--conf conf/benchmarks.yaml]   # TeleQnA, ORAN-Bench, srsRANBench → gold.benchmarks
    telelake instruct build [--conf conf/instruct.yaml]      # Alpaca/Open-Instruct, MCQ, literature tasks
    telelake release create NAME [--conf conf/release.yaml]    # gated, immutable, checksummed
    telelake shards build --release NAME [--tokenizer DIR] [--conf conf/training/cpt.yaml]   # → Arrow IPC shards
    telelake train --recipe cpt|cpt_lora|sft --release NAME [--set train.max_steps=5] [--resume RUN_DIR]
    telelake train --recipe cpt --shards DIR        # a built shard set: no lake, Spark or delta-rs needed
    telelake train compare RUN_DIR RUN_DIR --out reports/lora_vs_full.png
    telelake train merge ADAPTER ADAPTER [...] --method ties|dare_ties|dare_linear|linear --out DIR
    telelake train student --model embedded:smollm2-135m-instruct --layers 10 --out models/smollm2-10l
    telelake eval tele-eval|mcq|generation|general|report --release NAME [--model NAME=PATH ...]
    telelake release list | show NAME | diff A B | verify NAME
    telelake release export NAME --out DIR [--format jsonl|parquet]   # public Tele-Data layout
    telelake lake history bronze.wikipedia [--conf conf/telelake.yaml]
    telelake lake vacuum bronze.wikipedia [--retention-hours 168] [--dry-run]   # keeps released files
    telelake lake cleanup-logs gold.tele_data [--retention-hours 168]
    telelake lake pin bronze.wikipedia 3 --holder release:v1
    telelake package                                # dist/telelake.zip for spark-submit --py-files
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from jobs._common import setup_logging
from pipelines import config


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging()
    try:
        return args.func(args) or 0
    except (config.ConfigError, FileNotFoundError, LookupError, ValueError) as exc:
        print(f"telelake: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="telelake", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    sub = p.add_subparsers()

    demo = sub.add_parser("demo", help="run the whole flow on the embedded corpus")
    demo.add_argument("--workdir", default="demo_lake", help="where raw files and the lake go")
    demo.add_argument("--fresh", action="store_true", help="delete the workdir first")
    demo.set_defaults(func=_demo)

    ing = sub.add_parser("ingest", help="raw files → bronze (documents, arXiv sources or 3GPP files)")
    ing.add_argument("kind", nargs="?", choices=["documents", "arxiv", "standards"], default="documents",
                     help="documents (Parquet/JSONL/WARC, the default), arxiv or standards")
    _job_args(ing)
    ing.set_defaults(func=lambda a: _run_job("jobs.ingest" if a.kind == "documents" else "jobs.ingest_sources", a))

    for name, module, help_ in (("judge", "jobs.judge", "LLM relevance judge: keyword pool → silver.relevance"),
                                ("cascade", "jobs.cascade", "distilled classifier + LLM on its uncertain band"),
                                ("assemble", "jobs.assemble", "silver verdicts + dedup → gold.tele_data")):
        j = sub.add_parser(name, help=help_)
        _job_args(j)
        j.set_defaults(func=lambda a, m=module: _run_job(m, a))

    qna = sub.add_parser("qna", help="Tele-Eval: generate QnA pairs from Tele-Data chunks, filter them → gold.tele_eval")
    qna.add_argument("action", choices=["generate", "filter"])
    qna.add_argument("--conf", default=None, help="default conf/qna/generate.yaml or conf/qna/filter.yaml")
    qna.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    qna.set_defaults(func=lambda a: _run_job(f"jobs.qna_{a.action}", argparse.Namespace(
        conf=a.conf or f"conf/qna/{a.action}.yaml", overrides=a.overrides)))

    ins = sub.add_parser("instruct", help="instruction datasets → gold.instructions (imports, MCQ, literature tasks)")
    ins.add_argument("action", choices=["build"])
    _job_args(ins, default="conf/instruct.yaml")
    ins.set_defaults(func=lambda a: _run_job("jobs.instruct_build", a))

    bm = sub.add_parser("benchmarks", help="MCQ benchmarks → gold.benchmarks (one schema, seeded splits)")
    bm.add_argument("action", choices=["import"])
    _job_args(bm, default="conf/benchmarks.yaml")
    bm.set_defaults(func=lambda a: _run_job("jobs.benchmarks_import", a))

    kw = sub.add_parser("keywords", help="keyword filter: bronze → silver.keyword_hits")
    kw.add_argument("action", nargs="?", choices=["scan", "redecide"], default="scan")
    _job_args(kw)
    kw.set_defaults(func=lambda a: _run_job("jobs.keyword_redecide" if a.action == "redecide"
                                            else "jobs.keyword_filter", a))

    ce = sub.add_parser("classify", help="evaluate the relevance judge against human labels")
    ce.add_argument("action", choices=["eval"])
    ce.add_argument("--labels", required=True, help="CSV or JSONL: label and text (or doc_id)")
    ce.add_argument("--conf", default="conf/judge.yaml")
    ce.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ce.add_argument("--out", default="reports/judge_eval", help="folder for report.md and pr_curve.png")
    ce.set_defaults(func=_classify)

    cl = sub.add_parser("clean", help="clean arXiv / 3GPP sources: a table (--conf) or one PATH to stdout")
    cl.add_argument("kind", choices=["latex", "standards", "measure"])
    cl.add_argument("path", nargs="?", help="latex: .tar.gz, .tar, .gz, folder or .tex; standards: .doc, .docx "
                                            "or .zip; printed cleaned to stdout (inspection)")
    cl.add_argument("--conf", default=None, help="job conf: clean the whole bronze table (conf/clean/*.yaml), "
                                                  "or the measure conf (conf/clean/measure.yaml)")
    cl.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    cl.add_argument("--rules", default=None, help="command rules YAML (default conf/latex/commands.yaml)")
    cl.add_argument("--report", action="store_true", help="print the quality checks and metadata to stderr")
    cl.set_defaults(func=_clean)

    sh = sub.add_parser("shards", help="a release's training tables → tokenized, packed Arrow IPC shards")
    sh.add_argument("action", choices=["build"])
    sh.add_argument("--release", required=True)
    sh.add_argument("--tokenizer", default=None, help="local tokenizer or model folder (default: the recipe's model)")
    _job_args(sh, default="conf/shards.yaml")
    sh.set_defaults(func=_shards)

    tr = sub.add_parser("train", help="train from a release on DeepSpeed (cpt, cpt_lora, sft, lora, kd), compare "
                                      "runs, merge LoRA adapters (linear, TIES, DARE), make a layer-dropped "
                                      "student for KD, or run an experiment: "
                                      "per-category adapters (adapters), SFT-before-KD strategies (kd-strategies)")
    tr.add_argument("action", nargs="?", choices=["run", "compare", "merge", "student", "adapters", "kd-strategies"],
                    default="run")
    tr.add_argument("runs", nargs="*", help="compare: run directories; merge: adapter folders")
    tr.add_argument("--recipe", default="cpt", help="conf/training/<recipe>.yaml")
    tr.add_argument("--release", default=None)
    tr.add_argument("--shards", default=None, metavar="DIR",
                    help="run: a built shard set's folder instead of --release (a node without the lake or Spark)")
    tr.add_argument("--conf", default=None, help="recipe conf (default conf/training/<recipe>.yaml)")
    tr.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    tr.add_argument("--category", default=None, help="run: one benchmark category's adapter (all: the monolithic "
                                                     "one); adapters: the rank ablation's category")
    tr.add_argument("--categories", default=None, help="adapters: comma-separated categories (default every one)")
    tr.add_argument("--ranks", default=None, help="adapters: comma-separated LoRA ranks: the rank ablation")
    tr.add_argument("--run-name", default=None)
    tr.add_argument("--resume", default=None, metavar="RUN_DIR")
    tr.add_argument("--out", default=None, help="compare: PNG to write (default reports/runs_compared.png); "
                                                "merge: the merged adapter's folder; student: the student's folder")
    tr.add_argument("--method", default="ties", choices=["linear", "ties", "dare_linear", "dare_ties"],
                    help="merge: how updates combine")
    tr.add_argument("--density", type=float, default=0.2, help="merge: TIES share kept by magnitude, DARE share kept")
    tr.add_argument("--weights", default=None, help="merge: comma-separated weight per adapter")
    tr.add_argument("--rank", type=int, default=None, help="merge: rank of the merged adapter (default the largest)")
    tr.add_argument("--model", default=None, help="student: the source model (a local folder or embedded:<name>)")
    tr.add_argument("--layers", default=None,
                    help="student: how many decoder layers to keep, evenly spaced (10), or which (0,3,7,29)")
    tr.set_defaults(func=_train)

    ev = sub.add_parser("eval", help="evaluate models on a release: Tele-Eval metrics, MCQ benchmarks, generation "
                                     "metrics, general skills, the comparison report")
    ev.add_argument("action", choices=["tele-eval", "mcq", "generation", "general", "report"])  # jobs.eval.ACTIONS
    ev.add_argument("--release", required=True)
    ev.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                    help="a model, checkpoint hf/ folder or adapter (repeatable; replaces eval.subjects)")
    _job_args(ev, default="conf/eval.yaml")
    ev.set_defaults(func=_eval)

    rel = sub.add_parser("release", help="gated, immutable releases: create, list, show, diff, verify, export")
    from jobs.release_args import add_arguments as release_arguments
    release_arguments(rel)
    rel.set_defaults(func=_release)

    lk = sub.add_parser("lake", help="table history, vacuum, log cleanup and release pins")
    lk.add_argument("action", choices=["history", "vacuum", "cleanup-logs", "pin", "unpin", "pins"])
    lk.add_argument("table", help="zone.table, e.g. bronze.wikipedia")
    lk.add_argument("version", nargs="?", type=int, help="version (pin/unpin)")
    lk.add_argument("--conf", default=None, help="conf with a lake section (default conf/telelake.yaml)")
    lk.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    lk.add_argument("--holder", default="manual", help="who holds the pin, e.g. release:v1")
    lk.add_argument("--retention-hours", type=int, default=168)
    lk.add_argument("--dry-run", action="store_true")
    lk.add_argument("--limit", type=int, default=20)
    lk.set_defaults(func=_lake)

    pk = sub.add_parser("package", help="build dist/telelake.zip for spark-submit --py-files")
    pk.add_argument("--out", default="dist/telelake.zip")
    pk.set_defaults(func=_package)
    return p


def _job_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--conf", required=default is None, default=default)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def _run_job(module: str, args) -> int:
    import importlib

    argv = ["--conf", args.conf] + [x for o in args.overrides for x in ("--set", o)]
    importlib.import_module(module).main(argv)
    return 0


def _classify(args) -> int:
    from jobs.classify_eval import main as classify_eval

    classify_eval(["--labels", args.labels, "--conf", args.conf, "--out", args.out]
                  + [x for o in args.overrides for x in ("--set", o)])
    return 0


def _clean(args) -> int:
    import json

    from pipelines.latex.archive import ArchiveRefused, read_source
    from pipelines.latex.clean import clean_latex
    from pipelines.latex.commands import CommandRules
    from pipelines.latex.flatten import NoMainFile
    from pipelines.standards.convert import ConversionFailed

    if args.kind == "measure":
        return _run_job("jobs.measure", argparse.Namespace(conf=args.conf or "conf/clean/measure.yaml",
                                                            overrides=args.overrides))
    if args.path is None:
        if args.conf is None:
            raise ValueError(f"`telelake clean {args.kind}` needs a PATH to print one document, or --conf "
                             f"conf/clean/{'arxiv' if args.kind == 'latex' else 'standards'}.yaml to clean a table")
        from jobs.clean import CleanJobConfig

        configured = config.load(CleanJobConfig, args.conf, args.overrides).clean.kind
        if configured != args.kind:
            raise ValueError(f"{args.conf} cleans kind {configured!r}, not {args.kind!r}: run "
                             f"`telelake clean {configured} --conf {args.conf}`")
        return _run_job("jobs.clean", args)
    rules = CommandRules.load(args.rules) if args.rules else CommandRules.load()
    extra: dict = {}
    try:
        if args.kind == "latex":
            result = clean_latex(read_source(args.path).files, rules)
        else:
            from pipelines.standards.clean import StandardsRules, clean_standard
            from pipelines.standards.package import read_standard_bytes

            if not Path(args.path).is_file():
                raise FileNotFoundError(f"{args.path}: not a file; give a .doc, .docx or .zip")
            words = read_standard_bytes(Path(args.path).read_bytes(), Path(args.path).name)
            std = [clean_standard(w, StandardsRules.load(), rules) for w in words]
            result = std[0].cleaned
            for s in std[1:]:
                result.text += "\n" + s.cleaned.text
            extra = {"spec": [s.meta.to_dict() for s in std],
                     "sections_removed": [x for s in std for x in s.prepared.removed_sections]}
    except (ArchiveRefused, NoMainFile, ConversionFailed) as exc:
        print(f"telelake: {args.path} refused: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(result.text)
    if args.report:
        print(json.dumps({**extra, "main": result.main, "checks": result.checks, "cited": result.cited,
                          "bibliography": len(result.bibliography), "included": result.included,
                          "missing": result.missing, "cycles": result.cycles, "macros": result.macros,
                          "floats_removed": result.floats_removed, "warnings": result.warnings}, indent=2),
              file=sys.stderr)
    return 0 if result.clean else 3


def _demo(args) -> int:
    from pipelines.demo.run import run_demo

    run_demo(Path(args.workdir), fresh=args.fresh)
    return 0


def _lake(args) -> int:
    from pipelines import lake

    conf = args.conf or ("conf/telelake.yaml" if Path("conf/telelake.yaml").is_file() else None)
    cfg = config.load_section(lake.LakeConfig, conf, "lake", args.overrides)
    console = Console()
    if args.action == "history":
        t = Table(title=f"{args.table} history")
        for col in ("version", "time (UTC)", "operation", "batch", "job"):
            t.add_column(col)
        for h in lake.history(cfg, args.table, args.limit):
            when = dt.datetime.fromtimestamp(h["timestamp"] / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            batch = f"{h.get('telelake.app_id', '')} v{h['telelake.batch_version']}" if "telelake.app_id" in h else ""
            t.add_row(str(h.get("version")), when, h.get("operation", ""), batch, h.get("telelake.job", ""))
        console.print(t)
    elif args.action == "vacuum":
        from pipelines.release.ops import protected_files

        deleted = lake.vacuum(cfg, args.table, retention_hours=args.retention_hours, dry_run=args.dry_run,
                              protect=protected_files(cfg, args.table))
        verb = "would delete" if args.dry_run else "deleted"
        console.print(f"vacuum {args.table}: {verb} {len(deleted)} files")
        for f in deleted:
            console.print(f"  {f}")
    elif args.action == "cleanup-logs":
        n = lake.cleanup_logs(cfg, args.table, retention_hours=args.retention_hours)
        console.print(f"cleanup-logs {args.table}: deleted {n} log files older than {args.retention_hours} h")
    elif args.action in ("pin", "unpin"):
        if args.version is None:
            raise ValueError(f"`telelake lake {args.action}` needs a version: telelake lake {args.action} TABLE VERSION")
        if args.action == "pin":
            p = lake.pin(cfg, args.table, args.version, args.holder)
            console.print(f"pinned {p.table} v{p.version} for {p.holder}")
        else:
            ok = lake.unpin(cfg, args.table, args.version, args.holder)
            console.print(f"{'unpinned' if ok else 'no pin for'} {args.table} v{args.version} by {args.holder}")
    else:
        for p in lake.pins(cfg, args.table):
            console.print(f"{p.table} v{p.version} held by {p.holder} since {p.pinned_at}")
    return 0


def _refusals():
    from pipelines.llm.models import ModelError
    from pipelines.release.store import ReleaseError
    from pipelines.tokenize.spec import ShardError
    from training.data import ShardReadError
    from training.kd import KDError

    return ReleaseError, ShardError, ShardReadError, KDError, ModelError


def _shards(args) -> int:
    from jobs.shards_build import main as shards_main

    try:
        shards_main(["--release", args.release, "--conf", args.conf]
                + (["--tokenizer", args.tokenizer] if args.tokenizer else [])
                + [x for o in args.overrides for x in ("--set", o)])
    except _refusals() as exc:
        print(f"telelake: refused: {exc}", file=sys.stderr)
        return 1
    return 0


def _train(args) -> int:
    from jobs import train

    if args.action == "compare":
        if len(args.runs) < 2:
            raise ValueError("`telelake train compare` needs two or more run directories")
        train.compare(args.runs, args.out or "reports/runs_compared.png")
        return 0
    if args.action == "merge":
        from training.merge import MergeError, MergeSpec, merge_adapters

        if not args.out:
            raise ValueError("`telelake train merge` needs --out DIR for the merged adapter")
        try:
            weights = [float(w) for w in args.weights.split(",")] if args.weights else None
            result = merge_adapters(args.runs, args.out, MergeSpec(method=args.method, density=args.density,
                                                                   weights=weights, rank=args.rank))
        except MergeError as exc:
            print(f"telelake: refused: {exc}", file=sys.stderr)
            return 1
        print(f"merged {len(result.adapters)} adapters ({result.method}, rank {result.rank}, {result.modules} modules; "
              f"SVD truncation error mean {result.mean_truncation_error:.4f}, max {result.max_truncation_error:.4f})"
              f" → {result.folder}")
        return 0
    if args.action == "student":
        from training.student import StudentError, make_student

        if not (args.model and args.layers and args.out):
            raise ValueError("`telelake train student` needs --model M --layers N --out DIR")
        try:
            s = make_student(args.model, args.layers, args.out)
        except StudentError as exc:
            print(f"telelake: refused: {exc}", file=sys.stderr)
            return 1
        print(f"student of {s.source}: layers {s.kept_layers} of {s.source_layers}, {s.parameters:,} parameters "
              f"({100 * s.parameters / s.source_parameters:.0f}% of {s.source_parameters:,}) → {s.folder}")
        return 0
    if args.action == "run" and args.shards:
        if args.release:
            raise ValueError("`telelake train` takes --release NAME or --shards DIR, not both")
        where = ["--shards", args.shards]
    elif not args.release:
        raise ValueError("`telelake train` needs --release NAME (telelake release list), or --shards DIR (a built "
                         "shard set)")
    else:
        where = ["--release", args.release]
    if args.action == "adapters":
        from jobs import adapters

        argv = ["--release", args.release] + (["--conf", args.conf] if args.conf else [])
        argv += [x for flag in ("categories", "category", "ranks") if getattr(args, flag)
                 for x in (f"--{flag}", getattr(args, flag))]
        return _run_refusing(adapters.main, argv, args.overrides)
    if args.action == "kd-strategies":
        from jobs import kd_strategies

        argv = ["--release", args.release] + (["--conf", args.conf] if args.conf else [])
        return _run_refusing(kd_strategies.main, argv, args.overrides)
    argv = ["--recipe", args.recipe, *where] + (["--conf", args.conf] if args.conf else [])
    argv += ["--category", args.category] if args.category else []
    argv += (["--run-name", args.run_name] if args.run_name else []) + (["--resume", args.resume] if args.resume else [])
    return _run_refusing(train.main, argv, args.overrides)


def _run_refusing(main, argv: list[str], overrides: list[str]) -> int:
    """Run a job's main with the --set overrides; a refusal (bad release, shards, model pair) is exit 1."""
    try:
        main(argv + [x for o in overrides for x in ("--set", o)])
    except _refusals() as exc:
        print(f"telelake: refused: {exc}", file=sys.stderr)
        return 1
    return 0


def _eval(args) -> int:
    from eval.calls import EvalInputError
    from jobs.eval import main as eval_main
    from pipelines.llm.models import ModelError

    argv = [args.action, "--release", args.release, "--conf", args.conf]
    argv += [x for m in args.model for x in ("--model", m)] + [x for o in args.overrides for x in ("--set", o)]
    try:
        eval_main(argv)
    except (*_refusals(), EvalInputError, ModelError) as exc:
        print(f"telelake: refused: {exc}", file=sys.stderr)
        return 1
    return 0


def _release(args) -> int:
    from jobs.release import run

    return run(args)


def _package(args) -> int:
    from pipelines.packaging import build_pyfiles_zip

    out = build_pyfiles_zip(Path(args.out))
    print(f"wrote {out} (pass it to spark-submit --py-files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
