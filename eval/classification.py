"""Binary classifier metrics against human labels: precision, recall, F1, PR curve, and the
threshold that reaches a target recall (the paper favours recall: Table II)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PRPoint:
    threshold: float
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class ClassifierReport:
    n: int
    positives: int
    at_threshold: PRPoint
    at_target_recall: PRPoint | None
    """The highest threshold whose recall reaches the target (None if no threshold does)."""
    target_recall: float
    curve: list[PRPoint]
    average_precision: float


def point(scores: np.ndarray, labels: np.ndarray, threshold: float) -> PRPoint:
    pred = scores >= threshold
    tp = int(np.sum(pred & labels))
    fp = int(np.sum(pred & ~labels))
    fn = int(np.sum(~pred & labels))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRPoint(float(threshold), precision, recall, f1)


def pr_curve(scores: np.ndarray, labels: np.ndarray) -> list[PRPoint]:
    """One point per distinct score (predict positive at score >= threshold), highest first."""
    return [point(scores, labels, t) for t in np.unique(scores)[::-1]]


def evaluate(scores, labels, threshold: float, target_recall: float = 0.9) -> ClassifierReport:
    scores = np.asarray(scores, float)
    labels = np.asarray(labels, bool)
    if scores.shape != labels.shape or scores.ndim != 1 or len(scores) == 0:
        raise ValueError(f"need one score per label, got {scores.shape} scores and {labels.shape} labels")
    curve = pr_curve(scores, labels)
    reaching = [p for p in curve if p.recall >= target_recall]
    best = reaching[0] if reaching else None  # curve is ordered by decreasing threshold
    # average precision: sum over positives of precision at each recall step
    ap, last_recall = 0.0, 0.0
    for p in curve:
        ap += (p.recall - last_recall) * p.precision
        last_recall = p.recall
    return ClassifierReport(n=len(scores), positives=int(labels.sum()), at_threshold=point(scores, labels, threshold),
                            at_target_recall=best, target_recall=target_recall, curve=curve, average_precision=ap)


def plot_pr(report: ClassifierReport, path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    ax.plot([p.recall for p in report.curve], [p.precision for p in report.curve], marker=".", label="PR curve")
    t = report.at_threshold
    ax.scatter([t.recall], [t.precision], color="red", zorder=3, label=f"threshold {t.threshold:.3g}")
    if report.at_target_recall:
        r = report.at_target_recall
        ax.scatter([r.recall], [r.precision], color="green", zorder=3,
                   label=f"recall ≥ {report.target_recall:g} at {r.threshold:.3g}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(report: ClassifierReport, title: str, plot_name: str, notes: list[str]) -> str:
    t = report.at_threshold
    lines = [f"# {title}", "", *notes, "",
             f"{report.n} labelled documents, {report.positives} positive; average precision "
             f"{report.average_precision:.3f}.", "",
             "| threshold | precision | recall | F1 |", "|---|---|---|---|",
             f"| {t.threshold:.4g} (configured) | {t.precision:.3f} | {t.recall:.3f} | {t.f1:.3f} |"]
    if report.at_target_recall:
        r = report.at_target_recall
        lines.append(f"| {r.threshold:.4g} (recall ≥ {report.target_recall:g}) | {r.precision:.3f} | "
                     f"{r.recall:.3f} | {r.f1:.3f} |")
    else:
        lines.append(f"| – | no threshold reaches recall {report.target_recall:g} | | |")
    lines += ["", f"![precision-recall curve]({plot_name})", ""]
    return "\n".join(lines)
