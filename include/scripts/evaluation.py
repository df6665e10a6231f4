"""Evaluation step (SageMaker Processing job).

Scores this run's held-out customers (raw records, written by preprocessing) with the trained model
(the challenger) and, where given, with the champion (the approved model in use), each through its
own packaged preprocessor and with the same metric code, and writes to OUT:

    evaluation.json   accuracy, precision, recall, F1 and ROC AUC (from probabilities), top-decile lift
                      (``lift_at_10``) and the retention campaign's profit at the model's own threshold
                      (``expected_profit``), the confusion matrix, the majority-class baseline accuracy,
                      row counts, ``ranking`` (lift, gains and precision at 5 / 10 / 20 / 30 %),
                      ``economics`` (the threshold chosen on validation; profit at it, at 0.5 and the
                      champion's at its own threshold, all on this test split), ``calibration`` (Brier
                      score, expected calibration error, whether a calibrator is applied), SageMaker's model-quality
                      block (``binary_classification_metrics`` with value / standard_deviation) that the
                      registry renders, and a ``champion`` block: its identifier, metrics and the
                      challenger-minus-champion delta, or why it could not be compared
    details.json      what the run report draws: ROC, precision-recall, calibration (reliability),
                      cumulative gains and lift curves of both models, and the permutation importance
                      of each raw input column
    drift.json        this run's customers against the baseline profile (the champion's training data):
                      population stability index per feature, completeness change, missing / extra
                      columns; "no_baseline" on a first run

A champion that cannot score the new data (its columns are gone, its file is unreadable) is recorded
as not comparable, with the reason; it never fails the job.

By hand:  python include/scripts/evaluation.py --model MODEL --holdout OUT/holdout --output-dir EVAL
              [--champion CHAMPION_MODEL --champion-identifier ID] [--baseline PROFILE_DIR]
``--model`` / ``--champion`` are folders holding ``model.tar.gz`` (as SageMaker stages them) or an
unpacked model directory. Container defaults: /opt/ml/processing/input/{model,holdout,champion,baseline},
/opt/ml/processing/output/evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from churn_common import business, container, contract, data_contract, defaults, metrics, profile, tables

STEP = "evaluation"
CURVE_POINTS = 200  # curves are down-sampled to this many points: enough to draw, small to ship
CALIBRATION_BINS = 10
IMPORTANCE_ROWS = 1000  # permutation importance on a seeded sample of this many customers at most
IMPORTANCE_REPEATS = 3
HOLDOUT_SOURCE = "this run's held-out test customers"


def _input(name: str) -> Path:
    return Path(container.container_path(f"processing/input/{name}"))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=_input("model"))
    parser.add_argument("--holdout", type=Path, default=_input("holdout"))
    parser.add_argument("--champion", type=Path, default=None,
                        help="the champion's model (default: the 'champion' input, when the job has one)")
    parser.add_argument("--champion-identifier", default=None, help="its registry identifier (ARN or models:/ URI)")
    parser.add_argument("--champion-version", type=int, default=None)
    parser.add_argument("--champion-unavailable", default=None, metavar="REASON",
                        help="there is a champion, but its model cannot be used (recorded as not comparable)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="folder with the baseline profile's statistics.json (default: the 'baseline' input)")
    parser.add_argument("--baseline-identifier", default=None)
    parser.add_argument("--baseline-version", type=int, default=None)
    parser.add_argument("--baseline-uri", default=None, help="where the baseline profile lives, for the report")
    parser.add_argument("--baseline-unavailable", default=None, metavar="REASON",
                        help="there is a baseline version, but its profile cannot be used")
    parser.add_argument("--no-drift", dest="drift", action="store_false", help="do not measure drift")
    parser.add_argument("--no-details", dest="details", action="store_false",
                        help="do not compute what the report draws (curves, permutation importance)")
    parser.add_argument("--output-dir", type=Path,
                        default=Path(container.container_path("processing/output/evaluation")))
    parser.add_argument("--seed", type=int, default=defaults.SEED)
    args = parser.parse_args(argv)
    if args.champion is None and _input("champion").is_dir() and any(_input("champion").iterdir()):
        args.champion = _input("champion")
    if args.baseline is None and _input("baseline").is_dir() and any(_input("baseline").iterdir()):
        args.baseline = _input("baseline")
    return args


def load_model(model_path: Path, scratch: Path) -> tuple[Any, data_contract.Schema, dict[str, Any]]:
    """The packaged model (preprocessor -> forest), the data contract it was trained under and the
    decision stored with it (calibration and threshold; the defaults for a model without one)."""
    import joblib

    folder = model_path
    if not (model_path / "model.joblib").is_file():
        archive = container.find_single_file(model_path, "model.tar.gz")
        with tarfile.open(archive) as bundle:
            bundle.extractall(scratch, filter="data")
        folder = scratch
        if not (folder / "model.joblib").is_file():
            raise container.ContractError(str(archive), ["model.joblib is not at the archive root"])
    return (joblib.load(folder / "model.joblib"), data_contract.load_schema(folder / "schema.json"),
            business.load_decision(folder))


def business_report(labels: Any, scores: Any, decision: dict[str, Any],
                    economics: business.Economics) -> dict[str, Any]:
    """One model's ranking, campaign (at its own threshold and at 0.5, with ``economics``) and
    calibration on these customers."""
    calibration = decision["calibration"]
    return {
        "ranking": business.ranking(labels, scores),
        "economics": {"threshold": decision["threshold"], "chosen_on": decision.get("chosen_on"),
                      "figures": economics.to_dict(),
                      "at_threshold": business.campaign(labels, scores, economics, decision["threshold"]),
                      "at_default": business.campaign(labels, scores, economics, business.DEFAULT_THRESHOLD)},
        "calibration": {"brier": business.brier_score(labels, scores),
                        "ece": business.calibration_error(labels, scores),
                        "applied": bool(calibration.get("applied")), "reason": calibration.get("reason")},
    }


def quality_report(labels: Any, scores: Any, seed: int, decision: dict[str, Any],
                   economics: business.Economics) -> dict[str, Any]:
    """The metrics, confusion matrix, business blocks and SageMaker model-quality block of one model's
    scores."""
    from sklearn.metrics import confusion_matrix

    predicted = metrics.predicted_labels(scores)
    values = metrics.classification_metrics(labels, predicted, scores)
    in_business_terms = business_report(labels, scores, decision, economics)
    values["lift_at_10"] = in_business_terms["ranking"]["top_decile_lift"]
    values["expected_profit"] = in_business_terms["economics"]["at_threshold"]["profit"]
    tn, fp, fn, tp = (int(value) for value in confusion_matrix(labels, predicted, labels=[0, 1]).ravel())
    deviation = metrics.metric_deviations(tn, fp, fn, tp, values["roc_auc"], seed)

    def quality(name: str) -> dict[str, float]:
        return {"value": values[name], "standard_deviation": deviation[name]}

    return {
        "metrics": {name: values[name] for name in defaults.METRIC_NAMES + defaults.BUSINESS_METRIC_NAMES},
        **in_business_terms,
        "confusion_matrix": {"true_negatives": tn, "false_positives": fp,
                             "false_negatives": fn, "true_positives": tp},
        "binary_classification_metrics": {
            "accuracy": quality("accuracy"),
            "precision": quality("precision"),
            "recall": quality("recall"),
            "f1": quality("f1_score"),
            "auc": quality("roc_auc"),
            "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
        },
    }


def build_report(labels: Any, scores: Any, seed: int, decision: dict[str, Any] | None = None,
                 economics: business.Economics | None = None) -> dict[str, Any]:
    """``evaluation.json`` of the challenger, without the champion block. ``economics``: the figures
    the challenger's threshold was chosen with (its decision's; the defaults without one)."""
    decision = decision or business.default_decision()
    economics = economics or economics_of(decision)
    positives = int(labels.sum())
    report = quality_report(labels, scores, seed, decision, economics)
    report["baseline"] = {"majority_class_accuracy": float(max(positives, len(labels) - positives) / len(labels))}
    report["rows"] = {"test": len(labels), "positive": positives, "negative": int(len(labels) - positives)}
    return report


def economics_of(decision: dict[str, Any]) -> business.Economics:
    """The campaign figures a model's threshold was chosen with (the defaults for an older model)."""
    return business.Economics(**decision["economics"]) if decision.get("economics") else business.Economics()


