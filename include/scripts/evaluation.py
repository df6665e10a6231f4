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
as not comparable, with the reason; it never fails the job. A Spark champion, which this image cannot
load, arrives as its scores (``--champion-scores``: the (label, probability) pairs evaluate_spark.py
``--write-scores`` wrote in the Spark image), valued as a champion scored here; ``--write-scores``
is the same service the other way, for a Spark run whose champion is a scikit-learn model
(``churn_common.champion_scores``).

The held-out customers are read and scored in batches: the job keeps their labels and scores, the
permutation importance's sample, and, for drift only, their raw features in a compact form (numbers
as float64, categories as codes), never the records, their text or their encoded matrix whole.

By hand:  python include/scripts/evaluation.py --model MODEL --holdout OUT/holdout --output-dir EVAL
              [--champion CHAMPION_MODEL --champion-identifier ID] [--baseline PROFILE_DIR]
``--model`` / ``--champion`` are folders holding ``model.tar.gz`` (as SageMaker stages them) or an
unpacked model directory. Container defaults: /opt/ml/processing/input/{model,holdout,champion,baseline},
/opt/ml/processing/output/evaluation.
"""

from __future__ import annotations

import argparse
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from churn_common import (
    business,
    champion_scores,
    container,
    contract,
    data_contract,
    defaults,
    evaluation_arguments,
    matrices,
    metrics,
    profile,
    tables,
)

STEP = "evaluation"
CURVE_POINTS = 200  # curves are down-sampled to this many points: enough to draw, small to ship
CALIBRATION_BINS = 10
IMPORTANCE_ROWS = 1000  # permutation importance on a seeded sample of this many customers at most
IMPORTANCE_REPEATS = 3
HOLDOUT_SOURCE = "this run's held-out test customers"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=evaluation_arguments.job_input("model"))
    parser.add_argument("--holdout", type=Path, default=evaluation_arguments.job_input("holdout"))
    evaluation_arguments.add_arguments(
        parser, champion_help="the champion's model (default: the 'champion' input, when the job has one)")
    parser.add_argument("--no-details", dest="details", action="store_false",
                        help="do not compute what the report draws (curves, permutation importance)")
    args = parser.parse_args(argv)
    args.champion = args.champion or evaluation_arguments.given_input("champion")
    args.baseline = args.baseline or evaluation_arguments.given_input("baseline")
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


def importance_sample(rows: int, seed: int) -> tuple[Any, Any]:
    """Which held-out customers (positions, sorted) the permutation importance is measured on, and the
    generator it goes on shuffling with: chosen from the row count alone, before any batch is read."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=min(IMPORTANCE_ROWS, rows), replace=False)), rng


def permutation_importance(model: Any, sample: Any, sample_labels: Any, schema: data_contract.Schema,
                           rng: Any) -> dict[str, Any]:
    """How much ROC AUC drops when one raw input column's values are shuffled across customers.

    The packaged preprocessor transforms each row on its own (impute, encode, scale), so shuffling a
    raw column equals shuffling the block of encoded columns it becomes: the sample is transformed
    once, every shuffled copy is stacked into one matrix and the forest scores them all in one call,
    which keeps this cheap at any data size.
    """
    import numpy as np
    from sklearn.metrics import roc_auc_score

    sample_labels = np.asarray(sample_labels)
    preprocessor, classifier = model.named_steps["preprocess"], model.named_steps["classifier"]
    encoded = np.asarray(preprocessor.transform(sample))
    blocks = business.raw_column_blocks(list(preprocessor.get_feature_names_out()), schema.features)
    copies = [encoded]
    for block in blocks.values():
        for _ in range(IMPORTANCE_REPEATS):
            shuffled = encoded.copy()
            shuffled[:, block] = encoded[rng.permutation(len(encoded))][:, block]
            copies.append(shuffled)
    scores = matrices.forest_probabilities(classifier, np.vstack(copies)).reshape(len(copies), len(encoded))
    reference = roc_auc_score(sample_labels, scores[0])
    found: list[dict[str, Any]] = []
    for position, column in enumerate(blocks):
        first = 1 + position * IMPORTANCE_REPEATS
        drops = [reference - roc_auc_score(sample_labels, scores[first + repeat])
                 for repeat in range(IMPORTANCE_REPEATS)]
        found.append({"name": column, "mean": round(float(np.mean(drops)), 6), "std": round(float(np.std(drops)), 6)})
    found.sort(key=lambda item: item["mean"], reverse=True)
    return {"metric": "roc_auc", "rows": len(encoded), "repeats": IMPORTANCE_REPEATS, "features": found}


