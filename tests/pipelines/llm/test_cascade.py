"""Distilled cascade: band choice, the floret classifier, and the Spark job end to end."""
import json

import numpy as np
import pytest

from pipelines.llm import distilled
from pipelines.llm.cascade import ALL_TO_LLM, allowed_losses, choose_band, loss_upper_bound, split_sample

TELECOM = ["The gNB schedules PUSCH grants for each UE in the cell", "LTE handover uses X2 signalling between eNodeB",
           "Massive MIMO beamforming raises spectral efficiency", "The AMF and SMF run in the 5G core network",
           "O-RAN fronthaul splits the radio unit and distributed unit", "PDCP and RLC sit above the MAC layer"]
OTHER = ["Cast iron pans need oil after washing, says the LTE shop", "The marathon route passes the 5G store",
         "Sourdough starter needs flour and water daily near the cell tower", "The chess opening favours white, says the Wi-Fi cafe",
         "The river floods each spring near the base station", "Knit the scarf with two needles and wool during the VoIP call"]


def test_band_meets_recall_and_precision_targets_and_is_narrowest():
    rng = np.random.default_rng(0)
    judge = rng.random(4000) < 0.5
    p = np.clip(np.where(judge, rng.normal(0.75, 0.15, 4000), rng.normal(0.3, 0.15, 4000)), 0, 1)
    band = choose_band(p, judge, max_recall_loss=0.02, min_precision=0.9)
    assert band.recall_loss <= 0.02 and band.auto_keep_precision >= 0.9 and not band.note
    assert 0 < band.lo <= band.hi <= 1 and 0 < band.band_share < 1
    # the bound: with ~2,000 positives the band may drop ~1.6% of them, not the full 2%
    assert allowed_losses(int(judge.sum()), 0.02, 0.9) == int(np.sum(p[judge] < band.lo))
    assert 0.01 < band.recall_loss < 0.02
    looser = choose_band(p, judge, max_recall_loss=0.10, min_precision=0.8)
    assert looser.band_share < band.band_share  # looser targets: fewer LLM calls
    with pytest.raises(ValueError, match="no judge positives"):
        choose_band(p, np.zeros(4000, bool), 0.02, 0.9)
    # 60 documents hold too few positives to show a 2-point loss: nothing is decided automatically
    few = choose_band(p[:60], judge[:60], 0.02, 0.9)
    assert (few.lo, few.hi, few.band_share) == (0.0, ALL_TO_LLM, 1.0) and "that needs 114" in few.note


def test_clopper_pearson_bound():
    assert loss_upper_bound(3, 10, 0.95) == pytest.approx(0.6066, abs=1e-4)   # textbook value
    assert loss_upper_bound(0, 114, 0.9) <= 0.02 < loss_upper_bound(0, 113, 0.9)
    assert allowed_losses(113, 0.02, 0.9) is None and allowed_losses(114, 0.02, 0.9) == 0
    assert allowed_losses(1000, 0.02, 0.9) == 13                               # not 20: the sample may be unlucky


def test_split_keeps_the_class_mix_held_out_and_balances_training():
    labels = np.array([True] * 90 + [False] * 910)
    train, hold = split_sample(labels, 0.25, seed=3)
    assert not set(train) & set(hold) and len(set(train)) + len(hold) == 1000
    assert labels[hold].sum() == 22 and (~labels[hold]).sum() == 228        # the pool's 9% positives, held out
    assert labels[train].sum() == (~labels[train]).sum() == 682            # positives repeated to balance
    assert (train, hold) == split_sample(labels, 0.25, seed=3)             # seeded
    with pytest.raises(ValueError, match="1 positive and 9 negative"):
        split_sample(np.array([True] + [False] * 9), 0.25, seed=0)


def test_classifier_learns_and_predicts(tmp_path):
    texts = [f"{t} number {i}" for i in range(20) for t in TELECOM + OTHER]
    labels = [t in TELECOM for i in range(20) for t in TELECOM + OTHER]
    params = distilled.ClassifierParams(epoch=25, dim=16)
    distilled.train(texts, labels, params, str(tmp_path / "m.bin"))
    model = distilled.load(str(tmp_path / "m.bin"))
    p = distilled.predict_yes(model, [f"{t} version 99" for t in TELECOM + OTHER], params.max_chars)
    assert (p[:6] > 0.5).all() and (p[6:] < 0.5).all() and p[:6].mean() - p[6:].mean() > 0.5
    assert distilled.features("See TS 38.331 and Wi-Fi\n6! End. - x", 100).split() == \
        ["see", "ts", "38.331", "and", "wi-fi", "6", "end", "x"]
    with pytest.raises(ValueError, match="only positive judge labels"):
        distilled.train(["a", "b"], [True, True], params, str(tmp_path / "x.bin"))


