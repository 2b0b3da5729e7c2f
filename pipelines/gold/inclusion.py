"""Which documents of a source enter Tele-Data: the stage verdicts and thresholds named in conf.

A decision frame has one row per document the source read (bronze), with the first stage that
dropped it (`dropped_at`, `reason`; both null when admitted) and the stage details that go into the
gold lineage. Stages, in order: keyword (silver.keyword_hits), relevance (silver.relevance or
silver.cascade), clean (silver.cleaned), length. Only small columns are read: no text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipelines import lake
from schemas import CASCADE, CLEANED, KEYWORD_HITS, RELEVANCE, sources_table

STAGES = ("keyword", "relevance", "clean", "length", "dedup")
"""Funnel stages after `read`, in order; a document dropped at one never reaches the next. A source
goes through the ones its conf applies (`GoldSource.stages`) and then dedup."""


@dataclass(frozen=True, kw_only=True)
class GoldSource:
    """One source of Tele-Data and the verdicts that admit its documents."""

    source: str
    input: Literal["documents", "cleaned"] = "documents"
    """documents: bronze.<source> text (Wikipedia, web); cleaned: silver.cleaned LaTeX of
    bronze.<source>_sources (arXiv, 3GPP)."""
    keyword: bool = True
    """documents only: require keep in silver.keyword_hits."""
    lexicon_version: str | None = None
    """Which keyword verdicts; default: each document's latest scan."""
    relevance: Literal["judge", "cascade", "none"] = "judge"
    """documents only: require keep in silver.relevance (LLM judge) or silver.cascade (distilled classifier)."""
    model: str | None = None
    """judge: which model's verdicts (silver.relevance.model); default: each document's latest judgement."""
    prompt_version: str | None = None
    min_p_yes: float | None = None
    """judge: re-decide from P(Yes) at this threshold instead of the stored verdict."""
    rules_version: str | None = None
    """cleaned only: which cleaning rules' rows; default: each document's latest cleaning."""

    def __post_init__(self) -> None:
        if self.input == "cleaned" and (self.keyword or self.relevance != "none"):
            object.__setattr__(self, "keyword", False)
            object.__setattr__(self, "relevance", "none")
        if self.min_p_yes is not None and not 0.0 <= self.min_p_yes <= 1.0:
            raise ValueError(f"min_p_yes {self.min_p_yes} must be within [0, 1]")

    @property
    def stages(self) -> tuple[str, ...]:
        """The inclusion stages this source goes through, in order (dedup follows)."""
        return tuple(s for s, on in (("keyword", self.keyword), ("relevance", self.relevance != "none"),
                                     ("clean", self.input == "cleaned"), ("length", True)) if on)

    @property
    def table(self) -> str:
        """The table the source's documents are read from (the funnel's `read`)."""
        return sources_table(self.source) if self.input == "cleaned" else f"bronze.{self.source}"


@dataclass(frozen=True, kw_only=True)
class LengthBounds:
    min_chars: int = 200
    """Shorter documents are dropped (too_short): stubs, redirects, empty cleanings."""
    max_chars: int = 20_000_000
    """Longer ones are dropped (too_long): a runaway concatenation, not a document."""


def _latest(df: DataFrame, ts: str) -> DataFrame:
    w = Window.partitionBy("doc_id").orderBy(F.col(ts).desc(), *[F.col(c).desc() for c in df.columns if c != "doc_id"])
    return df.withColumn("_n", F.row_number().over(w)).where(F.col("_n") == 1).drop("_n", ts)


def _read(spark, cfg: lake.LakeConfig, table: str, columns: list[str], **where) -> DataFrame | None:
    if lake.open_table(cfg, table) is None:
        return None
    return lake.read_spark(spark, cfg, table, columns=columns, files=lake.data_files(cfg, table, where=where or None))


