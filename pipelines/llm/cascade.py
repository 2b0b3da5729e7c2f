"""Distilled cascade: the LLM judge labels a sample of the pool, a fastText-format classifier
learns those labels, classifies the whole pool in Spark, and only its uncertain band goes to
the LLM. The band is chosen on held-out judged documents: `lo` so that at most
`max_recall_loss` of the judge's positives fall below it, `hi` so that automatic keeps agree
with the judge at `min_auto_keep_precision` or better.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
from pyspark.sql import functions as F

from pipelines import lake
from pipelines.ingest.parse import utc_now
from pipelines.lake.spark_types import spark_schema
from pipelines.lake.storage import filesystem
from pipelines.llm import distilled
from pipelines.llm.backend import BackendConfig
from pipelines.llm.judge import JudgeSpec, judge_frame, pool_documents, prompt_chars
from pipelines.llm.models import resolve
from pipelines.llm.prompts import load_prompt_set
from pipelines.summary import JobSummary
from schemas import CASCADE

log = logging.getLogger(__name__)
JOB = "cascade"


@dataclass(frozen=True, kw_only=True)
class CascadeSpec:
    sample_size: int = 2000
    """Pool documents the LLM judges to make the training and held-out data."""
    holdout_share: float = 0.25
    """Share of each judge class kept out of training: the held-out set keeps the pool's class mix,
    so the recall and precision measured on it are the pool's."""
    max_recall_loss: float = 0.02
    """At most this share of the judge's positives may be dropped automatically (below lo)."""
    min_auto_keep_precision: float = 0.9
    """Automatic keeps (p_clf >= hi) must agree with the judge this often on held-out documents."""
    recall_confidence: float = 0.9
    """lo may sit above k held-out positives only if the one-sided Clopper-Pearson bound on the loss
    rate, at this confidence, stays within max_recall_loss. Too few held-out positives to show even
    k = 0 (114 at 2% and 0.9): nothing is decided automatically, every document goes to the LLM."""
    classifier: distilled.ClassifierParams = field(default_factory=distilled.ClassifierParams)
    seed: int = 0


@dataclass(frozen=True)
class Band:
    lo: float
    hi: float
    recall_loss: float
    """Held-out share of judge positives below lo."""
    auto_keep_precision: float
    """Held-out agreement of automatic keeps with the judge (1.0 when there are none)."""
    band_share: float
    """Held-out share of documents in [lo, hi): those still sent to the LLM."""
    note: str = ""
    """Why the band is wider than the targets alone would make it, if it is."""


ALL_TO_LLM = 1.0 + 1e-9


def loss_upper_bound(k: int, n: int, confidence: float) -> float:
    """Pure: one-sided Clopper-Pearson upper bound on a rate after k events in n trials."""
    if k >= n:
        return 1.0

    def cdf(p: float) -> float:  # P(X <= k), X ~ Binomial(n, p), in log space
        if p <= 0.0:
            return 1.0
        if p >= 1.0:
            return 0.0
        return sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                            + i * math.log(p) + (n - i) * math.log1p(-p)) for i in range(k + 1))

    lo, hi = k / n, 1.0
    for _ in range(60):  # cdf falls as p grows: find cdf(p) = 1 - confidence
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) > 1 - confidence else (lo, mid)
    return hi


def allowed_losses(n: int, max_recall_loss: float, confidence: float) -> int | None:
    """Pure: the most held-out positives lo may sit above, or None if even one is too many to show."""
    k = -1
    while k + 1 < n and loss_upper_bound(k + 1, n, confidence) <= max_recall_loss:
        k += 1
    return k if k >= 0 else None


def choose_band(p_clf: np.ndarray, judge: np.ndarray, max_recall_loss: float, min_precision: float,
                confidence: float = 0.9) -> Band:
    """Pure: the narrowest band meeting both targets on held-out scores and judge labels, with the
    recall target held at `confidence` (the held-out set is a sample of the pool)."""
    p_clf, judge = np.asarray(p_clf, float), np.asarray(judge, bool)
    pos = np.sort(p_clf[judge])
    if len(pos) == 0:
        raise ValueError("no judge positives among the held-out documents: judge a larger sample")
    k = allowed_losses(len(pos), max_recall_loss, confidence)
    if k is None:
        need = math.ceil(math.log(1 - confidence) / math.log(1 - max_recall_loss))
        return Band(lo=0.0, hi=ALL_TO_LLM, recall_loss=0.0, auto_keep_precision=1.0, band_share=1.0,
                    note=f"{len(pos)} held-out judge positives cannot show a recall loss within {max_recall_loss:g} "
                         f"at confidence {confidence:g} (that needs {need}): every document goes to the LLM; "
                         f"judge a larger sample")
    # lo just above the k lowest-scored positives: at most k fall below it
    lo = float(pos[k])
    hi = ALL_TO_LLM  # nothing kept automatically unless a threshold is precise enough
    for t in np.unique(p_clf)[::-1]:
        keep = p_clf >= t
        if judge[keep].mean() >= min_precision:
            hi = float(t)
        else:
            break
    hi = max(hi, lo)
    keep = p_clf >= hi
    return Band(lo=lo, hi=hi, recall_loss=float(np.mean(pos < lo)),
                auto_keep_precision=float(judge[keep].mean()) if keep.any() else 1.0,
                band_share=float(np.mean((p_clf >= lo) & (p_clf < hi))))


