"""The classification metrics every step reports (training on validation, evaluation on test), with
one piece of code, so that numbers from different steps and models are comparable.
"""

from __future__ import annotations

from typing import Any

from churn_common.defaults import METRIC_NAMES

BOOTSTRAP_ROUNDS = 1000
DECISION_THRESHOLD = 0.5  # as the forest's own predict(): a tie goes to "no churn"


def predicted_labels(scores: Any) -> Any:
    return (scores > DECISION_THRESHOLD).astype("int64")


def classification_metrics(labels: Any, predicted: Any, scores: Any) -> dict[str, float]:
    """Accuracy, precision, recall and F1 from hard labels; ROC AUC from the scores (probabilities)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    metrics = {
        "accuracy": accuracy_score(labels, predicted),
        "precision": precision_score(labels, predicted, zero_division=0),
        "recall": recall_score(labels, predicted, zero_division=0),
        "f1_score": f1_score(labels, predicted, zero_division=0),
        "roc_auc": roc_auc_score(labels, scores) if len(set(labels.tolist())) == 2 else float("nan"),
    }
    assert tuple(metrics) == METRIC_NAMES, "defaults.json names the metrics this function computes"
    return {name: float(value) for name, value in metrics.items()}


def metric_deviations(tn: int, fp: int, fn: int, tp: int, auc: float, seed: int) -> dict[str, float]:
    """Standard deviations of the metrics on a test split of this size.

    Resampling rows with replacement draws the four confusion-matrix counts from a multinomial, so
    the bootstrap needs no pass over the rows; ROC AUC's comes from Hanley & McNeil (1982).
    """
    import numpy as np

    total = tn + fp + fn + tp
    cells = np.random.default_rng(seed).multinomial(total, np.array([tn, fp, fn, tp]) / total, size=BOOTSTRAP_ROUNDS)
    tn_b, fp_b, fn_b, tp_b = (cells[:, index].astype("float64") for index in range(4))

    def ratio(numerator: Any, denominator: Any) -> Any:
        return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)

    positives, negatives = tp + fn, tn + fp
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    auc_variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) \
        / max(positives * negatives, 1)
    return {
        "accuracy": float(np.std((tp_b + tn_b) / total)),
        "precision": float(np.std(ratio(tp_b, tp_b + fp_b))),
        "recall": float(np.std(ratio(tp_b, tp_b + fn_b))),
        "f1_score": float(np.std(ratio(2 * tp_b, 2 * tp_b + fp_b + fn_b))),
        "roc_auc": float(np.sqrt(max(auc_variance, 0.0))),
    }


def confusion_counts(labels: Any, predicted: Any) -> tuple[int, int, int, int]:
    """(true negatives, false positives, false negatives, true positives) of 0/1 labels."""
    import numpy as np

    labels, predicted = np.asarray(labels), np.asarray(predicted)
    return (int(np.sum((labels == 0) & (predicted == 0))), int(np.sum((labels == 0) & (predicted == 1))),
            int(np.sum((labels == 1) & (predicted == 0))), int(np.sum((labels == 1) & (predicted == 1))))


def roc_auc_from_ranks(labels: Any, scores: Any) -> float:
    """ROC AUC as the Mann-Whitney statistic: the chance that a churner scores above a loyal customer,
    ties counting a half (average ranks), which is the area under the exact ROC curve that
    scikit-learn's ``roc_auc_score`` integrates. NaN without both classes."""
    import numpy as np

    labels, scores = np.asarray(labels), np.asarray(scores, dtype="float64")
    positives = int(np.sum(labels == 1))
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_ranks = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based ranks, tied scores sharing their mean
    rank_sum = float(np.sum(average_ranks[inverse][labels == 1]))
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def metrics_from_counts(labels: Any, scores: Any) -> dict[str, float]:
    """``classification_metrics`` of the 0.5 cut-off without scikit-learn (the Spark image has none):
    accuracy, precision, recall and F1 from the exact confusion counts (0 where undefined, as
    ``zero_division=0``), ROC AUC from the ranks of the probabilities."""
    import numpy as np

    tn, fp, fn, tp = confusion_counts(labels, predicted_labels(np.asarray(scores, dtype="float64")))
    total = tn + fp + fn + tp
    metrics = {
        "accuracy": (tp + tn) / total if total else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1_score": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "roc_auc": roc_auc_from_ranks(labels, scores),
    }
    assert tuple(metrics) == METRIC_NAMES, "defaults.json names the metrics this function computes"
    return {name: float(value) for name, value in metrics.items()}
