"""Build gold.instructions: imported sets, MCQ answering, literature tasks; one idempotent batch.

    Alpaca / Open-Instruct files ─ Spark task per file ─▶ records | rejects (quarantine.rejected)
    gold.benchmarks (conf splits) ─▶ mcq_answering, one category per benchmark (per-category adapters)
    gold.tele_data arxiv + silver.cleaned citations ─▶ title_generation, abstract_completion,
        intro_to_abstract (per paper); citation edges between corpus papers ─▶ citation_link (+1
        negative each), citation_sentence, citation_recommendation (10 negatives)
    → gold.instructions (rewritten whole), one summary per task: read = kept + dropped + rejected

A build is named by its input files, the versions of the tables it reads, the templates and the conf.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass, field

import orjson
import pyarrow as pa
import yaml
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pipelines import lake
from pipelines.benchmarks.split import unit
from pipelines.ingest.inputs import fingerprint, list_source_inputs
from pipelines.ingest.parse import utc_now
from pipelines.ingest.records import Reject, reject_id
from pipelines.instruct import literature as lit
from pipelines.instruct.imports import Format, read_records
from pipelines.lake.spark_types import spark_schema
from pipelines.quarantine import quarantine_rows
from pipelines.spark import flat_map
from pipelines.summary import JobSummary
from schemas import BENCHMARKS, CLEANED, REJECTED, TELE_DATA
from schemas.instructions import INSTRUCTIONS

log = logging.getLogger(__name__)
JOB = "instruct"


@dataclass(frozen=True, kw_only=True)
class ImportSource:
    source: str
    """Name recorded on every example, e.g. alpaca, open_instruct."""
    format: Format
    paths: list[str]


@dataclass(frozen=True, kw_only=True)
class McqSpec:
    enabled: bool = True
    categories: list[str] = field(default_factory=list)
    """Benchmark categories; empty: every category of gold.benchmarks."""
    splits: list[str] = field(default_factory=lambda: ["train", "val"])
    """train to fit the adapters, val for their early stopping; test is never turned into training data."""


@dataclass(frozen=True, kw_only=True)
class LiteratureSpec:
    enabled: bool = True
    holdout: float = 0.1
    """Share of citing papers whose examples are `test` (the paper's hold-out set excluded from training)."""
    seed: int = 42
    link_negatives: int = 1
    """Negative citation-link examples per edge (paper: 1:1)."""
    recommendation_negatives: int = 10
    """Candidates besides the cited paper (paper: 10); an edge with fewer papers to draw from is dropped."""
    max_input_chars: int = 6000
    """Longest introduction (cut at a sentence end) and abstract given as input."""


@dataclass(frozen=True, kw_only=True)
class InstructSpec:
    imports: list[ImportSource] = field(default_factory=list)
    mcq: McqSpec = field(default_factory=McqSpec)
    literature: LiteratureSpec = field(default_factory=LiteratureSpec)
    templates: str = "conf/instruct/templates.yaml"


@dataclass
class InstructResult:
    summaries: list[JobSummary]
    rows: dict[str, dict[str, int]]
    """task → split → examples."""
    edges: int
    """Citation edges found between corpus papers."""
    tables: dict[str, int]
    already_committed: bool = False

    def table(self):
        """A rich table: examples per task and split."""
        from rich.table import Table

        t = Table(title=f"gold.instructions: examples per task and split ({self.edges:,} citation edges)")
        for col in ("task", "train", "val", "test"):
            t.add_column(col, justify="left" if col == "task" else "right")
        for task, splits in sorted(self.rows.items()):
            t.add_row(task, *(f"{splits.get(s, 0):,}" for s in ("train", "val", "test")))
        return t

    def lines(self) -> list[str]:
        """One summary line per task, with its reasons."""
        out = []
        for s in self.summaries:
            reasons = ", ".join(f"{k} {v:,}" for k, v in sorted((s.dropped + s.rejected).items()))
            out.append(s.line() + (f" ({reasons})" if reasons else ""))
        return out


ROWS = pa.schema([("kind", pa.string()), ("task", pa.string()), ("unit", pa.string()), ("reason", pa.string()),
                  *[(f.name, f.type) for f in INSTRUCTIONS.schema if f.name not in ("build", "built_at", "task")],
                  ("reject_id", pa.string()), ("detail", pa.string()), ("raw", pa.binary()), ("raw_bytes", pa.int64())])
"""kind: example | dropped (a unit that yields no example, with the reason) | reject (bad input).
`unit` names what a summary counts (a record, an item, a paper, an edge) so that each is counted once."""
_BLANK = {f: None for f in ROWS.names}


def example(templates: dict, task: str, category: str, inp: str, output: str, split: str, source: str,
            source_ids: list[str], source_file: str, location: str, unit_id: str, instruction: str | None = None) -> dict:
    text = instruction if instruction is not None else templates[task]
    h = hashlib.sha256(json.dumps([templates.get("_version"), task, source_ids, text, inp, output]).encode())
    return _BLANK | {"kind": "example", "task": task, "unit": unit_id, "reason": "kept",
                     "instruction_id": f"{task}_{h.hexdigest()[:16]}", "category": category, "instruction": text,
                     "input": inp, "output": output, "split": split, "source": source, "source_ids": source_ids,
                     "source_file": source_file, "source_location": location}


def dropped(task: str, unit_id: str, reason: str) -> dict:
    return _BLANK | {"kind": "dropped", "task": task, "unit": unit_id, "reason": reason}


def load_templates(path: str) -> dict:
    data = yaml.safe_load(open(path, encoding="utf-8"))
    if not isinstance(data, dict) or "version" not in data or not isinstance(data.get("templates"), dict):
        raise ValueError(f"{path}: expected version and templates (task → instruction text)")
    return {**data["templates"], "_version": str(data["version"])}


# -- imports ----------------------------------------------------------------------------------------------

def _import_fn(sources: list[ImportSource], templates: dict, storage_options: dict[str, str]):
    def run(batches):
        for b in batches:
            for i, path in zip(b.column("source").to_pylist(), b.column("path").to_pylist()):
                src = sources[i]
                task = src.format
                out = []
                try:
                    for rec in read_records(src.format, path, storage_options):
                        if isinstance(rec, Reject):
                            out.append(_BLANK | {"kind": "reject", "task": task, "unit": f"{path}:{rec.location}",
                                                 "reason": rec.reason, "detail": rec.detail, "source": src.source,
                                                 "source_file": path, "source_location": rec.location,
                                                 "reject_id": reject_id(JOB, path, rec.location), "raw": rec.raw,
                                                 "raw_bytes": rec.raw_bytes, "category": "general"})
                            continue
                        r, location, _ = rec
                        out.append(example(templates, task, "general", r["input"], r["output"], "train", src.source,
                                           [f"{src.source}:{location}"], path, location, f"{path}:{location}",
                                           instruction=r["instruction"]))
                except Exception as exc:  # an unreadable file is quarantined, not fatal
                    out.append(_BLANK | {"kind": "reject", "task": task, "unit": f"{path}:file", "reason": "unreadable_file",
                                         "detail": f"{type(exc).__name__}: {exc}"[:2000], "source": src.source,
                                         "source_file": path, "source_location": "file", "category": "general",
                                         "reject_id": reject_id(JOB, path, "file"), "raw": b"", "raw_bytes": 0})
                if out:
                    yield pa.RecordBatch.from_pylist(out, schema=ROWS)
    return run


# -- MCQ answering --------------------------------------------------------------------------------------

MCQ_TASK = "mcq_answering"
"""The task of benchmark questions; its category is the benchmark's (one adapter each, issue 9)."""


def mcq_example(templates: dict, item: dict) -> dict:
    options = "\n".join(f"{i + 1}. {c}" for i, c in enumerate(item["choices"]))
    answer = f"{item['answer'] + 1}. {item['choices'][item['answer']]}"
    return example(templates, MCQ_TASK, item["category"], f"{item['question']}\n{options}", answer,
                   item["split"], BENCHMARKS.name, [item["item_id"]], BENCHMARKS.name, f"item_id={item['item_id']}",
                   item["item_id"])


# -- literature -----------------------------------------------------------------------------------------

PAPER = pa.schema([("id", pa.string()), ("title", pa.string()), ("abstract", pa.string()), ("arxiv_id", pa.string()),
                   ("intro", pa.string()), ("content", pa.string()), ("cited", pa.list_(pa.string())),
                   ("bibliography", pa.string())])


def _paper_fn(spec: LiteratureSpec):
    def run(batches):
        for b in batches:
            out = []
            for r in b.to_pylist():
                meta = orjson.loads(r["metadata"] or "{}")
                out.append({"id": r["id"], "title": meta.get("Title"), "arxiv_id": meta.get("Arxiv_id"),
                            "abstract": lit.abstract_of(meta.get("Abstract"), r["content"]),
                            "intro": lit.introduction_of(r["content"], spec.max_input_chars), "content": r["content"],
                            "cited": r["cited"] or [], "bibliography": r["bibliography"] or "[]"})
            yield pa.RecordBatch.from_pylist(out, schema=PAPER)
    return run


def split_of(spec: LiteratureSpec, paper_id: str) -> str:
    return "test" if unit(spec.seed, "literature", paper_id) < spec.holdout else "train"


def paper_examples(templates: dict, spec: LiteratureSpec, p: dict) -> list[dict]:
    """title_generation, abstract_completion and intro_to_abstract of one paper (or why not)."""
    split, ids, loc = split_of(spec, p["id"]), [p["id"]], f"paper={p['id']}"
    args = ("literature", TELE_DATA.name, ids, TELE_DATA.name, loc, p["id"])
    title, abstract = (p["title"] or "").strip(), (p["abstract"] or "")[: spec.max_input_chars]
    out = []
    if not title:
        out += [dropped(t, p["id"], "no_title") for t in ("title_generation", "abstract_completion")]
    elif not abstract:
        out += [dropped(t, p["id"], "no_abstract") for t in ("title_generation", "abstract_completion")]
    else:
        out.append(example(templates, "title_generation", *args[:1], abstract, title, split, *args[1:]))
        halves = lit.split_abstract(abstract)
        out.append(example(templates, "abstract_completion", "literature", f"Title: {title}\nAbstract: {halves[0]}",
                           halves[1], split, *args[1:]) if halves else
                   dropped("abstract_completion", p["id"], "one_sentence_abstract"))
    if not abstract or not p["intro"]:
        out.append(dropped("intro_to_abstract", p["id"], "no_abstract" if not abstract else "no_introduction"))
    else:
        out.append(example(templates, "intro_to_abstract", "literature", p["intro"], abstract, split, *args[1:]))
    return out


EDGE = pa.schema([("a", pa.string()), ("b", pa.string()), ("key", pa.string()), ("sentence", pa.string())])


def paper_edges(p: dict, by_arxiv: dict[str, str], by_title: dict[str, str]) -> list[dict]:
    """Edges from paper `p` to the corpus papers its cited bibliography entries name."""
    cited = set(p["cited"] or [])
    out, seen = [], set()
    for entry in orjson.loads(p["bibliography"] or "[]"):
        if entry.get("key") not in cited:
            continue
        ids, keys = lit.entry_candidates(entry.get("text", ""))
        target = next((by_arxiv[i] for i in ids if i in by_arxiv), None) or \
            next((by_title[k] for k in keys if k in by_title), None)
        if target and target != p["id"] and target not in seen:
            seen.add(target)
            sentences = lit.citing_sentences(p["content"], entry["key"])
            out.append({"a": p["id"], "b": target, "key": entry["key"], "sentence": sentences[0] if sentences else None})
    return out


def edge_examples(templates: dict, spec: LiteratureSpec, e: dict, info: dict[str, tuple[str, str]],
                  pool: list[str]) -> list[dict]:
    """citation_link (+ negatives), citation_sentence and citation_recommendation of one edge.
    `info`: id → (title, abstract) of the papers involved; `pool`: every paper id."""
    a, b = e["a"], e["b"]
    unit_id, split, loc = f"{a}>{b}", split_of(spec, a), f"edge={a}>{b}"
    args = (TELE_DATA.name, TELE_DATA.name, loc, unit_id)
    exclude = {a, *e["cited"]}

    def text(k: str) -> str:
        return lit.paper_text(*info[k], spec.max_input_chars // 3)

    out = [example(templates, "citation_link", "literature", f"Paper A:\n{text(a)}\n\nPaper B:\n{text(b)}", "Yes",
                   split, args[0], [a, b], *args[1:])]
    negatives = lit.pick_negatives(f"{spec.seed}:link:{a}>{b}", pool, exclude, spec.link_negatives)
    out += [example(templates, "citation_link", "literature", f"Paper A:\n{text(a)}\n\nPaper B:\n{text(c)}", "No",
                    split, args[0], [a, c], *args[1:]) for c in negatives]
    out.append(example(templates, "citation_sentence", "literature", f"Paper A:\n{text(a)}\n\nPaper B:\n{text(b)}",
                       e["sentence"], split, args[0], [a, b], *args[1:]) if e["sentence"] else
               dropped("citation_sentence", unit_id, "no_citing_sentence"))
    rec = lit.pick_negatives(f"{spec.seed}:rec:{a}>{b}", pool, exclude, spec.recommendation_negatives)
    if len(rec) < spec.recommendation_negatives:
        out.append(dropped("citation_recommendation", unit_id, "too_few_negatives"))
    else:
        candidates = [b, *rec]
        random.Random(f"{spec.seed}:order:{a}>{b}").shuffle(candidates)
        listing = "\n".join(f"{i + 1}. {info[c][0]}" for i, c in enumerate(candidates))
        answer = candidates.index(b) + 1
        out.append(example(templates, "citation_recommendation", "literature",
                           f"Paper A:\n{text(a)}\n\nCandidates:\n{listing}", f"{answer}. {info[b][0]}", split,
                           args[0], [a, b, *rec], *args[1:]))
    return out


def _literature(spark, cfg: lake.LakeConfig, spec: LiteratureSpec, templates: dict) -> tuple[list[DataFrame], int]:
    files = lake.data_files(cfg, TELE_DATA.name, where={"category": "arxiv"})
    gold = lake.map_table(spark, cfg, TELE_DATA.name, None, pa.schema([(c, pa.string()) for c in
                                                                         ("id", "doc_id", "content", "metadata")]),
                          columns=["id", "doc_id", "content", "metadata"], files=files)
    cites = (lake.read_spark(spark, cfg, CLEANED.name, columns=["doc_id", "cited", "bibliography", "cleaned_at"])
             .withColumn("_n", F.row_number().over(Window.partitionBy("doc_id").orderBy(F.col("cleaned_at").desc())))
             .where("_n = 1").drop("_n", "cleaned_at")) if lake.open_table(cfg, CLEANED.name) else None
    joined = gold.join(cites, "doc_id", "left") if cites is not None else gold.select(
        "*", F.lit(None).cast("array<string>").alias("cited"), F.lit(None).cast("string").alias("bibliography"))
    papers = (joined.select("id", "content", "metadata", "cited", "bibliography")
              .mapInArrow(_paper_fn(spec), spark_schema(PAPER)).persist(StorageLevel.MEMORY_AND_DISK))
    per_paper = papers.mapInArrow(flat_map(lambda p: paper_examples(templates, spec, p), ROWS), spark_schema(ROWS))
    keys = papers.select("id", "title", "arxiv_id").collect()
    by_arxiv = {r["arxiv_id"]: r["id"] for r in keys if r["arxiv_id"]}
    by_title = {}
    for r in keys:
        if k := lit.title_key(r["title"]):
            by_title.setdefault(k, r["id"])
    pool = sorted(r["id"] for r in keys)
    edges = (papers.select("id", "content", "cited", "bibliography")
             .mapInArrow(flat_map(lambda p: paper_edges(p, by_arxiv, by_title), EDGE), spark_schema(EDGE))
             .persist(StorageLevel.MEMORY_AND_DISK))
    cited = edges.groupBy("a").agg(F.collect_set("b").alias("cited"))
    info = {r["id"]: (r["title"] or "", r["abstract"] or "")
            for r in papers.select("id", "title", "abstract").collect()}
    # the titles and abstracts of every paper go to the tasks with their edges: a driver-side map is
    # fine for an arXiv corpus (~100k papers, ~150 MB); beyond that, join them per edge instead
    info_b = spark.sparkContext.broadcast(info)

    per_edge = edges.join(cited, "a").mapInArrow(
        flat_map(lambda e: edge_examples(templates, spec, e, info_b.value, pool), ROWS), spark_schema(ROWS))
    n_edges = edges.count()
    log.info("literature: %d papers, %d citation edges between them", len(pool), n_edges)
    return [per_paper, per_edge], n_edges


# -- the build ------------------------------------------------------------------------------------------

def run_instruct(spark, cfg: lake.LakeConfig, spec: InstructSpec, config_json: str = "{}") -> InstructResult:
    templates = load_templates(spec.templates)
    units, files = list_source_inputs([(s.paths, "jsonl") for s in spec.imports], cfg.storage_options)
    have = {t: lake.open_table(cfg, t) for t in (BENCHMARKS.name, TELE_DATA.name, CLEANED.name)}
    if spec.mcq.enabled and have[BENCHMARKS.name] is None:
        raise LookupError(f"instruct.mcq needs {BENCHMARKS.name}: run `telelake benchmarks import` first, or set "
                          f"instruct.mcq.enabled: false")
    if spec.literature.enabled and have[TELE_DATA.name] is None:
        raise LookupError(f"instruct.literature needs {TELE_DATA.name}: run `telelake assemble` first, or set "
                          f"instruct.literature.enabled: false")
    versions = {t: v.version() for t, v in have.items() if v is not None}
    tag = fingerprint(files, repr(spec), json.dumps(versions, sort_keys=True), templates["_version"])
    batch = lake.Batch(app_id=f"telelake.{JOB}.{tag}", version=1)
    done = _previous(cfg, batch)
    if done is not None:
        return done
    frames: list[DataFrame] = []
    if units:
        paths = spark.sparkContext.parallelize(units, len(units))
        frames.append(spark.createDataFrame(paths, "source int, path string").mapInArrow(
            _import_fn(spec.imports, templates, dict(cfg.storage_options)), spark_schema(ROWS)))
    if spec.mcq.enabled:
        items = lake.read_spark(spark, cfg, BENCHMARKS.name).where(F.col("split").isin(spec.mcq.splits))
        if spec.mcq.categories:
            items = items.where(F.col("category").isin(spec.mcq.categories))
        frames.append(items.mapInArrow(flat_map(lambda r: [mcq_example(templates, r)], ROWS), spark_schema(ROWS)))
    n_edges = 0
    if spec.literature.enabled:
        lit_frames, n_edges = _literature(spark, cfg, spec.literature, templates)
        frames += lit_frames
    if not frames:
        raise ValueError("instruct: nothing to build; configure imports, or enable mcq or literature")
    rows = frames[0]
    for f in frames[1:]:
        rows = rows.unionByName(f)
    rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        summaries: dict[str, JobSummary] = {}
        units_seen = rows.groupBy("task", "unit").agg(
            F.max(F.when(F.col("kind") == "example", 1).otherwise(0)).alias("ok"),
            F.max(F.when(F.col("kind") == "reject", F.col("reason"))).alias("rej"),
            F.max(F.when(F.col("kind") == "dropped", F.col("reason"))).alias("why"))
        for r in units_seen.groupBy("task", "ok", "rej", "why").count().collect():
            s = summaries.setdefault(r["task"], JobSummary(job=JOB, source=r["task"]))
            s.read += r["count"]
            if r["ok"]:
                s.kept += r["count"]
            elif r["rej"]:
                s.rejected[r["rej"]] += r["count"]
            else:
                s.dropped[r["why"]] += r["count"]
        counts: dict[str, dict[str, int]] = {}
        for r in rows.where(F.col("kind") == "example").groupBy("task", "split").count().collect():
            counts.setdefault(r["task"], {})[r["split"]] = r["count"]
        for s in summaries.values():
            s.check()
        now = utc_now()
        examples = rows.where(F.col("kind") == "example").dropDuplicates(["instruction_id"]).select(
            *[c for c in INSTRUCTIONS.schema.names if c not in ("build", "built_at")], F.lit(tag).alias("build"),
            F.lit(now).alias("built_at"))
        rejects = quarantine_rows(spark, cfg, rows.where(F.col("kind") == "reject"), job=JOB, source=F.col("source"),
                                  batch=tag, now=now)
        meta = {"telelake.job": JOB, "telelake.config": config_json, "telelake.edges": str(n_edges),
                "telelake.summaries": json.dumps([json.loads(s.to_json()) for s in summaries.values()]),
                "telelake.rows": json.dumps(counts)}
        g = lake.write_dataframe(cfg, examples, INSTRUCTIONS, batch=batch, mode="overwrite", metadata=meta)
        q = lake.write_dataframe(cfg, rejects, REJECTED, batch=batch, metadata=meta)
    finally:
        rows.unpersist()
    tables = {g.table: g.version, q.table: q.version}
    for s in summaries.values():
        s.tables = tables
    return InstructResult(sorted(summaries.values(), key=lambda s: s.source), counts, n_edges, tables)


def _previous(cfg: lake.LakeConfig, batch: lake.Batch) -> InstructResult | None:
    q = lake.committed_version(cfg, REJECTED.name, batch)
    entry = lake.batch_commit(cfg, INSTRUCTIONS.name, batch) if q is not None else None
    if entry is None:
        return None
    tables = {INSTRUCTIONS.name: entry["version"], REJECTED.name: q}
    summaries = sorted((JobSummary.from_json(json.dumps(s)) for s in json.loads(entry["telelake.summaries"])),
                       key=lambda s: s.source)
    for s in summaries:
        s.already_committed, s.tables = True, tables
    return InstructResult(summaries, json.loads(entry["telelake.rows"]), int(entry["telelake.edges"]), tables,
                          already_committed=True)
