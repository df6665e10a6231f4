"""Training step (SageMaker Training job, scikit-learn container, script mode).

Reads the transformed splits written by preprocessing (label first, then features) straight into
float32 matrices (the forest's own type: no float64 copy), fits a seeded RandomForest on all cores,
each tree on at most ``max-samples`` rows drawn with replacement (every row of the split, the
mission's full bootstrap, when the split is smaller or ``max-samples`` is 0), prints validation
metrics as ``validation:<name>=<value>;`` lines that SageMaker metric definitions scrape, and writes
a model directory that scores **raw** customer records:

    MODEL_DIR/model.joblib          Pipeline(fitted preprocessor -> RandomForest)
    MODEL_DIR/schema.json           the data contract the model was trained under
    MODEL_DIR/training_metrics.json hyperparameters, row counts and validation metrics
    MODEL_DIR/decision.json         chosen on the validation split: whether an isotonic calibrator is
                                    applied (only if it lowers the Brier score out of fold), and the
                                    threshold that maximises the retention campaign's profit
    MODEL_DIR/code/inference.py     model_fn / input_fn / predict_fn / output_fn for the serving container
    MODEL_DIR/code/churn_common/    the shared code inference.py imports

SageMaker tars MODEL_DIR into model.tar.gz with these files at the archive root.

By hand:  python include/scripts/training.py --train OUT/train --validation OUT/validation \
              --preprocessor OUT/preprocessor --model-dir MODEL [--n-estimators 100 ...]
              [--value-retained 500 --offer-cost 100 --offer-acceptance 1]
In the container the folders default to $SM_CHANNEL_TRAIN, $SM_CHANNEL_VALIDATION,
$SM_CHANNEL_PREPROCESSOR and $SM_MODEL_DIR; hyperparameters arrive as --<name> <value>.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from churn_common import business, container, data_contract, defaults, matrices, metrics, preprocessor, tables

STEP = "training"
HERE = Path(__file__).resolve().parent
SERVING_CODE = ("inference.py", "churn_common")  # what the serving container imports
HYPERPARAMETER_MINIMUMS = {"n_estimators": 1, "max_depth": 1, "min_samples_split": 2, "max_samples": 0}


def _channel(name: str) -> Path:
    return Path(os.environ.get(f"SM_CHANNEL_{name.upper()}", container.container_path(f"input/data/{name}")))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in defaults.HYPERPARAMETERS.items():
        parser.add_argument(f"--{name}", type=int, default=value)
    for figure, amount in business.Economics().to_dict().items():
        parser.add_argument(f"--{figure.replace('_', '-')}", type=float, default=amount)
    parser.add_argument("--n-jobs", type=int, default=-1, help="cores to use; -1 means all")
    parser.add_argument("--train", type=Path, default=_channel("train"))
    parser.add_argument("--validation", type=Path, default=_channel("validation"))
    parser.add_argument("--preprocessor", type=Path, default=_channel("preprocessor"))
    parser.add_argument("--model-dir", type=Path,
                        default=Path(os.environ.get("SM_MODEL_DIR", container.container_path("model"))))
    args = parser.parse_args(argv)
    for name, minimum in HYPERPARAMETER_MINIMUMS.items():
        if getattr(args, name) < minimum:
            raise container.UsageError(f"hyperparameter {name.replace('_', '-')} must be at least {minimum}, "
                                       f"got {getattr(args, name)}")
    problems = economics_of(args).problems()
    if problems:
        raise container.UsageError("; ".join(problems))
    return args


def economics_of(args: argparse.Namespace) -> business.Economics:
    return business.Economics(args.value_retained, args.offer_cost, args.offer_acceptance)


def run(args: argparse.Namespace) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    hyperparameters = {name.replace("-", "_"): getattr(args, name.replace("-", "_"))
                       for name in defaults.HYPERPARAMETERS}
    with ThreadPoolExecutor(max_workers=1) as reader:
        # Arrow parses the splits outside the GIL while this thread imports scikit-learn (about a
        # second of pure Python): the reading costs next to nothing on top. Copying the columns
        # into matrices (Python, a call per chunk) waits until the import is done, since a thread
        # that needs the GIL while an import holds it waits at every switch.
        parsing = reader.submit(lambda: (matrices.parse_split(args.train), matrices.parse_split(args.validation)))
        import joblib
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.pipeline import Pipeline

        parsed_train, parsed_validation = parsing.result()
    schema = data_contract.load_schema(container.find_single_file(args.preprocessor, "schema.json"))
    fitted = preprocessor.read_statistics(args.preprocessor)
    for parsed in (parsed_train, parsed_validation):
        if parsed.feature_names != fitted["features"]:
            raise container.ContractError(str(parsed.path), [
                f"the split's {len(parsed.feature_names)} feature(s) are not the {len(fitted['features'])} "
                "the preprocessor's statistics name; were they written by the same preprocessing run?"])
    packaged_preprocessor = preprocessor.fitted_preprocessor(
        schema, fitted, str(preprocessor.statistics_file(args.preprocessor)))
    # column-major for the fit, the layout the trees split fastest on (scikit-learn makes that
    # copy itself from any input it must convert)
    train_x, train_y = parsed_train.matrix(order="F")
    validation_x, validation_y = parsed_validation.matrix()
    # the Arrow columns go as soon as the matrices hold them, and their memory back to the system:
    # Arrow's allocator would keep it (the size of the training matrix) through the fit
    del parsing, parsed_train, parsed_validation  # (the future holds its result too)
    tables.release_arrow_memory()
    rows_per_tree = defaults.rows_per_tree(len(train_y), hyperparameters["max_samples"])
    print(f"training RandomForest {hyperparameters} on {len(train_y)} row(s), {train_x.shape[1]} feature(s), "
          f"{rows_per_tree} row(s) drawn per tree")
    forest_parameters = {**hyperparameters,
                         "max_samples": None if rows_per_tree == len(train_y) else rows_per_tree}
    classifier = RandomForestClassifier(**forest_parameters, n_jobs=args.n_jobs)
    classifier.fit(train_x, train_y)
    del train_x  # the validation scores and the packaging below need only the fitted forest

    classifier.set_params(n_jobs=1)  # the serving container scores small batches; threads only cost there
    scores = matrices.forest_probabilities(classifier, validation_x)  # on all cores, the same on every run
    validation = metrics.classification_metrics(validation_y, metrics.predicted_labels(scores), scores)
    for name, value in validation.items():
        print(f"validation:{name}={value:.6f};")
    decision = business.make_decision(validation_y, scores, economics_of(args), hyperparameters["random_state"])
    print(f"calibration applied: {decision['calibration']['applied']} ({decision['calibration']['reason']}); "
          f"threshold {decision['threshold']:.2f} chosen on validation")

    model = Pipeline([("preprocess", packaged_preprocessor), ("classifier", classifier)])
    with container.staged_output(args.model_dir) as staging:
        joblib.dump(model, staging / "model.joblib")
        container.write_json(staging / "schema.json", schema.to_dict())
        container.write_json(staging / business.DECISION_FILE, decision)
        container.write_json(staging / "training_metrics.json", {
            "hyperparameters": hyperparameters,
            "rows": {"train": len(train_y), "validation": len(validation_y), "per_tree": rows_per_tree},
            "validation": validation,
        })
        (staging / "code").mkdir()
        for item in SERVING_CODE:
            source = HERE / item
            if source.is_dir():
                shutil.copytree(source, staging / "code" / item, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, staging / "code" / item)
    return validation


def main(argv: Sequence[str] | None = None) -> int:
    return container.run_main(STEP, container.TRAINING_REASON_FILE, lambda: run(parse_args(argv)))


if __name__ == "__main__":
    container.exit_now(main())
