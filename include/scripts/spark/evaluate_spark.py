"""Evaluation step on Spark (a SageMaker Processing job in the Spark image, run by smspark-submit).

Scores this run's held-out customers (the raw records preprocess_spark.py wrote, Parquet) with the
trained Spark model (model.tar.gz from train_spark.py: the PipelineModel takes raw records) and, where
given, with a Spark champion, and writes OUT/evaluation.json with evaluation.py's schema: accuracy,
precision, recall and F1 from the exact confusion counts at 0.5, ROC AUC exactly from the
probabilities (the ranks of every score: no binning), top-decile lift and the campaign's profit at
the model's own threshold, the confusion matrix, the majority-class baseline, row counts, ranking,
economics, calibration, SageMaker's model-quality block and the champion block; and OUT/drift.json,
this run's customers against the baseline profile (the champion's training data), with evaluation.py's
arguments, schema and figures: Spark counts what drift reads (present and missing cells, the values
in each baseline bin, each baseline category and the rest) in one aggregation over the records, and
churn_common.profile turns the counts into the report as it does for evaluation.py.

Spark scores the records where they lie; the driver receives each customer's label and score (16
bytes a customer: 320 MB at 20 million held-out customers) and computes everything else with the
same code as evaluation.py (churn_common.business, churn_common.metrics).

A scikit-learn champion (the Spark image has no scikit-learn) is scored by evaluation.py
``--write-scores`` in its own image, the run's ``score_champion`` task; ``--champion-scores`` reads
its (label, probability) pairs, and the champion block is valued from them (``churn_common.
champion_scores``). ``--write-scores`` is the same for a Spark champion of a scikit-learn run.

Not on this path (evaluation.py has it): details.json (curves, permutation importance).

By hand:  spark-submit --py-files churn_common.zip include/scripts/spark/evaluate_spark.py \\
              --model MODEL --holdout OUTPUT/holdout --output-dir EVAL [--champion CHAMPION_MODEL ...]
              [--baseline PROFILE_DIR ...]
``--model`` / ``--champion`` are folders holding model.tar.gz or an unpacked model directory;
``--baseline`` defaults to the 'baseline' input, when the job has one, as in evaluation.py.
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
    metrics,
    profile,
    tables,
)

STEP = "evaluation"
MODEL_ARCHIVE = "model.tar.gz"
PIPELINE = "pipeline"
SCIKIT_LEARN_MODEL = "model.joblib"
HOLDOUT_SOURCE = "this run's held-out test customers"  # evaluation.py's words, in drift.json
WHITE_SPACE_AT_ENDS = r"(?U)^\s+|\s+$"  # a category's text trimmed as the model's features read it


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=evaluation_arguments.job_input("model"))
    parser.add_argument("--holdout", required=True, help="URI of the held-out raw records (Parquet)")
    evaluation_arguments.add_arguments(parser, champion_help="the champion's model folder")
    parser.add_argument("--work-uri", default=None, help="where the models are put for Spark's executors to read "
                                                          "(default: the folder on the driver they are unpacked in)")
    args = parser.parse_args(argv)
    args.baseline = args.baseline or evaluation_arguments.given_input("baseline")
    return args


class NotSparkModel(Exception):
    """A model folder that holds a scikit-learn model, not a Spark one."""


def unpack(model_path: Path, scratch: Path) -> Path:
    """The model directory: ``model_path`` itself, or model.tar.gz in it unpacked into ``scratch``."""
    if (model_path / PIPELINE).is_dir():
        return model_path
    if (model_path / SCIKIT_LEARN_MODEL).is_file():
        raise NotSparkModel(str(model_path))
    archive = container.find_single_file(model_path, MODEL_ARCHIVE)
    try:
        with tarfile.open(archive) as bundle:
            bundle.extractall(scratch, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise container.ContractError(str(archive), [f"the model archive cannot be unpacked: {error}"]) from None
    if (scratch / SCIKIT_LEARN_MODEL).is_file():
        raise NotSparkModel(str(archive))
    if not (scratch / PIPELINE).is_dir():
        raise container.ContractError(str(archive), [f"{PIPELINE}/ is not at the archive root; was it written by "
                                                     "train_spark.py?"])
    return scratch


def put_for_executors(spark: Any, folder: Path, work_uri: str | None, name: str) -> str:
    """The URI Spark loads the PipelineModel from: the unpacked folder, or a copy under ``work_uri``
    (in a multi-instance job the executors cannot read the driver's disk)."""
    if work_uri is None:
        return (folder / PIPELINE).as_uri()
    jvm = spark.sparkContext._jvm
    target = work_uri.rstrip("/") + f"/{name}/{PIPELINE}"
    destination = jvm.org.apache.hadoop.fs.Path(target)
    filesystem = destination.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    filesystem.copyFromLocalFile(False, True, jvm.org.apache.hadoop.fs.Path(str(folder / PIPELINE)), destination)
    return target


def scored(spark: Any, model_uri: str, records: Any) -> tuple[Any, Any]:
    """(labels, churn probabilities) of the records scored by the PipelineModel at ``model_uri``."""
    import numpy as np
    from pyspark.ml import PipelineModel
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    model = PipelineModel.load(model_uri)
    predictions = model.transform(records)
    rows = predictions.select(F.col(tables.TARGET_LABEL).cast("long").alias("label"),
                              vector_to_array("probability")[1].alias("score")).collect()
    labels = np.fromiter((row["label"] for row in rows), dtype=np.int64, count=len(rows))
    scores = np.fromiter((row["score"] for row in rows), dtype=np.float64, count=len(rows))
    return labels, scores


def read_holdout(spark: Any, uri: str, schema: data_contract.Schema) -> Any:
    """The held-out raw records, checked to hold the label and every feature the model reads."""
    try:
        records = spark.read.parquet(uri)
    except Exception as error:  # Spark's AnalysisException: no such path, or no Parquet there
        raise container.ContractError(uri, [f"the records cannot be read: {str(error).splitlines()[0]}"]) from None
    missing = [name for name in (tables.TARGET_LABEL, *schema.features) if name not in records.columns]
    if missing:
        raise container.ContractError(uri, [f"missing column '{name}'" for name in missing])
    return records


def _bins(inner_edges: list[float] | None) -> int:
    return 0 if inner_edges is None else len(inner_edges) + 1


def drift_counts(records: Any, baseline_statistics: dict[str, Any],
                 schema: data_contract.Schema) -> tuple[int, dict[str, profile.FeatureCounts]]:
    """The row count and, for every feature both the schema and the baseline name, what drift reads
    of it, in one aggregation over the records: a numeric feature's present (not null, not NaN) and
    missing cells and its present values in each baseline bin (a value's bin is the number of inner
    edges at or below it, numpy's ``searchsorted(side="right")`` as profile.py bins), a categorical
    feature's present and missing cells (text trimmed, blank missing) and the count of each baseline
    category; the rest of its present cells are unseen."""
    from pyspark.sql import functions as F

    known = {feature["name"]: feature for feature in baseline_statistics.get("features", [])
             if feature["name"] in schema.features}
    aggregates = [F.count(F.lit(1)).alias("rows")]
    edges: dict[str, list[float] | None] = {}
    values: dict[str, list[str]] = {}
    for position, (name, feature) in enumerate(known.items()):
        if "numerical_statistics" in feature:
            number = F.col(name).cast("double")
            present = number.isNotNull() & ~F.isnan(number)  # Spark orders NaN above every number: keep it out
            inner = edges[name] = profile.baseline_inner_edges(feature)
            bin_of = sum(((number >= edge).cast("int") for edge in inner or []), F.lit(0))
            aggregates += [F.sum((present & (bin_of == index)).cast("long")).alias(f"n{position}_{index}")
                           for index in range(_bins(inner))]
        else:
            text = F.regexp_replace(F.col(name).cast("string"), WHITE_SPACE_AT_ENDS, "")
            present = text.isNotNull() & (text != "")
            values[name] = profile.baseline_values(feature)
            aggregates += [F.sum((present & (text == value)).cast("long")).alias(f"c{position}_{index}")
                           for index, value in enumerate(values[name])]
        aggregates += [F.sum(present.cast("long")).alias(f"present{position}"),
                       F.sum((~present).cast("long")).alias(f"missing{position}")]
    totals = records.agg(*aggregates).first()
    counts: dict[str, profile.FeatureCounts] = {}
    for position, name in enumerate(known):
        present, missing = int(totals[f"present{position}"] or 0), int(totals[f"missing{position}"] or 0)
        if name in edges:
            found = tuple(float(totals[f"n{position}_{index}"] or 0) for index in range(_bins(edges[name])))
            counts[name] = profile.NumericCounts(present, missing, found)
        else:
            found = tuple(float(totals[f"c{position}_{index}"] or 0) for index in range(len(values[name])))
            counts[name] = profile.CategoricalCounts(present, missing, found, float(present) - sum(found))
    return int(totals["rows"]), counts


def economics_of(decision: dict[str, Any]) -> business.Economics:
    return business.Economics(**decision["economics"]) if decision.get("economics") else business.Economics()


def quality_report(labels: Any, scores: Any, seed: int, decision: dict[str, Any],
                   economics: business.Economics) -> dict[str, Any]:
    """evaluation.py's quality_report, with the metrics from exact counts and ranks."""
    predicted = metrics.predicted_labels(scores)
    values = metrics.metrics_from_counts(labels, scores)
    calibration = decision["calibration"]
    in_business_terms = {
        "ranking": business.ranking(labels, scores),
        "economics": {"threshold": decision["threshold"], "chosen_on": decision.get("chosen_on"),
                      "figures": economics.to_dict(),
                      "at_threshold": business.campaign(labels, scores, economics, decision["threshold"]),
                      "at_default": business.campaign(labels, scores, economics, business.DEFAULT_THRESHOLD)},
        "calibration": {"brier": business.brier_score(labels, scores),
                        "ece": business.calibration_error(labels, scores),
                        "applied": bool(calibration.get("applied")), "reason": calibration.get("reason")},
    }
    values["lift_at_10"] = in_business_terms["ranking"]["top_decile_lift"]
    values["expected_profit"] = in_business_terms["economics"]["at_threshold"]["profit"]
    tn, fp, fn, tp = metrics.confusion_counts(labels, predicted)
    deviation = metrics.metric_deviations(tn, fp, fn, tp, values["roc_auc"], seed)

    def quality(name: str) -> dict[str, float]:
        return {"value": values[name], "standard_deviation": deviation[name]}

    return {
        "metrics": {name: values[name] for name in defaults.METRIC_NAMES + defaults.BUSINESS_METRIC_NAMES},
        **in_business_terms,
        "confusion_matrix": {"true_negatives": tn, "false_positives": fp,
                             "false_negatives": fn, "true_positives": tp},
        "binary_classification_metrics": {
            "accuracy": quality("accuracy"), "precision": quality("precision"), "recall": quality("recall"),
            "f1": quality("f1_score"), "auc": quality("roc_auc"),
            "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
        },
    }


def champion_block(args: argparse.Namespace, labels: Any, challenger: dict[str, Any], scores: Any,
                   decision: dict[str, Any], economics: business.Economics, reason: str | None) -> dict[str, Any]:
    block: dict[str, Any] = {"identifier": args.champion_identifier, "version": args.champion_version,
                             "comparable": False, "reason": reason, "metrics": {}, "delta": {}}
    if reason is not None:
        return block
    quality = quality_report(labels, scores, 0, decision, economics)
    block.update({
        "comparable": True, "metrics": quality["metrics"],
        "delta": {name: challenger["metrics"][name] - quality["metrics"][name] for name in quality["metrics"]},
        "confusion_matrix": quality["confusion_matrix"],
        "ranking": quality["ranking"], "economics": quality["economics"], "calibration": quality["calibration"],
    })
    return block


def measured_drift(args: argparse.Namespace, records: Any, rows: int, baseline_statistics: dict[str, Any] | None,
                   schema: data_contract.Schema) -> dict[str, Any]:
    """``drift.json`` of the ``rows`` records against the baseline profile, as evaluation.py writes it."""
    baseline = {"identifier": args.baseline_identifier, "version": args.baseline_version,
                "statistics_uri": args.baseline_uri}
    counts: dict[str, profile.FeatureCounts] = {}
    if baseline_statistics is not None and not args.baseline_unavailable:
        rows, counts = drift_counts(records, baseline_statistics, schema)
    return profile.drift_from_counts(baseline_statistics, baseline, counts, rows, schema, HOLDOUT_SOURCE,
                                     unavailable=args.baseline_unavailable)


def write_scores(args: argparse.Namespace, spark: Any) -> None:
    """``--write-scores``: the pairs of ``churn_common.champion_scores`` from the held-out records at
    ``--holdout`` (a scikit-learn run's, Parquet); a model that cannot score them is recorded as
    unscored, with the reason, as a champion that cannot score is everywhere."""
    with tempfile.TemporaryDirectory(prefix="churn-champion-") as scratch:
        pairs, reason = None, None
        try:
            folder = unpack(args.model, Path(scratch) / "champion")
            schema = data_contract.load_schema(folder / "schema.json")
            records = read_holdout(spark, args.holdout, schema)
            pairs = scored(spark, put_for_executors(spark, folder, args.work_uri, "champion"), records)
        except NotSparkModel:
            reason = "the champion is a scikit-learn model, which the Spark image cannot load"
        except container.ContractError as error:
            reason = f"the champion cannot score this run's customers: {error}"
        except Exception as error:  # a champion that cannot score never fails the job
            reason = f"the champion could not score these customers: {str(error).splitlines()[0]}"
        with container.staged_output(args.output_dir) as staging:
            if pairs is None:
                champion_scores.write_unscored(staging, reason or "the champion could not score these customers")
                print(f"not scored: {reason}")
            else:
                champion_scores.write(staging, *pairs, business.load_decision(folder))
                print(f"scored {len(pairs[0])} held-out customers")


def run(args: argparse.Namespace, spark: Any) -> dict[str, Any]:
    # a bad baseline file is refused first, before Spark reads a record, in evaluation.py's words
    baseline_statistics = profile.read_baseline_statistics(args.baseline) if args.drift else None
    with tempfile.TemporaryDirectory(prefix="churn-evaluation-") as scratch:
        try:
            folder = unpack(args.model, Path(scratch) / "challenger")
        except NotSparkModel as error:
            raise container.ContractError(str(error), ["the model is a scikit-learn model (model.joblib); the Spark "
                                                       "path scores Spark models (train_spark.py)"]) from None
        schema = data_contract.load_schema(folder / "schema.json")
        decision = business.load_decision(folder)
        records = read_holdout(spark, args.holdout, schema).persist()
        labels, scores = scored(spark, put_for_executors(spark, folder, args.work_uri, "challenger"), records)
        if len(labels) == 0:
            raise container.ContractError(args.holdout, ["the records hold no rows; were they written by "
                                                         "preprocess_spark.py?"])
        economics = economics_of(decision)
        positives = int(labels.sum())
        report = quality_report(labels, scores, args.seed, decision, economics)
        report["baseline"] = {"majority_class_accuracy": float(max(positives, len(labels) - positives) / len(labels))}
        report["rows"] = {"test": len(labels), "positive": positives, "negative": int(len(labels) - positives)}
        report["champion"] = None
        if args.champion_unavailable or args.champion is not None or args.champion_scores is not None:
            champion_decision: dict[str, Any] = {}
            scores_of_champion, reason = None, args.champion_unavailable
            champion_labels = labels
            if reason is None and args.champion is None and args.champion_scores is not None:
                # scored by the other engine's image, on these customers as it read them
                champion_labels, scores_of_champion, champion_decision, reason = champion_scores.read(
                    args.champion_scores)
                reason = reason or champion_scores.mismatch(labels, champion_labels)
            elif reason is None:
                try:
                    champion_folder = unpack(args.champion, Path(scratch) / "champion")
                    champion_decision = business.load_decision(champion_folder)
                    champion_labels, scores_of_champion = scored(
                        spark, put_for_executors(spark, champion_folder, args.work_uri, "champion"), records)
                    if not (champion_labels == labels).all():  # Spark keeps the records' order between scans
                        reason = "the champion's scores could not be matched to the challenger's customers"
                except NotSparkModel:
                    reason = "the champion is a scikit-learn model, which the Spark image cannot load"
                except Exception as error:  # a champion that cannot score never fails the job
                    reason = f"the champion could not score these customers: {str(error).splitlines()[0]}"
            report["champion"] = champion_block(args, champion_labels, report,
                                                None if reason else scores_of_champion, champion_decision,
                                                economics, reason)
        drift = measured_drift(args, records, len(labels), baseline_statistics, schema) if args.drift else None
        records.unpersist()
    with container.staged_output(args.output_dir) as staging:
        container.write_json(staging / contract.FILES["evaluation"], report)
        if drift is not None:
            container.write_json(staging / contract.FILES["drift"], drift)
    print("test " + " ".join(f"{name}={value:.4f}" for name, value in report["metrics"].items())
          + f" baseline={report['baseline']['majority_class_accuracy']:.4f}")
    champion = report["champion"]
    if champion and champion["comparable"]:
        print("champion " + " ".join(f"{name}={value:.4f}" for name, value in champion["metrics"].items()))
    elif champion:
        print(f"champion not comparable: {champion['reason']}")
    if drift is not None:
        drifted = [item["name"] for item in drift["features"] if item["level"] == "drift"]
        print(f"drift: {drift['status']}" + (f"; drifted: {', '.join(drifted)}" if drifted else ""))
    return report


def spark_session(step: str) -> Any:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(f"churn-{step}").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> None:
        args = parse_args(argv)
        write_scores(args, spark_session(STEP)) if args.write_scores else run(args, spark_session(STEP))

    return container.run_main(STEP, container.PROCESSING_REASON_FILE, body)


if __name__ == "__main__":
    container.exit_now(main())