@pytest.mark.slow
def test_cascade_job_end_to_end(spark, tmp_path):
    from jobs.cascade import CascadeJobConfig
    from jobs.cascade import run as run_cascade
    from jobs.ingest import IngestJobConfig
    from jobs.ingest import run as run_ingest
    from jobs.judge import JudgeJobConfig
    from jobs.judge import run as run_judge
    from jobs.keyword_filter import KeywordJobConfig
    from jobs.keyword_filter import run as run_keywords
    from pipelines import config, lake
    from tests.conftest import ROOT

    raw = tmp_path / "raw"
    raw.mkdir()
    docs = [f"{t}, note {i}." for i in range(5) for t in TELECOM + OTHER]
    (raw / "p.jsonl").write_text("".join(json.dumps({"id": str(n), "text": d}) + "\n" for n, d in enumerate(docs)))
    base = {"lake": {"root": str(tmp_path / "lake")}, "spark": {"log_level": "ERROR"}}
    run_ingest(config.from_dict(IngestJobConfig, {**base, "ingest": {"source": "web", "category": "web",
                                                                     "format": "jsonl", "paths": [str(raw)]}}), spark)
    (kw,) = run_keywords(config.from_dict(KeywordJobConfig, {**base, "keywords": {
        "sources": ["web"], "lexicon": str(ROOT / "conf" / "lexicon" / "telecom_v1.yaml")}}), spark)
    assert kw.kept == 60
    judge = {"sources": ["web"], "prompts": str(ROOT / "conf" / "prompts" / "tele_llms_v1.yaml"), "threshold": 0.5}
    llm = {"kind": "transformers", "max_context_tokens": 256}
    (alone,) = run_judge(config.from_dict(JudgeJobConfig, {**base, "judge": judge, "llm": llm}), spark)
    p_yes = [r["p_yes"] for r in lake.read_arrow(config.from_dict(JudgeJobConfig, {**base, "judge": judge}).lake,
                                                 "silver.relevance").to_pylist()]
    judge["threshold"] = float(np.median(p_yes))  # both judge classes in the sample, whatever the model says
    cfg = config.from_dict(CascadeJobConfig, {**base, "judge": judge, "llm": llm, "report_dir": str(tmp_path / "rep"),
                                              "cascade": {"sample_size": 40, "holdout_share": 0.5, "max_recall_loss": 0.2,
                                                          "recall_confidence": 0.5,
                                                          "classifier": {"epoch": 10, "dim": 16}}})
    (res,) = run_cascade(cfg, spark)
    assert res.pool == 60 and res.sample_judged == 40
    assert res.llm_calls == 0  # the judge already scored every document: all from the result store
    rows = lake.read_arrow(cfg.lake, "silver.cascade").to_pylist()
    assert len(rows) == 60 and {r["classifier_id"] for r in rows} == {res.classifier_id}
    assert sum(r["band"] == "sample" for r in rows) == 40  # the judged sample keeps the judge's verdicts
    for r in rows:
        if r["band"] != "sample":
            assert (r["p_clf"] >= res.band.hi) == (r["band"] == "auto_keep")
            assert (r["p_clf"] < res.band.lo) == (r["band"] == "auto_drop")
        assert (r["p_yes"] is not None) == (r["band"] in ("llm", "sample"))
        if r["p_yes"] is not None:
            assert r["verdict"] == ("keep" if r["p_yes"] >= judge["threshold"] else "drop")
    assert res.band_judged == sum(r["band"] == "llm" for r in rows)
    assert res.savings == pytest.approx(60 / (40 + res.band_judged))
    assert res.summary.read == 60 == res.summary.kept + res.summary.n_dropped + res.summary.n_rejected
    report = (tmp_path / "rep" / "web" / "report.md").read_text()
    assert "held-out recall loss" in report and (tmp_path / "rep" / "web" / "funnel.png").exists()
    (again,) = run_cascade(cfg, spark)
    assert again.classifier_id == res.classifier_id and len(lake.read_arrow(cfg.lake, "silver.cascade")) == 60