def split_sample(labels, holdout_share: float, seed: int) -> tuple[list[int], list[int]]:
    """Pure: (training indices, held-out indices) of a judged sample.

    Held-out: `holdout_share` of each class, so it keeps the sample's (the pool's) class mix.
    Training: the rest, the smaller class repeated at random until both classes are equal, so
    the classifier does not learn the prior instead of the text."""
    labels = np.asarray(labels, bool)
    rng = np.random.default_rng(seed)
    pos, neg = rng.permutation(np.flatnonzero(labels)), rng.permutation(np.flatnonzero(~labels))
    if min(len(pos), len(neg)) < 2:
        raise ValueError(f"the judged sample has {len(pos)} positive and {len(neg)} negative documents: both "
                         f"classes need at least 2; raise cascade.sample_size or check the judge threshold")
    kp = min(len(pos) - 1, max(1, round(len(pos) * holdout_share)))  # each class keeps one to train on
    kn = min(len(neg) - 1, max(1, round(len(neg) * holdout_share)))
    hold = sorted(pos[:kp].tolist() + neg[:kn].tolist())
    tp, tn = pos[kp:], neg[kn:]
    small, big = (tp, tn) if len(tp) < len(tn) else (tn, tp)
    train = np.concatenate([big, small, rng.choice(small, len(big) - len(small), replace=True)])
    return rng.permutation(train).tolist(), hold


def fit(texts: list[str], labels: list[bool], spec: CascadeSpec, model_path: str):
    """Pure apart from writing the model file: split, train, choose the band on held-out documents.
    Returns (model, band, held-out agreement at p_clf >= 0.5, n_train distinct, n_held_out)."""
    train, hold = split_sample(labels, spec.holdout_share, spec.seed)
    distilled.train([texts[i] for i in train], [labels[i] for i in train], spec.classifier, model_path)
    model = distilled.load(model_path)
    p_hold = distilled.predict_yes(model, [texts[i] for i in hold], spec.classifier.max_chars)
    y_hold = np.array([labels[i] for i in hold])
    band = choose_band(p_hold, y_hold, spec.max_recall_loss, spec.min_auto_keep_precision, spec.recall_confidence)
    return model, band, float(np.mean((p_hold >= 0.5) == y_hold)), len(set(train)), len(hold)


@dataclass
class CascadeResult:
    summary: JobSummary
    classifier_id: str
    band: Band
    pool: int
    sample_judged: int
    band_judged: int
    llm_calls: int
    """Model calls this run made (cached store results excluded)."""
    agreement: float
    """Held-out accuracy of p_clf >= 0.5 against the judge."""
    savings: float
    """pool / (sample judged + band judged): how many times fewer LLM judgements than judging all."""
    report: str


def run_cascade(spark, cfg: lake.LakeConfig, judge: JudgeSpec, spec: CascadeSpec, backend: BackendConfig,
                report_dir: str, config_json: str = "{}") -> list[CascadeResult]:
    model = resolve(backend.model)
    prompts = load_prompt_set(judge.prompts)
    return [_cascade_source(spark, cfg, judge, spec, backend, model, prompts, source, report_dir, config_json)
            for source in judge.sources]


