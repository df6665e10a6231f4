"""The least any implementation of each step must spend on the same data, measured inside one process.

    python -m bench.floors preprocess INPUT_CSV SPLIT_DIR   read the input + write the same splits (Arrow)
    python -m bench.floors train SPLIT_DIR                  a bare RandomForest fit, same hyperparameters
    python -m bench.floors evaluate MODEL_DIR SPLIT_DIR     load + predict_proba + the metrics

Prints one JSON line: the timed section's wall and CPU seconds. Loading what the timed section needs
but the step would also have to load (the splits, for the preprocessing floor) is done before timing.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(section) -> dict[str, float]:
    wall, cpu = time.perf_counter(), _cpu()
    section()
    return {"wall": time.perf_counter() - wall, "cpu": _cpu() - cpu}


def preprocess_floor(input_csv: Path, split_dir: Path) -> dict[str, float]:
    import pyarrow.csv as pacsv

    splits = {name: pacsv.read_csv(str(split_dir / name / f"{name}.csv")) for name in ("train", "validation", "test")}
    with tempfile.TemporaryDirectory() as scratch:
        def section() -> None:
            pacsv.read_csv(str(input_csv))
            for name, table in splits.items():
                pacsv.write_csv(table, f"{scratch}/{name}.csv", pacsv.WriteOptions(quoting_style="needed"))
        return _timed(section)


def _matrix(path: Path):
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(str(path)).to_pandas()
    return table.iloc[:, 1:].to_numpy(dtype="float64"), table.iloc[:, 0].to_numpy()


def train_floor(split_dir: Path) -> dict[str, float]:
    from sklearn.ensemble import RandomForestClassifier

    features, labels = _matrix(split_dir / "train" / "train.csv")
    # the same rows per tree as the step draws (its max-samples default), so the ratio compares like with like
    cap = json.loads((PROJECT / "include" / "scripts" / "churn_common" / "defaults.json").read_text())[
        "hyperparameters"].get("max-samples", 0)
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, min_samples_split=4, random_state=42, n_jobs=-1,
                                    max_samples=cap if 0 < cap < len(labels) else None)
    return _timed(lambda: forest.fit(features, labels))


def evaluate_floor(model_dir: Path, split_dir: Path) -> dict[str, float]:
    import joblib
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    def section() -> None:
        forest = joblib.load(model_dir / "model.joblib").named_steps["classifier"]
        features, labels = _matrix(split_dir / "test" / "test.csv")
        scores = forest.predict_proba(features)[:, 1]
        predicted = scores >= 0.5
        for metric in (accuracy_score, precision_score, recall_score, f1_score):
            metric(labels, predicted)
        roc_auc_score(labels, scores)
    return _timed(section)


def main(argv: list[str]) -> int:
    step, *paths = argv
    floor = {"preprocess": preprocess_floor, "train": train_floor, "evaluate": evaluate_floor}[step]
    print(json.dumps(floor(*map(Path, paths))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
