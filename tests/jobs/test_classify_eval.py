"""`telelake classify eval` with the embedded model on a small labelled file."""
import json

import pytest

from jobs.classify_eval import LabelsError, read_labels
from jobs.classify_eval import main as classify_eval
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_eval_writes_report_and_curve_and_names_bad_rows(tmp_path, monkeypatch):
    labels = tmp_path / "labels.jsonl"
    rows = [{"text": "The gNB terminates the NG interface towards the 5G core.", "label": 1},
            {"text": "LTE handover between eNodeB cells uses X2 signalling.", "label": "yes"},
            {"text": "Cast iron pans need oil after washing.", "label": 0},
            {"text": "The marathon winner finished in two hours.", "label": "no"},
            {"text": "no label"}, {"label": 1}]
    labels.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    monkeypatch.chdir(ROOT)
    out = classify_eval(["--labels", str(labels), "--out", str(tmp_path / "rep"), "--set", "llm.max_context_tokens=256"])
    report = out["report"]
    assert report.n == 4 and report.positives == 2 and report.at_target_recall is not None
    assert out["problems"] == ["line 5: no label", "line 6: needs a text or a doc_id", "line 7: malformed JSON (Expecting value)"]
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| threshold | precision | recall | F1 |" in md and "3 label rows skipped" in md
    assert (tmp_path / "rep" / "pr_curve.png").stat().st_size > 1000


def test_unusable_labels_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "l.csv"
    bad.write_text("text,label\nhello,maybe\n")
    with pytest.raises(LabelsError, match="no usable labelled rows .*label 'maybe'"):
        read_labels(bad)
    with pytest.raises(LabelsError, match="not found"):
        read_labels(tmp_path / "missing.jsonl")
