"""Training step (SageMaker Training job, scikit-learn container, script mode).

Reads the transformed splits written by preprocessing (label first, then features), fits a seeded
RandomForest, prints validation metrics as ``validation:<name>=<value>;`` lines that SageMaker
metric definitions scrape, and writes a model directory that scores **raw** customer records:

    MODEL_DIR/model.joblib          Pipeline(fitted preprocessor -> RandomForest)
    MODEL_DIR/schema.json           the data contract the model was trained under
    MODEL_DIR/training_metrics.json hyperparameters, row counts and validation metrics
    MODEL_DIR/code/inference.py     model_fn / input_fn / predict_fn / output_fn for the serving container
    MODEL_DIR/code/churn_common.py  what inference.py imports

SageMaker tars MODEL_DIR into model.tar.gz with these files at the archive root.

By hand:  python include/scripts/training.py --train OUT/train --validation OUT/validation \
              --preprocessor OUT/preprocessor --model-dir MODEL [--n-estimators 100 ...]
In the container the folders default to $SM_CHANNEL_TRAIN, $SM_CHANNEL_VALIDATION,
$SM_CHANNEL_PREPROCESSOR and $SM_MODEL_DIR; hyperparameters arrive as --<name> <value>.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import churn_common as common

STEP = "training"
HERE = Path(__file__).resolve().parent
SERVING_MODULES = ("inference.py", "churn_common.py")


def _channel(name: str) -> Path:
    return Path(os.environ.get(f"SM_CHANNEL_{name.upper()}", common.container_path(f"input/data/{name}")))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=10)
    parser.add_argument("--min-samples-split", type=int, default=4)
    parser.add_argument("--random-state", type=int, default=common.SEED)
    parser.add_argument("--n-jobs", type=int, default=-1, help="cores to use; -1 means all")
    parser.add_argument("--train", type=Path, default=_channel("train"))
    parser.add_argument("--validation", type=Path, default=_channel("validation"))
    parser.add_argument("--preprocessor", type=Path, default=_channel("preprocessor"))
    parser.add_argument("--model-dir", type=Path,
                        default=Path(os.environ.get("SM_MODEL_DIR", common.container_path("model"))))
    args = parser.parse_args(argv)
    for name in ("n_estimators", "max_depth", "min_samples_split"):
        minimum = 2 if name == "min_samples_split" else 1
        if getattr(args, name) < minimum:
            raise common.UsageError(f"hyperparameter {name.replace('_', '-')} must be at least {minimum}, "
                                    f"got {getattr(args, name)}")
    return args


def classification_metrics(labels: Any, predicted: Any, scores: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    metrics = {
        "accuracy": accuracy_score(labels, predicted),
        "precision": precision_score(labels, predicted, zero_division=0),
        "recall": recall_score(labels, predicted, zero_division=0),
        "f1_score": f1_score(labels, predicted, zero_division=0),
        "roc_auc": roc_auc_score(labels, scores) if len(set(labels.tolist())) == 2 else float("nan"),
    }
    return {name: float(value) for name, value in metrics.items()}


def run(args: argparse.Namespace) -> dict:
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    train_x, train_y = common.read_matrix_csv(args.train)
    validation_x, validation_y = common.read_matrix_csv(args.validation)
    preprocessor = joblib.load(common.find_single_file(args.preprocessor, "preprocessor.joblib"))
    schema = common.load_schema(common.find_single_file(args.preprocessor, "schema.json"))
    hyperparameters = {
        "n_estimators": args.n_estimators,
        "max_depth": args.max_depth,
        "min_samples_split": args.min_samples_split,
        "random_state": args.random_state,
    }
    print(f"training RandomForest {hyperparameters} on {len(train_y)} row(s), {train_x.shape[1]} feature(s)")
    classifier = RandomForestClassifier(**hyperparameters, n_jobs=args.n_jobs)
    classifier.fit(train_x, train_y)
    classifier.set_params(n_jobs=1)  # the serving container scores small batches; threads only cost there

    scores = classifier.predict_proba(validation_x)[:, 1]
    validation = classification_metrics(validation_y, (scores > 0.5).astype("int64"), scores)
    for name, value in validation.items():
        print(f"validation:{name}={value:.6f};")

    model = Pipeline([("preprocess", preprocessor), ("classifier", classifier)])
    with common.staged_output(args.model_dir) as staging:
        joblib.dump(model, staging / "model.joblib")
        common.write_json(staging / "schema.json", schema.to_dict())
        common.write_json(staging / "training_metrics.json", {
            "hyperparameters": hyperparameters,
            "rows": {"train": int(len(train_y)), "validation": int(len(validation_y))},
            "validation": validation,
        })
        (staging / "code").mkdir()
        for module in SERVING_MODULES:
            shutil.copy2(HERE / module, staging / "code" / module)
    return validation


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_main(STEP, "failure", lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
