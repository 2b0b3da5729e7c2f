import numpy as np
import pytest

from eval.classification import evaluate, plot_pr, point


def test_point_counts_and_edge_cases():
    s = np.array([0.9, 0.8, 0.4, 0.3, 0.1])
    y = np.array([True, False, True, False, True])
    p = point(s, y, 0.5)
    assert (p.precision, round(p.recall, 4)) == (0.5, 0.3333)
    assert round(p.f1, 4) == 0.4
    assert point(s, y, 2.0).precision == 1.0 and point(s, y, 2.0).recall == 0.0


def test_threshold_at_target_recall_is_the_highest_that_reaches_it(tmp_path):
    s = [0.95, 0.9, 0.7, 0.6, 0.5, 0.2]
    y = [1, 1, 0, 1, 0, 1]
    r = evaluate(s, y, threshold=0.8, target_recall=0.75)
    assert (r.at_threshold.precision, r.at_threshold.recall) == (1.0, 0.5)
    assert r.at_target_recall.threshold == 0.6 and r.at_target_recall.recall == 0.75
    assert evaluate(s, y, 0.8, target_recall=1.0).at_target_recall.threshold == 0.2
    assert 0 < r.average_precision <= 1
    plot_pr(r, tmp_path / "pr.png", "t")
    assert (tmp_path / "pr.png").read_bytes()[:4] == b"\x89PNG"


def test_scores_and_labels_must_pair():
    with pytest.raises(ValueError, match="one score per label"):
        evaluate([0.1, 0.2], [1], 0.5)
