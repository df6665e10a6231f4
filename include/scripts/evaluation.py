"""Evaluation step (SageMaker Processing job).

Scores the transformed test split with the trained model and writes ``OUT/evaluation.json``:
accuracy, precision, recall, F1 and ROC AUC (from probabilities), the confusion matrix, the
majority-class baseline accuracy, row counts, and SageMaker's model-quality block
(``binary_classification_metrics`` with ``value`` / ``standard_deviation``) that the model registry
renders. Standard deviations come from a seeded bootstrap of the confusion matrix (and
Hanley & McNeil for ROC AUC).

By hand:  python include/scripts/evaluation.py --model MODEL --test OUT/test --output-dir EVAL
``--model`` is a folder holding ``model.tar.gz`` (as SageMaker stages it) or an unpacked model
directory. Container defaults: /opt/ml/processing/input/{model,test}, /opt/ml/processing/output/evaluation.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from churn_common import container, defaults, metrics, tables

STEP = "evaluation"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path(container.container_path("processing/input/model")))
    parser.add_argument("--test", type=Path, default=Path(container.container_path("processing/input/test")))
    parser.add_argument("--output-dir", type=Path,
                        default=Path(container.container_path("processing/output/evaluation")))
    parser.add_argument("--seed", type=int, default=defaults.SEED)
    return parser.parse_args(argv)


def load_model(model_path: Path, scratch: Path) -> Any:
    import joblib

    if (model_path / "model.joblib").is_file():
        return joblib.load(model_path / "model.joblib")
    archive = container.find_single_file(model_path, "model.tar.gz")
    with tarfile.open(archive) as bundle:
        bundle.extractall(scratch, filter="data")
    if not (scratch / "model.joblib").is_file():
        raise container.ContractError(str(archive), ["model.joblib is not at the archive root"])
    return joblib.load(scratch / "model.joblib")


def build_report(labels: Any, predicted: Any, scores: Any, seed: int) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix

    scores_by_name = metrics.classification_metrics(labels, predicted, scores)
    tn, fp, fn, tp = (int(value) for value in confusion_matrix(labels, predicted, labels=[0, 1]).ravel())
    deviation = metrics.metric_deviations(tn, fp, fn, tp, scores_by_name["roc_auc"], seed)
    positives = int(labels.sum())
    baseline = max(positives, len(labels) - positives) / len(labels)

    def quality(name: str) -> dict[str, float]:
        return {"value": scores_by_name[name], "standard_deviation": deviation[name]}

    return {
        "metrics": {name: scores_by_name[name] for name in defaults.METRIC_NAMES},
        "confusion_matrix": {"true_negatives": tn, "false_positives": fp,
                             "false_negatives": fn, "true_positives": tp},
        "baseline": {"majority_class_accuracy": float(baseline)},
        "rows": {"test": len(labels), "positive": positives, "negative": int(len(labels) - positives)},
        "binary_classification_metrics": {
            "accuracy": quality("accuracy"),
            "precision": quality("precision"),
            "recall": quality("recall"),
            "f1": quality("f1_score"),
            "auc": quality("roc_auc"),
            "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
        },
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    test_x, test_y = tables.read_matrix_csv(args.test)
    with tempfile.TemporaryDirectory(prefix="model-") as scratch:
        model = load_model(args.model, Path(scratch))
    classifier = model.named_steps["classifier"]
    if classifier.n_features_in_ != test_x.shape[1]:
        raise container.ContractError(str(args.test), [
            f"the test split has {test_x.shape[1]} feature(s) but the model expects {classifier.n_features_in_}"])
    scores = classifier.predict_proba(test_x)[:, 1]
    predicted = metrics.predicted_labels(scores)
    report = build_report(test_y, predicted, scores, args.seed)
    with container.staged_output(args.output_dir) as staging:
        container.write_json(staging / "evaluation.json", report)
    print("test " + " ".join(f"{name}={value:.4f}" for name, value in report["metrics"].items())
          + f" baseline={report['baseline']['majority_class_accuracy']:.4f}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return container.run_main(STEP, container.PROCESSING_REASON_FILE, lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
