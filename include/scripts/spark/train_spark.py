"""Training step on Spark (a SageMaker Processing job in the Spark image, run by smspark-submit).

Reads the transformed splits preprocess_spark.py wrote (Parquet: the label, then the features under
their preprocessor names), fits Spark ML's RandomForestClassifier with the mission's
hyperparameters mapped as below, scores the validation split, prints ``validation:<name>=<value>;``
lines as training.py does, and writes OUT/model.tar.gz, a model that scores **raw** records:

    pipeline/               the Spark PipelineModel: the preprocessor as one SQLTransformer (built
                            from preprocessor.json, the very expressions the splits were written with),
                            a VectorAssembler, the fitted forest
    schema.json             the data contract the model was trained under
    preprocessor.json       the statistics the preprocessor was built from
    training_metrics.json   hyperparameters, row counts and validation metrics (training.py's keys)
    decision.json           the threshold that maximises the campaign's profit on validation
                            (churn_common.business); no calibrator: the Spark image has no
                            scikit-learn for the isotonic fit, so the scores stay as the forest gives them
    forest.json             the Spark parameters the hyperparameters were mapped to

The mapping (docs/pipeline.md gives the sources):
    n-estimators       -> numTrees
    max-depth          -> maxDepth (depth 0 is one leaf in both)
    min-samples-split  -> minInstancesPerNode = max(1, s // 2). Spark has no minimum size of a node to
                          split, only of each child (treeParams.scala: "Minimum number of instances each
                          child must have after split"); with children of at least s // 2 no node below
                          s (for even s) is split, as scikit-learn's rule says, though Spark also refuses
                          the uneven splits (1 + 3) that scikit-learn would make of a node of 4
    max_features sqrt  -> featureSubsetStrategy = str(max(1, int(sqrt(p)))): scikit-learn floors the
                          root, Spark's "sqrt" takes its ceiling
    max-samples        -> subsamplingRate = max-samples / train rows, below 1 only past max-samples
                          rows: Spark's bootstrap draws a Poisson count per row with that mean, so each
                          tree sees max-samples rows on average where scikit-learn draws exactly that many
    random-state       -> seed (Spark seeds a partition's draws with the seed and the partition's
                          index: the forest depends on the partitioning, not only on the seed)
    gini, bootstrap    -> impurity "gini", bootstrap True; maxBins (default 32) has no counterpart:
                          scikit-learn tries every threshold, Spark the edges of --max-bins quantile bins

The model is saved by Spark where ``--work-uri`` says (every instance writes its parts: in a
multi-instance job an ``s3://`` URI; by default a folder on the driver, right for one instance), then
copied to the driver and packed.

By hand:  spark-submit --py-files churn_common.zip include/scripts/spark/train_spark.py \\
              --train OUTPUT/train --validation OUTPUT/validation --preprocessor OUT/preprocessor \\
              --output-dir MODEL [--n-estimators 100 ...]
"""

from __future__ import annotations

import argparse
import math
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from churn_common import business, container, data_contract, defaults, metrics, preprocessor, spark_sql, tables

STEP = "training"
HYPERPARAMETER_MINIMUMS = {"n_estimators": 1, "max_depth": 0, "min_samples_split": 2, "max_samples": 0}
MODEL_ARCHIVE = "model.tar.gz"
PIPELINE = "pipeline"  # the PipelineModel's folder inside the archive
FEATURES = "features"  # the assembled feature vector
SPARK_MAX_DEPTH = 30  # Spark's own limit on a tree's depth


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in defaults.HYPERPARAMETERS.items():
        parser.add_argument(f"--{name}", type=int, default=value)
    for figure, amount in business.Economics().to_dict().items():
        parser.add_argument(f"--{figure.replace('_', '-')}", type=float, default=amount)
    parser.add_argument("--max-bins", type=int, default=32, help="Spark's quantile bins per continuous feature")
    parser.add_argument("--train", required=True, help="URI of the training split (Parquet)")
    parser.add_argument("--validation", required=True, help="URI of the validation split (Parquet)")
    parser.add_argument("--preprocessor", type=Path, required=True, help="folder of preprocessor.json and schema.json")
    parser.add_argument("--output-dir", type=Path, default=Path(container.container_path("processing/output/model")))
    parser.add_argument("--work-uri", default=None, help="where Spark saves the model before it is packed "
                                                          "(default: a folder on the driver)")
    args = parser.parse_args(argv)
    for name, minimum in HYPERPARAMETER_MINIMUMS.items():
        if getattr(args, name) < minimum:
            raise container.UsageError(f"hyperparameter {name.replace('_', '-')} must be at least {minimum}, "
                                       f"got {getattr(args, name)}")
    if args.max_depth > SPARK_MAX_DEPTH:
        raise container.UsageError(f"hyperparameter max-depth must be at most {SPARK_MAX_DEPTH} on Spark, "
                                   f"got {args.max_depth}")
    if args.max_bins < 2:
        raise container.UsageError(f"--max-bins must be at least 2, got {args.max_bins}")
    problems = business.Economics(args.value_retained, args.offer_cost, args.offer_acceptance).problems()
    if problems:
        raise container.UsageError("; ".join(problems))
    return args