def _downsample(*series: Any) -> list[list[float]]:
    import numpy as np

    length = len(series[0])
    keep = np.unique(np.linspace(0, length - 1, min(length, CURVE_POINTS)).round().astype(int))
    return [[round(float(value), 6) for value in np.asarray(values)[keep]] for values in series]


def curves(labels: Any, scores: Any) -> dict[str, dict[str, Any]]:
    """ROC, precision-recall and calibration points of one model's scores, for the report."""
    import numpy as np
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    precision, recall, _ = precision_recall_curve(labels, scores)
    bins = np.minimum((np.asarray(scores) * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    counts = np.bincount(bins, minlength=CALIBRATION_BINS)
    predicted_sum = np.bincount(bins, weights=scores, minlength=CALIBRATION_BINS)
    positive_sum = np.bincount(bins, weights=np.asarray(labels, dtype="float64"), minlength=CALIBRATION_BINS)
    filled = counts > 0
    gains = business.ranking(labels, scores)["curve"]
    fpr_points, tpr_points = _downsample(fpr, tpr)
    recall_points, precision_points = _downsample(recall[::-1], precision[::-1])
    return {
        "roc": {"fpr": fpr_points, "tpr": tpr_points, "auc": float(roc_auc_score(labels, scores))},
        "precision_recall": {"recall": recall_points, "precision": precision_points,
                             "average_precision": float(average_precision_score(labels, scores))},
        "calibration": {"mean_predicted": [round(float(v), 6) for v in predicted_sum[filled] / counts[filled]],
                        "fraction_positive": [round(float(v), 6) for v in positive_sum[filled] / counts[filled]],
                        "count": [int(v) for v in counts[filled]]},
        "gains": {"share": gains["share"], "gain": gains["gain"], "lift": gains["lift"]},
    }


def permutation_importance(model: Any, features: Any, labels: Any, schema: data_contract.Schema,
                           seed: int) -> dict[str, Any]:
    """How much ROC AUC drops when one raw input column's values are shuffled across customers.

    The packaged preprocessor transforms each row on its own (impute, encode, scale), so shuffling a
    raw column equals shuffling the block of encoded columns it becomes: the sample is transformed
    once, every shuffled copy is stacked into one matrix and the forest scores them all in one call,
    which keeps this cheap at any data size.
    """
    import numpy as np
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(features), size=min(IMPORTANCE_ROWS, len(features)), replace=False))
    sample, sample_labels = features.iloc[rows], np.asarray(labels)[rows]
    preprocessor, classifier = model.named_steps["preprocess"], model.named_steps["classifier"]
    encoded = np.asarray(preprocessor.transform(sample))
    blocks = business.raw_column_blocks(list(preprocessor.get_feature_names_out()), schema.features)
    copies = [encoded]
    for block in blocks.values():
        for _ in range(IMPORTANCE_REPEATS):
            shuffled = encoded.copy()
            shuffled[:, block] = encoded[rng.permutation(len(encoded))][:, block]
            copies.append(shuffled)
    scores = classifier.predict_proba(np.vstack(copies))[:, 1].reshape(len(copies), len(encoded))
    reference = roc_auc_score(sample_labels, scores[0])
    found: list[dict[str, Any]] = []
    for position, column in enumerate(blocks):
        first = 1 + position * IMPORTANCE_REPEATS
        drops = [reference - roc_auc_score(sample_labels, scores[first + repeat])
                 for repeat in range(IMPORTANCE_REPEATS)]
        found.append({"name": column, "mean": round(float(np.mean(drops)), 6), "std": round(float(np.std(drops)), 6)})
    found.sort(key=lambda item: item["mean"], reverse=True)
    return {"metric": "roc_auc", "rows": len(rows), "repeats": IMPORTANCE_REPEATS, "features": found}