class Scorer:
    """One packaged model scoring batch after batch of raw records, keeping only its scores."""

    def __init__(self, model: Any, schema: data_contract.Schema, decision: dict[str, Any]):
        self.model, self.schema, self.decision = model, schema, decision
        self.parts: list[Any] = []

    def score(self, features: Any) -> None:
        """Score a batch's feature frame (``data_contract.prepare_features`` under this model's schema)."""
        encoded = self.model.named_steps["preprocess"].transform(features)
        raw = matrices.forest_probabilities(self.model.named_steps["classifier"], encoded)
        self.parts.append(business.calibrated(raw, self.decision["calibration"].get("calibrator")))

    def scores(self) -> Any:
        import numpy as np

        return np.concatenate(self.parts)


class CompactFeatures:
    """The raw features of every batch, for drift: numbers as float64, categories as codes of their
    values (a few bytes a customer, not a Python string a cell)."""

    def __init__(self, schema: data_contract.Schema):
        self.schema = schema
        self.parts: dict[str, list[Any]] = {name: [] for name in schema.features}

    def add(self, features: Any) -> None:
        import pandas as pd

        for name in self.schema.numeric:
            self.parts[name].append(features[name].to_numpy(dtype="float64"))
        for name in self.schema.categorical:
            self.parts[name].append(pd.Categorical(features[name]))

    def frame(self) -> Any:
        import numpy as np
        import pandas as pd
        from pandas.api.types import union_categoricals

        columns = {name: np.concatenate(self.parts[name]) for name in self.schema.numeric}
        columns.update({name: union_categoricals(self.parts[name]) for name in self.schema.categorical})
        return pd.DataFrame(columns)[list(self.schema.features)]


def load_champion(model_path: Path, scratch: Path) -> tuple[Scorer | None, str | None]:
    """The champion's scorer, or None and why it cannot be compared (any way it fails to load is
    recorded, never fatal)."""
    try:
        return Scorer(*load_model(model_path, scratch)), None
    except container.ContractError as error:
        return None, f"the champion cannot score this run's customers: {'; '.join(error.violations)}"
    except Exception as error:  # any way the champion fails to load is recorded, never fatal
        return None, f"the champion could not be loaded or scored: {type(error).__name__}: {error}"


def score_champion_batch(champion: Scorer, records: Any) -> str | None:
    """Score one batch with the champion; why it cannot be compared when it fails (never fatal)."""
    try:
        champion.score(data_contract.prepare_features(records, champion.schema))
    except container.ContractError as error:
        return f"the champion cannot score this run's customers: {'; '.join(error.violations)}"
    except Exception as error:  # any way the champion fails to score is recorded, never fatal
        return f"the champion could not be loaded or scored: {type(error).__name__}: {error}"
    return None


def write_scores(args: argparse.Namespace) -> None:
    """``--write-scores``: the pairs of ``churn_common.champion_scores``, from the held-out records in
    ``--holdout`` (this run's, or the part files of a Spark run's); a model that cannot score them is
    recorded as unscored, with the reason, as a champion that cannot score is everywhere."""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="model-") as scratch:
        champion, reason = load_champion(args.model, Path(scratch))
        labels = []
        for records in matrices.iter_part_record_batches(args.holdout):
            labels.append(records[tables.TARGET_LABEL].to_numpy().astype("int64"))
            if champion is not None and (reason := score_champion_batch(champion, records)) is not None:
                champion = None
    with container.staged_output(args.output_dir) as staging:
        if champion is None:
            champion_scores.write_unscored(staging, reason or "the champion could not score these customers")
            print(f"not scored: {reason}")
        else:
            champion_scores.write(staging, np.concatenate(labels), champion.scores(), champion.decision)
            print(f"scored {sum(len(part) for part in labels)} held-out customers")