def forest_parameters(hyperparameters: dict[str, int], features: int, train_rows: int,
                      max_bins: int) -> dict[str, Any]:
    """The RandomForestClassifier parameters of the mission's hyperparameters (the module's table)."""
    per_tree = defaults.rows_per_tree(train_rows, hyperparameters["max_samples"])
    return {
        "numTrees": hyperparameters["n_estimators"],
        "maxDepth": hyperparameters["max_depth"],
        "minInstancesPerNode": max(1, hyperparameters["min_samples_split"] // 2),
        "featureSubsetStrategy": str(max(1, int(math.sqrt(features)))),
        "subsamplingRate": min(1.0, per_tree / train_rows) if train_rows else 1.0,
        "bootstrap": True,
        "impurity": "gini",
        "maxBins": max_bins,
        "seed": hyperparameters["random_state"],
        "maxMemoryInMB": 512,  # fewer passes over the data than the 256 default, for the depth-10 trees
    }


def read_split(spark: Any, uri: str, fitted: dict[str, Any]) -> Any:
    """A split as (label, feature_0, ...), checked to hold the features the statistics name."""
    try:
        frame = spark.read.parquet(uri)
    except Exception as error:  # Spark's AnalysisException: no such path, or no Parquet there
        raise container.ContractError(uri, [f"the split cannot be read: {str(error).splitlines()[0]}"]) from None
    names = frame.columns
    if not names or names[0] != tables.TARGET_LABEL:
        raise container.ContractError(uri, [f"expected a '{tables.TARGET_LABEL}' column first; was it written by "
                                            "preprocess_spark.py?"])
    if names[1:] != list(fitted["features"]):
        raise container.ContractError(uri, [
            f"the split's {len(names) - 1} feature(s) are not the {len(fitted['features'])} the preprocessor's "
            "statistics name; were they written by the same preprocessing run?"])
    return frame.toDF(tables.TARGET_LABEL, *spark_sql.feature_columns(len(names) - 1))


def assembler(count: int) -> Any:
    from pyspark.ml.feature import VectorAssembler

    return VectorAssembler(inputCols=spark_sql.feature_columns(count), outputCol=FEATURES)


def packaged_model(schema: data_contract.Schema, fitted: dict[str, Any], forest: Any) -> Any:
    """Raw records -> churn probabilities: the preprocessor's SQL, the assembler, the forest."""
    from pyspark.ml import PipelineModel
    from pyspark.ml.feature import SQLTransformer

    statement = spark_sql.feature_statement(schema.numeric, schema.categorical, fitted)
    return PipelineModel(stages=[SQLTransformer(statement=statement), assembler(len(fitted["features"])), forest])


def churn_scores(predictions: Any) -> tuple[Any, Any]:
    """(labels, churn probabilities) of scored rows, on the driver as numpy arrays: 16 bytes a row."""
    import numpy as np
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    rows = predictions.select(F.col(tables.TARGET_LABEL).cast("long").alias("label"),
                              vector_to_array("probability")[1].alias("score")).collect()
    labels = np.fromiter((row["label"] for row in rows), dtype=np.int64, count=len(rows))
    scores = np.fromiter((row["score"] for row in rows), dtype=np.float64, count=len(rows))
    return labels, scores


def decision_without_calibration(labels: Any, scores: Any, economics: business.Economics) -> dict[str, Any]:
    """decision.json as business.make_decision writes it, with the calibration left out: its isotonic
    fit and folds are scikit-learn's, which the Spark image lacks."""
    threshold = business.best_threshold(labels, scores, economics)
    calibration = {"method": "isotonic", "chosen_on": "validation", "folds": business.CALIBRATION_FOLDS,
                   "brier_raw": business.brier_score(labels, scores),
                   "ece_raw": business.calibration_error(labels, scores), "applied": False, "calibrator": None,
                   "reason": "not tried: the Spark image has no scikit-learn for the isotonic fit"}
    return {"threshold": threshold, "chosen_on": "validation", "economics": economics.to_dict(),
            "calibration": calibration,
            "validation": {"at_threshold": business.campaign(labels, scores, economics, threshold),
                           "at_default": business.campaign(labels, scores, economics, business.DEFAULT_THRESHOLD)}}


def without_checksums(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if Path(member.name).name.endswith(".crc") else member


def copy_to_driver(spark: Any, uri: str, destination: Path) -> None:
    """Copy what Spark saved at ``uri`` (any Hadoop file system) into ``destination`` on the driver."""
    jvm = spark.sparkContext._jvm
    source = jvm.org.apache.hadoop.fs.Path(uri)
    filesystem = source.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    filesystem.copyToLocalFile(False, source, jvm.org.apache.hadoop.fs.Path(str(destination)), True)


def run(args: argparse.Namespace, spark: Any) -> dict[str, float]:
    from pyspark.ml.classification import RandomForestClassifier

    hyperparameters = {name.replace("-", "_"): getattr(args, name.replace("-", "_"))
                       for name in defaults.HYPERPARAMETERS}
    schema = data_contract.load_schema(container.find_single_file(args.preprocessor, "schema.json"))
    fitted = preprocessor.read_statistics(args.preprocessor)
    train = assembler(len(fitted["features"])).transform(read_split(spark, args.train, fitted))
    validation = read_split(spark, args.validation, fitted)
    train_rows = train.count()
    if train_rows == 0:
        raise container.ContractError(args.train, ["the split has no rows; was it written by preprocess_spark.py?"])
    parameters = forest_parameters(hyperparameters, len(fitted["features"]), train_rows, args.max_bins)
    per_tree = round(parameters["subsamplingRate"] * train_rows)
    print(f"training Spark RandomForestClassifier {parameters} on {train_rows} row(s), "
          f"{len(fitted['features'])} feature(s), about {per_tree} row(s) drawn per tree")
    forest = RandomForestClassifier(featuresCol=FEATURES, labelCol=tables.TARGET_LABEL, **parameters)
    model = packaged_model(schema, fitted, forest.fit(train.select(tables.TARGET_LABEL, FEATURES)))

    # the validation split through the packaged assembler and forest (its features are already transformed)
    validation_labels, validation_scores = churn_scores(model.stages[2].transform(
        model.stages[1].transform(validation)))
    scores = metrics.metrics_from_counts(validation_labels, validation_scores)
    for name, value in scores.items():
        print(f"validation:{name}={value:.6f};")
    economics = business.Economics(args.value_retained, args.offer_cost, args.offer_acceptance)
    decision = decision_without_calibration(validation_labels, validation_scores, economics)
    print(f"calibration applied: False ({decision['calibration']['reason']}); threshold {decision['threshold']:.2f} "
          "chosen on validation")

    with tempfile.TemporaryDirectory(prefix="churn-model-") as scratch:
        work_uri = args.work_uri or Path(scratch, "saved").as_uri()
        model.write().overwrite().save(work_uri.rstrip("/") + "/" + PIPELINE)
        folder = Path(scratch, "model")
        folder.mkdir()
        copy_to_driver(spark, work_uri.rstrip("/") + "/" + PIPELINE, folder / PIPELINE)
        container.write_json(folder / "schema.json", schema.to_dict())
        container.write_json(folder / preprocessor.STATISTICS_FILE, fitted)
        container.write_json(folder / business.DECISION_FILE, decision)
        container.write_json(folder / "forest.json", {"estimator": "pyspark.ml.classification.RandomForestClassifier",
                                                      "spark_version": spark.version, "parameters": parameters})
        container.write_json(folder / "training_metrics.json", {
            "hyperparameters": hyperparameters,
            "rows": {"train": train_rows, "validation": len(validation_labels), "per_tree": per_tree},
            "validation": scores,
        })
        with container.staged_output(args.output_dir) as staging, \
                tarfile.open(staging / MODEL_ARCHIVE, "w:gz") as archive:
            for item in sorted(folder.iterdir()):
                # the files at the archive's root, as SageMaker packs a model directory; Hadoop's
                # .crc checksum files are left behind
                archive.add(item, arcname=item.name, filter=without_checksums)
        shutil.rmtree(folder, ignore_errors=True)
    return scores


def spark_session(step: str) -> Any:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(f"churn-{step}").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> dict[str, float]:
        args = parse_args(argv)  # a wrong argument fails before Spark starts
        return run(args, spark_session(STEP))

    return container.run_main(STEP, container.PROCESSING_REASON_FILE, body)


if __name__ == "__main__":
    container.exit_now(main())