def score_champion(args: argparse.Namespace, records: Any, labels: Any, challenger: dict[str, Any],
                   scratch: Path, economics: business.Economics) -> tuple[dict[str, Any], Any]:
    """The champion block of ``evaluation.json``, and the champion's scores (None when not comparable):
    its campaign is valued with this run's ``economics``, at the champion's own threshold."""
    block: dict[str, Any] = {"identifier": args.champion_identifier, "version": args.champion_version,
                             "comparable": False, "reason": None, "metrics": {}, "delta": {}}
    try:
        model, schema, decision = load_model(args.champion, scratch)
        scores = business.served_scores(model, data_contract.prepare_features(records, schema), decision)
    except container.ContractError as error:
        block["reason"] = f"the champion cannot score this run's customers: {'; '.join(error.violations)}"
        return block, None
    except Exception as error:  # any way the champion fails to load or score is recorded, never fatal
        block["reason"] = f"the champion could not be loaded or scored: {type(error).__name__}: {error}"
        return block, None
    quality = quality_report(labels, scores, 0, decision, economics)
    block.update({
        "comparable": True,
        "metrics": quality["metrics"],
        "delta": {name: challenger["metrics"][name] - quality["metrics"][name] for name in quality["metrics"]},
        "confusion_matrix": quality["confusion_matrix"],
        "ranking": quality["ranking"], "economics": quality["economics"], "calibration": quality["calibration"],
    })
    return block, scores