def _cascade_source(spark, cfg, judge: JudgeSpec, spec: CascadeSpec, backend, model, prompts, source: str,
                    report_dir: str, config_json: str) -> CascadeResult:
    docs = pool_documents(spark, cfg, judge, source, max(prompt_chars(prompts, judge), spec.classifier.max_chars)).persist()
    pool = docs.count()
    # 1. the judge labels a seeded random sample of the pool (through the result store)
    sample = (docs.withColumn("_h", F.sha2(F.concat(F.lit(f"{spec.seed}:"), F.col("doc_id")), 256))
              .orderBy("_h").limit(spec.sample_size).drop("_h"))
    rows, s_stats, s_requests = judge_frame(spark, cfg, judge, backend, model, prompts, sample)
    judged = rows.where(F.col("p_yes").isNotNull()).select("doc_id", "p_yes").join(sample, "doc_id").collect()
    s_requests.unpersist()
    judged = sorted(judged, key=lambda r: r["doc_id"])  # collect order varies; the split must not
    texts = [r["text"] for r in judged]
    labels = [r["p_yes"] >= judge.threshold for r in judged]
    # 2. train on part of the judged sample, choose the band on the rest
    classifier_id = hashlib.sha256(json.dumps([prompts.version, model.revision, judge.threshold,
                                               sorted(r["doc_id"] for r in judged), asdict(spec)],
                                              default=str).encode()).hexdigest()[:12]
    model_uri = f"{cfg.root.rstrip('/')}/_telelake/models/cascade/{classifier_id}.bin"
    local = os.path.join(tempfile.mkdtemp(prefix="telelake-cascade-"), os.path.basename(model_uri))
    try:
        _, band, agreement, n_train, n_hold = fit(texts, labels, spec, local)
    except ValueError as exc:
        raise ValueError(f"cascade {source}: {exc} (threshold {judge.threshold})") from exc
    _store_model(cfg, local, model_uri)
    log.info("cascade %s: classifier %s trained on %d, held out %d; agreement %.3f; band [%.3f, %.3f) %s",
             source, classifier_id, n_train, n_hold, agreement, band.lo, band.hi, band.note)
    # 3. classify the whole pool in Spark; 4. the band goes to the judge
    scored = docs.mapInArrow(_score_fn(model_uri, dict(cfg.storage_options), spec.classifier.max_chars, band),
                             "doc_id string, source string, category string, text string, p_clf double, band string")
    # the judged sample keeps the judge's verdicts (already paid for) whatever the classifier says
    scored = (scored.join(sample.select("doc_id", F.lit(True).alias("_sampled")), "doc_id", "left")
              .withColumn("band", F.when(F.col("_sampled"), F.lit("sample")).otherwise(F.col("band")))
              .drop("_sampled").persist())
    in_band = scored.where(F.col("band").isin("llm", "sample")).select("doc_id", "source", "category", "text")
    b_rows, b_stats, b_requests = judge_frame(spark, cfg, judge, backend, model, prompts, in_band)
    decided = (scored.join(b_rows.select("doc_id", "p_yes", "verdict", F.col("reason").alias("llm_reason")), "doc_id", "left")
               .mapInArrow(_decide_fn(classifier_id), spark_schema(CASCADE.schema)))
    batch = lake.Batch(f"telelake.{JOB}.{source}.{classifier_id}", lake.load(cfg, "silver.keyword_hits").version())
    if lake.open_table(cfg, CASCADE.name) is not None:
        done = (lake.read_spark(spark, cfg, CASCADE.name, columns=["doc_id", "source", "classifier_id"])
                .where((F.col("source") == source) & (F.col("classifier_id") == classifier_id)).select("doc_id"))
        decided = decided.join(done, "doc_id", "left_anti")
    lake.write_dataframe(cfg, decided, CASCADE, batch=batch,
                         metadata={"telelake.job": JOB, "telelake.config": config_json,
                                   "telelake.band": json.dumps(asdict(band))})
    band_n = scored.where(F.col("band") == "llm").count()  # judged beyond the sample
    b_requests.unpersist()
    scored.unpersist()
    docs.unpersist()
    summary = _summary(cfg, source, classifier_id)
    result = CascadeResult(summary=summary, classifier_id=classifier_id, band=band, pool=pool,
                           sample_judged=len(judged), band_judged=band_n,
                           llm_calls=s_stats.model_calls + b_stats.model_calls, agreement=agreement,
                           savings=pool / max(1, min(pool, spec.sample_size) + band_n), report="")
    result.report = _write_report(report_dir, source, result, n_train, n_hold, judge.threshold)
    return result


def _store_model(cfg, local: str, model_uri: str) -> None:
    """Copy the trained model into the lake, where the Spark tasks read it."""
    fs, path = filesystem(model_uri, cfg.storage_options)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with open(local, "rb") as src, fs.open_output_stream(path) as dst:
        dst.write(src.read())


