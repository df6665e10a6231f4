"""Report inputs as one realistic run writes them: a challenger that beats an approved champion, with
monthly charges that drifted. Curves come from a binormal score model (the textbook shape of a ROC
curve), so they look like a real model's and agree with the headline numbers.

    python -m tests.report_fixtures OUT.html     render the example report (the README's screenshot)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import NormalDist
from typing import Any

from churn_pipeline.report.html import ReportInputs, render_report

RUN_KEY = "20261126T020000Z"
RUN_ID = "scheduled__2026-11-26T02:00:00+00:00"
TEST_ROWS, POSITIVES = 2000, 552
FEATURES = ("Contract", "Tenure", "MonthlyCharges", "InternetService", "TotalCharges", "PaymentMethod",
            "TechSupport", "Age", "StreamingTV", "Gender")
RUN_URI = f"s3://customer-churn-pipeline/churn-pipeline/runs/{RUN_KEY}"


def binormal_curves(auc: float, points: int = 60) -> dict[str, Any]:
    """ROC, precision-recall and calibration curves of scores N(0, 1) (stayers) and N(d, 1) (churners)."""
    normal = NormalDist()
    separation = 2 ** 0.5 * normal.inv_cdf(auc)
    thresholds = [-3.5 + (separation + 7.0) * step / (points - 1) for step in range(points)][::-1]
    fpr = [1 - normal.cdf(t) for t in thresholds]
    tpr = [1 - normal.cdf(t - separation) for t in thresholds]
    negatives = TEST_ROWS - POSITIVES
    recall, precision = [], []
    for false_rate, true_rate in zip(fpr, tpr, strict=True):
        flagged = true_rate * POSITIVES + false_rate * negatives
        if flagged >= 1:
            recall.append(round(true_rate, 4))
            precision.append(round(true_rate * POSITIVES / flagged, 4))
    predicted = [0.05 + 0.1 * index for index in range(10)]
    # a forest's probabilities are pulled toward the middle: observed shares are more extreme, the more
    # so the weaker the model
    stretch = 1.15 + 4 * (0.8906 - auc)
    observed = [min(1.0, max(0.0, 0.5 + stretch * (p - 0.5) + 0.02)) for p in predicted]
    counts = [520, 330, 250, 200, 170, 150, 130, 110, 80, 60]
    return {
        "roc": {"fpr": [round(x, 4) for x in [0.0, *fpr, 1.0]], "tpr": [round(y, 4) for y in [0.0, *tpr, 1.0]],
                "auc": auc},
        "precision_recall": {"recall": recall, "precision": precision,
                             "average_precision": round(auc - 0.18, 4)},
        "calibration": {"mean_predicted": [round(p, 3) for p in predicted],
                        "fraction_positive": [round(o, 3) for o in observed], "count": counts},
    }


def decision(passed: bool = True, reasons: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    """A gate decision as the gate task pushes it (GateDecision with the champion and drift rules)."""
    details = [
        "accuracy 0.8305 >= threshold 0.7500",
        "roc_auc 0.8906 is at least the champion's 0.8801 + 0.0050 (version 1)",
        "drift at level drift on 1 feature (MonthlyCharges): reported, not blocking (drift_mode warn)",
    ]
    value = {
        "passed": passed, "reason": reasons[0] if reasons else "passed", "reasons": list(reasons),
        "detail": details[0], "details": details, "threshold": 0.75,
        "evaluation_uri": f"{RUN_URI}/evaluation/evaluation.json", "accuracy": 0.8305,
        "metrics": {"accuracy": 0.8305, "precision": 0.7361, "recall": 0.6014, "f1_score": 0.662, "roc_auc": 0.8906},
        "champion_metric": "roc_auc", "min_improvement": 0.005, "compare_with_champion": "enforce",
        "drift_mode": "warn",
    }
    value.update(fields)
    return value


def champion() -> dict[str, Any]:
    metrics = {"accuracy": 0.8260, "precision": 0.7290, "recall": 0.5870, "f1_score": 0.6503, "roc_auc": 0.8801}
    ours = evaluation(with_champion=False)["metrics"]
    return {
        "identifier": "models:/customer-churn/1", "version": 1, "comparable": True, "reason": None,
        "metrics": metrics, "delta": {name: round(ours[name] - value, 4) for name, value in metrics.items()},
        "confusion_matrix": {"true_negatives": 1328, "false_positives": 120, "false_negatives": 228,
                             "true_positives": 324},
    }


def evaluation(with_champion: bool = True) -> dict[str, Any]:
    """evaluation.json: the numbers agree (2,000 test customers, 552 churned, accuracy 1,661 / 2,000)."""
    quality = {"accuracy": (0.8305, 0.0081), "precision": (0.7361, 0.0198), "recall": (0.6014, 0.0211),
               "f1": (0.6620, 0.0172), "auc": (0.8906, 0.0074)}
    return {
        "metrics": {"accuracy": 0.8305, "precision": 0.7361, "recall": 0.6014, "f1_score": 0.6620,
                    "roc_auc": 0.8906},
        "confusion_matrix": {"true_negatives": 1329, "false_positives": 119, "false_negatives": 220,
                             "true_positives": 332},
        "baseline": {"majority_class_accuracy": 0.724},
        "rows": {"test": TEST_ROWS, "positive": POSITIVES, "negative": TEST_ROWS - POSITIVES},
        "binary_classification_metrics": {
            **{name: {"value": value, "standard_deviation": deviation}
               for name, (value, deviation) in quality.items()},
            "confusion_matrix": {"0": {"0": 1329, "1": 119}, "1": {"0": 220, "1": 332}},
        },
        "champion": champion() if with_champion else None,
    }


def details(with_champion: bool = True) -> dict[str, Any]:
    ours, theirs = binormal_curves(0.8906), binormal_curves(0.8801)
    importances = [0.081, 0.064, 0.047, 0.031, 0.022, 0.012, 0.009, 0.004, 0.002, -0.001]
    value: dict[str, Any] = {
        section: {"challenger": ours[section], **({"champion": theirs[section]} if with_champion else {})}
        for section in ("roc", "precision_recall", "calibration")
    }
    value["permutation_importance"] = {
        "metric": "roc_auc", "rows": TEST_ROWS, "repeats": 3,
        "features": [{"name": name, "mean": mean, "std": round(0.004 + mean * 0.08, 4)}
                     for name, mean in zip(FEATURES, importances, strict=True)],
    }
    return value


def drift_feature(name: str, psi: float, kind: str = "numeric", change: float = 0.0) -> dict[str, Any]:
    level = "drift" if psi >= 0.25 else "watch" if psi >= 0.1 else "ok"
    feature: dict[str, Any] = {"name": name, "type": kind, "psi": psi, "level": level,
                               "completeness": {"baseline": 0.98, "current": round(0.98 + change, 4),
                                                "change": change}}
    if kind == "categorical":
        feature["unseen_share"] = 0.0
    return feature


def drift() -> dict[str, Any]:
    """drift.json after a run whose monthly charges were scaled by 1.5."""
    numeric = {"Age", "MonthlyCharges", "TotalCharges", "Tenure"}
    psi = {"MonthlyCharges": 1.73, "TotalCharges": 0.142, "Tenure": 0.012, "Age": 0.006, "Contract": 0.004,
           "InternetService": 0.003, "PaymentMethod": 0.002, "TechSupport": 0.001, "StreamingTV": 0.0009,
           "Gender": 0.0004}
    features = [drift_feature(name, value, "numeric" if name in numeric else "categorical",
                              -0.001 if name == "Gender" else 0.0) for name, value in psi.items()]
    return {
        "status": "compared",
        "baseline": {"identifier": "models:/customer-churn/1", "version": 1,
                     "statistics_uri": "s3://customer-churn-pipeline/churn-pipeline/runs/20261125T020000Z/"
                                       "preprocessing/profile/statistics.json"},
        "current": {"rows": TEST_ROWS, "source": "this run's held-out test customers"},
        "features": features, "missing_columns": [], "extra_columns": [],
        "violations": [{"feature_name": "MonthlyCharges", "constraint_check_type": "data_drift_check",
                        "description": "population stability index 1.7300 >= 0.25 against the baseline's bins"}],
        "summary": {"ok": 8, "watch": 1, "drift": 1, "worst_level": "drift"},
    }


def no_baseline_drift() -> dict[str, Any]:
    return {"status": "no_baseline", "baseline": None, "current": {"rows": TEST_ROWS}, "features": [],
            "missing_columns": [], "extra_columns": [], "violations": [],
            "summary": {"ok": 0, "watch": 0, "drift": 0, "worst_level": "ok"}}


def quality() -> dict[str, Any]:
    """Preprocessing's data_quality.json for the bundled sample."""
    return {
        "files": ["customer_data.csv"], "ignored_columns": [], "rows_read": 10100, "rows_without_target": 0,
        "duplicate_rows": 100, "duplicate_ids": 0, "rows_used": 10000, "class_counts": {"No": 7238, "Yes": 2762},
        "missing_values": {"Gender": 0, "Age": 198, "MonthlyCharges": 0, "TotalCharges": 41, "Tenure": 0},
        "splits": {"train": {"rows": 7000, "positive": 1933}, "validation": {"rows": 1000, "positive": 277},
                   "test": {"rows": TEST_ROWS, "positive": POSITIVES}},
        "features": {"input": list(FEATURES), "encoded": 22}, "seed": 42,
    }


def links() -> list[dict[str, str]]:
    return [
        {"label": "evaluation.json", "href": f"{RUN_URI}/evaluation/evaluation.json"},
        {"label": "model", "href": f"{RUN_URI}/model/churn-train-{RUN_KEY}/output/model.tar.gz"},
        {"label": "training job", "href": "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1"
                                          f"#/jobs/churn-train-{RUN_KEY}"},
        {"label": "local job workspace", "href": f"/srv/churn/local-store/jobs/churn-evaluate-{RUN_KEY}"},
    ]


def report_inputs(**overrides: Any) -> ReportInputs:
    """The example run's inputs; keyword arguments replace whole fields."""
    fields: dict[str, Any] = {
        "run_key": RUN_KEY, "run_id": RUN_ID, "dag_id": "customer_churn_pipeline", "backend": "sagemaker",
        "decision": decision(), "evaluation": evaluation(), "details": details(), "drift": drift(),
        "quality": quality(), "links": links(),
    }
    fields.update(overrides)
    return ReportInputs(**fields)


def as_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


if __name__ == "__main__":
    Path(sys.argv[1]).write_bytes(render_report(report_inputs()))
    print(sys.argv[1])