def _baseline_statistics(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.baseline is None:
        return None
    path = container.find_single_file(args.baseline, contract.FILES["statistics"])
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise container.ContractError(str(path), [f"the baseline profile is not valid JSON: {error}"]) from None


def run(args: argparse.Namespace) -> dict[str, Any]:
    records = tables.read_records(args.holdout)
    labels = records[tables.TARGET_LABEL].to_numpy().astype("int64")
    with tempfile.TemporaryDirectory(prefix="model-") as scratch:
        model, schema, decision = load_model(args.model, Path(scratch) / "challenger")
        features = data_contract.prepare_features(records, schema)
        scores = business.served_scores(model, features, decision)
        economics = economics_of(decision)
        report = build_report(labels, scores, args.seed, decision, economics)
        details: dict[str, Any] = ({name: {"challenger": value} for name, value in curves(labels, scores).items()}
                                   if args.details else {})
        report["champion"] = None
        if args.champion_unavailable:
            report["champion"] = {"identifier": args.champion_identifier, "version": args.champion_version,
                                  "comparable": False, "reason": args.champion_unavailable, "metrics": {}, "delta": {}}
        elif args.champion is not None:
            report["champion"], champion_scores = score_champion(args, records, labels, report,
                                                                 Path(scratch) / "champion", economics)
            if champion_scores is not None and args.details:
                for name, value in curves(labels, champion_scores).items():
                    details[name]["champion"] = value
    if args.details:
        details["permutation_importance"] = permutation_importance(model, features, labels, schema, args.seed)
    drift = None
    if args.drift:
        baseline = {"identifier": args.baseline_identifier, "version": args.baseline_version,
                    "statistics_uri": args.baseline_uri}
        drift = profile.measure_drift(_baseline_statistics(args), baseline, features, schema, HOLDOUT_SOURCE,
                                      unavailable=args.baseline_unavailable)
    with container.staged_output(args.output_dir) as staging:  # the file names the DAG side reads
        container.write_json(staging / contract.FILES["evaluation"], report)
        if args.details:
            container.write_json(staging / contract.FILES["details"], details)
        if drift is not None:
            container.write_json(staging / contract.FILES["drift"], drift)
    print("test " + " ".join(f"{name}={value:.4f}" for name, value in report["metrics"].items())
          + f" baseline={report['baseline']['majority_class_accuracy']:.4f}")
    chosen, default = report["economics"]["at_threshold"], report["economics"]["at_default"]
    print(f"campaign at the threshold {chosen['threshold']:.2f} chosen on validation: profit {chosen['profit']:.2f} "
          f"(at 0.5: {default['profit']:.2f}); brier={report['calibration']['brier']:.4f} "
          f"ece={report['calibration']['ece']:.4f} calibrated={report['calibration']['applied']}")
    champion = report["champion"]
    if champion and champion["comparable"]:
        print("champion " + " ".join(f"{name}={value:.4f}" for name, value in champion["metrics"].items()))
    elif champion:
        print(f"champion not comparable: {champion['reason']}")
    if drift is not None:
        drifted = [item["name"] for item in drift["features"] if item["level"] == "drift"]
        print(f"drift: {drift['status']}" + (f"; drifted: {', '.join(drifted)}" if drifted else ""))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return container.run_main(STEP, container.PROCESSING_REASON_FILE, lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