def champion_block(args: argparse.Namespace, labels: Any, challenger: dict[str, Any], scores: Any,
                   decision: dict[str, Any], economics: business.Economics, reason: str | None) -> dict[str, Any]:
    """The champion block of ``evaluation.json``: its campaign is valued with this run's ``economics``,
    at the champion's own threshold; not comparable, with ``reason``, when it could not score."""
    block: dict[str, Any] = {"identifier": args.champion_identifier, "version": args.champion_version,
                             "comparable": False, "reason": reason, "metrics": {}, "delta": {}}
    if reason is not None:
        return block
    quality = quality_report(labels, scores, 0, decision, economics)
    block.update({
        "comparable": True,
        "metrics": quality["metrics"],
        "delta": {name: challenger["metrics"][name] - quality["metrics"][name] for name in quality["metrics"]},
        "confusion_matrix": quality["confusion_matrix"],
        "ranking": quality["ranking"], "economics": quality["economics"], "calibration": quality["calibration"],
    })
    return block


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    rows = matrices.count_parquet_rows(args.holdout)
    sample_rows, rng = importance_sample(rows, args.seed)
    with tempfile.TemporaryDirectory(prefix="model-") as scratch:
        challenger = Scorer(*load_model(args.model, Path(scratch) / "challenger"))
        model, schema, decision = challenger.model, challenger.schema, challenger.decision
        champion, champion_reason = None, args.champion_unavailable
        if champion_reason is None and args.champion is not None:
            champion, champion_reason = load_champion(args.champion, Path(scratch) / "champion")
        compact = CompactFeatures(schema) if args.drift else None
        label_parts, sample_parts, start = [], [], 0
        for records in matrices.iter_record_batches(args.holdout):
            features = data_contract.prepare_features(records, schema)
            challenger.score(features)
            label_parts.append(records[tables.TARGET_LABEL].to_numpy().astype("int64"))
            if compact is not None:
                compact.add(features)
            chosen = sample_rows[(sample_rows >= start) & (sample_rows < start + len(records))] - start
            sample_parts.append(features.iloc[chosen])
            if champion is not None:
                champion_reason = score_champion_batch(champion, records)
                if champion_reason is not None:
                    champion = None
            start += len(records)
            del records, features
    labels, scores = np.concatenate(label_parts), challenger.scores()
    economics = economics_of(decision)
    report = build_report(labels, scores, args.seed, decision, economics)
    details: dict[str, Any] = ({name: {"challenger": value} for name, value in curves(labels, scores).items()}
                               if args.details else {})
    report["champion"] = None
    if args.champion_unavailable or args.champion is not None or args.champion_scores is not None:
        champion_labels, scored, champion_decision = labels, None, {}
        if champion is not None:
            scored, champion_decision = champion.scores(), champion.decision
        elif champion_reason is None and args.champion_scores is not None:  # scored by the other engine's image
            champion_labels, scored, champion_decision, champion_reason = champion_scores.read(args.champion_scores)
            champion_reason = champion_reason or champion_scores.mismatch(labels, champion_labels)
            scored = None if champion_reason else scored
        report["champion"] = champion_block(args, champion_labels, report, scored, champion_decision, economics,
                                            champion_reason)
        if scored is not None and args.details:
            for name, value in curves(champion_labels, scored).items():
                details[name]["champion"] = value
    if args.details:
        import pandas as pd

        sample = pd.concat(sample_parts)
        details["permutation_importance"] = permutation_importance(model, sample, labels[sample_rows], schema, rng)
    drift = None
    if compact is not None:
        baseline = {"identifier": args.baseline_identifier, "version": args.baseline_version,
                    "statistics_uri": args.baseline_uri}
        drift = profile.measure_drift(profile.read_baseline_statistics(args.baseline), baseline, compact.frame(),
                                      schema, HOLDOUT_SOURCE, unavailable=args.baseline_unavailable)
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
    def body() -> None:
        args = parse_args(argv)
        write_scores(args) if args.write_scores else run(args)

    return container.run_main(STEP, container.PROCESSING_REASON_FILE, body)


if __name__ == "__main__":
    container.exit_now(main())