def _local_model(model_uri: str, storage: dict) -> str:
    fs, path = filesystem(model_uri, storage)
    if not model_uri.startswith(("s3://", "s3a://", "gs://", "abfs://", "az://")):
        return path
    local = os.path.join(tempfile.gettempdir(), "telelake-" + os.path.basename(path))
    if not os.path.exists(local):
        with fs.open_input_stream(path) as src, open(local + ".part", "wb") as dst:
            dst.write(src.read())
        os.replace(local + ".part", local)
    return local


def _score_fn(model_uri: str, storage: dict, max_chars: int, band: Band):
    def run(batches):
        model = distilled.load(_local_model(model_uri, storage))
        for b in batches:
            texts = b.column("text").to_pylist()
            p = distilled.predict_yes(model, texts, max_chars)
            which = np.where(p >= band.hi, "auto_keep", np.where(p < band.lo, "auto_drop", "llm"))
            yield pa.RecordBatch.from_arrays([b.column("doc_id"), b.column("source"), b.column("category"),
                                              b.column("text"), pa.array(p, pa.float64()), pa.array(which.tolist())],
                                             names=["doc_id", "source", "category", "text", "p_clf", "band"])

    return run


def _decide_fn(classifier_id: str):
    def run(batches):
        now = utc_now()
        for b in batches:
            out = []
            for r in b.to_pylist():
                if r["band"] in ("llm", "sample"):
                    verdict = r["verdict"] or "error"
                    reason = r["llm_reason"] or "no_result"
                else:
                    verdict, reason = ("keep", "auto_keep") if r["band"] == "auto_keep" else ("drop", "auto_drop")
                out.append({"doc_id": r["doc_id"], "source": r["source"], "category": r["category"],
                            "classifier_id": classifier_id, "p_clf": r["p_clf"], "band": r["band"],
                            "p_yes": r["p_yes"] if r["band"] in ("llm", "sample") else None, "verdict": verdict,
                            "reason": reason, "decided_at": now})
            if out:
                yield pa.RecordBatch.from_pylist(out, schema=CASCADE.schema)

    return run


def _summary(cfg, source: str, classifier_id: str) -> JobSummary:
    import pyarrow.compute as pc

    summary = JobSummary(job=JOB, source=source)
    table = lake.dataset(cfg, CASCADE.name).to_table(
        columns=["verdict", "reason"], filter=(pc.field("source") == source) & (pc.field("classifier_id") == classifier_id))
    summary.count_verdicts(table)
    summary.tables = {CASCADE.name: lake.load(cfg, CASCADE.name).version()}
    return summary.check()


def _write_report(report_dir: str, source: str, r: CascadeResult, n_train: int, n_hold: int, threshold: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = os.path.join(report_dir, source)
    os.makedirs(out, exist_ok=True)
    stages = [("keyword pool", r.pool), ("judged sample", r.sample_judged), ("sent to LLM (band)", r.band_judged),
              ("kept", r.summary.kept)]
    fig, ax = plt.subplots(figsize=(6, 3), dpi=120)
    ax.barh([s for s, _ in stages][::-1], [n for _, n in stages][::-1], color="#4c72b0")
    for i, (_, n) in enumerate(stages[::-1]):
        ax.text(n, i, f" {n:,}", va="center", fontsize=8)
    ax.set(title=f"cascade funnel: {source}", xlabel="documents")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "funnel.png"))
    plt.close(fig)
    b = r.band
    lines = [f"# Distilled cascade: {source}", "",
             f"Classifier `{r.classifier_id}` (fastText format, floret) trained on {n_train} judged documents "
             f"(the smaller judge class repeated to balance), {n_hold} held out with the pool's class mix. "
             f"Judge threshold {threshold:g}.", "", *([f"**Note:** {r.band.note}.", ""] if r.band.note else []),
             "| measure | value |", "|---|---|",
             f"| held-out agreement with the judge (p_clf ≥ 0.5) | {r.agreement:.3f} |",
             f"| band [lo, hi) | [{b.lo:.3f}, {b.hi:.3f}) |",
             f"| held-out recall loss vs the judge alone | {b.recall_loss:.3f} |",
             f"| held-out precision of automatic keeps | {b.auto_keep_precision:.3f} |",
             f"| pool documents | {r.pool:,} |",
             f"| LLM judgements: sample + band (beyond the sample) | {r.sample_judged:,} + {r.band_judged:,} |",
             f"| LLM judgements saved vs judging the pool | {r.savings:.2f}× fewer |",
             f"| model calls made by this run (store cache excluded) | {r.llm_calls:,} |",
             f"| final: {r.summary.line()} | |", "", "![funnel](funnel.png)", ""]
    path = os.path.join(out, "report.md")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    return path