def decisions(spark, cfg: lake.LakeConfig, src: GoldSource, bounds: LengthBounds) -> DataFrame:
    """doc_id, key, chars, dropped_at, reason, lineage (JSON: table, version, source file and location,
    each stage's verdict)."""
    read = _read(spark, cfg, src.table, ["doc_id", "source_file", "source_location"] +
                 (["text_chars"] if src.input == "documents" else []))
    if read is None:
        raise LookupError(f"{src.table} does not exist in {cfg.root}; ingest source {src.source!r} first "
                          f"or remove it from assemble.sources")
    reasons: list[tuple[str, Column]] = []
    stages: list[Column] = []
    df = read
    if src.keyword:
        kw = _read(spark, cfg, KEYWORD_HITS.name, ["doc_id", "lexicon_version", "verdict", "reason", "scanned_at"],
                   source=src.source)
        if kw is None:
            raise LookupError(f"{KEYWORD_HITS.name} does not exist; run `telelake keywords` or set keyword: false "
                              f"for source {src.source!r}")
        if src.lexicon_version:
            kw = kw.where(F.col("lexicon_version") == src.lexicon_version)
        kw = _latest(kw, "scanned_at").select("doc_id", F.struct("lexicon_version", "verdict", "reason").alias("keyword"))
        df = df.join(kw, "doc_id", "left")
        reasons.append(("keyword", F.when(F.col("keyword").isNull(), "not_scanned")
                        .when(F.col("keyword.verdict") != "keep", F.col("keyword.reason"))))
        stages.append(F.col("keyword"))
    if src.relevance != "none":
        df = df.join(_relevance(spark, cfg, src), "doc_id", "left")
        reasons.append(("relevance", F.when(F.col("relevance").isNull(), "not_judged")
                        .when(F.col("relevance.verdict") == "error", F.concat(F.lit("error:"), F.col("relevance.reason")))
                        .when(F.col("relevance.verdict") != "keep", F.col("relevance.reason"))))
        stages.append(F.col("relevance"))
    if src.input == "cleaned":
        cl = _read(spark, cfg, CLEANED.name, ["doc_id", "source", "rules_version", "verdict", "reason", "text_chars",
                                              "cleaned_at"])
        if cl is None:
            raise LookupError(f"{CLEANED.name} does not exist; run `telelake clean` for source {src.source!r}")
        cl = cl.where(F.col("source") == src.source).drop("source")
        if src.rules_version:
            cl = cl.where(F.col("rules_version") == src.rules_version)
        cl = _latest(cl, "cleaned_at").select("doc_id", "text_chars",
                                              F.struct("rules_version", "verdict", "reason").alias("clean"))
        df = df.join(cl, "doc_id", "left")
        reasons.append(("clean", F.when(F.col("clean").isNull(), "not_cleaned")
                        .when(F.col("clean.verdict") != "keep", F.col("clean.reason"))))
        stages.append(F.col("clean"))
        key = F.concat_ws("\0", "doc_id", F.col("clean.rules_version"))
    else:
        key = F.col("doc_id")
    chars = F.coalesce(F.col("text_chars"), F.lit(0)).cast("long")
    reasons.append(("length", F.when(chars < bounds.min_chars, "too_short").when(chars > bounds.max_chars, "too_long")))
    dropped_at = F.coalesce(*[F.when(r.isNotNull(), F.lit(s)) for s, r in reasons], F.lit(None).cast("string"))
    reason = F.coalesce(*[r for _, r in reasons], F.lit(None).cast("string"))
    lineage = lineage_json(src.table, lake.load(cfg, src.table).version(), F.struct(*stages))
    return df.select("doc_id", key.alias("key"), chars.alias("chars"), dropped_at.alias("dropped_at"),
                     reason.alias("reason"), lineage.alias("lineage"))


def lineage_json(table: str, version: int, stages: Column) -> Column:
    return F.to_json(F.struct(F.lit(table).alias("table"), F.lit(version).alias("table_version"), "source_file",
                              "source_location", stages.alias("stages")))


def _relevance(spark, cfg: lake.LakeConfig, src: GoldSource) -> DataFrame:
    if src.relevance == "cascade":
        cas = _read(spark, cfg, CASCADE.name, ["doc_id", "classifier_id", "p_clf", "band", "verdict", "reason",
                                               "decided_at"], source=src.source)
        if cas is None:
            raise LookupError(f"{CASCADE.name} does not exist; run `telelake cascade` or set relevance: judge/none "
                              f"for source {src.source!r}")
        return _latest(cas, "decided_at").select(
            "doc_id", F.struct(F.lit("cascade").alias("by"), "classifier_id", "p_clf", "band", "verdict", "reason")
            .alias("relevance"))
    rel = _read(spark, cfg, RELEVANCE.name, ["doc_id", "model", "prompt_version", "p_yes", "threshold", "verdict",
                                             "reason", "judged_at"], source=src.source)
    if rel is None:
        raise LookupError(f"{RELEVANCE.name} does not exist; run `telelake judge` or set relevance: none for "
                          f"source {src.source!r}")
    if src.model:
        rel = rel.where(F.col("model") == src.model)
    if src.prompt_version:
        rel = rel.where(F.col("prompt_version") == src.prompt_version)
    if src.min_p_yes is not None:
        t = F.lit(src.min_p_yes)
        rel = (rel.withColumn("verdict", F.when(F.col("verdict") == "error", "error")
                              .when(F.col("p_yes") >= t, "keep").otherwise("drop"))
               .withColumn("reason", F.when(F.col("verdict") == "error", F.col("reason"))
                           .when(F.col("verdict") == "keep", "llm_yes").otherwise("llm_no"))
               .withColumn("threshold", t))
    return _latest(rel, "judged_at").select(
        "doc_id", F.struct(F.lit("judge").alias("by"), "model", "prompt_version", "p_yes", "threshold", "verdict",
                           "reason").alias("relevance"))
