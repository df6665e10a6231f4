"""Scoring step on Spark (a SageMaker Processing job in the Spark image, run by smspark-submit).

Scores every customer of a Parquet table with a Spark model (model.tar.gz from train_spark.py) and
writes what Batch Transform writes for a scikit-learn model, so that the scoring task reads both
alike: JSON lines, one per customer, the customer's id (and every column read) joined with the
model's answer under ``SageMakerOutput`` (``churn``, ``probability``, ``contact`` at the model's own
threshold, ``expected_profit``, ``value``), as ``inference.py`` answers. Spark writes the lines in
parts under ``--output``; the order of the customers is not kept.

Cells are read as the serving code reads them (``data_contract.prepare_features``): numbers that do
not parse and blank cells are missing, and the model imputes them; columns the schema does not
name are ignored. The per-customer reasons (``drivers``) are not computed on Spark: the attributions
walk scikit-learn's trees.

By hand:  spark-submit --py-files churn_common.zip include/scripts/spark/score_spark.py \\
              --model MODEL --customers CUSTOMERS_URI --output SCORES_URI
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from churn_common import business, container, contract, data_contract, metrics

STEP = "scoring"
MODEL_ARCHIVE = "model.tar.gz"
PIPELINE = "pipeline"
WHITE_SPACE_AT_ENDS = r"(?U)^\s+|\s+$"
NUMBER_PATTERN = "(?i)" + r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity)$"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path(container.container_path("processing/input/model")))
    parser.add_argument("--customers", required=True, help="URI of the customers to score (Parquet)")
    parser.add_argument("--output", required=True, help="URI the JSON lines are written under")
    parser.add_argument("--work-uri", default=None, help="where the model is put for Spark's executors to read "
                                                          "(default: the folder on the driver it is unpacked in)")
    return parser.parse_args(argv)


def unpack(model_path: Path, scratch: Path) -> Path:
    if (model_path / PIPELINE).is_dir():
        return model_path
    archive = container.find_single_file(model_path, MODEL_ARCHIVE)
    try:
        with tarfile.open(archive) as bundle:
            bundle.extractall(scratch, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise container.ContractError(str(archive), [f"the model archive cannot be unpacked: {error}"]) from None
    if not (scratch / PIPELINE).is_dir():
        raise container.ContractError(str(archive), [f"{PIPELINE}/ is not at the archive root; was it written by "
                                                     "train_spark.py?"])
    return scratch


def model_uri(spark: Any, folder: Path, work_uri: str | None) -> str:
    """The URI Spark loads the model from: the folder itself, or a copy under ``work_uri``."""
    if work_uri is None:
        return (folder / PIPELINE).as_uri()
    jvm = spark.sparkContext._jvm
    target = work_uri.rstrip("/") + f"/{PIPELINE}"
    destination = jvm.org.apache.hadoop.fs.Path(target)
    filesystem = destination.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    filesystem.copyFromLocalFile(False, True, jvm.org.apache.hadoop.fs.Path(str(folder / PIPELINE)), destination)
    return target


def served_cells(customers: Any, schema: data_contract.Schema) -> Any:
    """Every column the model reads as the serving code reads it: text trimmed, blank cells missing,
    numbers parsed where they are numbers (missing otherwise); the id as text."""
    from pyspark.sql import functions as F

    missing = [name for name in schema.features if name not in customers.columns]
    if missing:
        raise container.ContractError("customers", [f"missing column '{name}'" for name in missing])

    def text(name: str) -> Any:
        trimmed = F.regexp_replace(F.col(name).cast("string"), WHITE_SPACE_AT_ENDS, "")
        return F.when(trimmed == "", F.lit(None).cast("string")).otherwise(trimmed)

    columns = []
    if schema.id_column and schema.id_column in customers.columns:
        columns.append(text(schema.id_column).alias(schema.id_column))
    for name in schema.numeric:
        if dict(customers.dtypes)[name] in ("double", "float", "int", "bigint", "smallint", "tinyint"):
            number = F.col(name).cast("double")
            columns.append(F.when(F.isnan(number), F.lit(None).cast("double")).otherwise(number).alias(name))
        else:
            cell = text(name)
            columns.append(F.when(cell.rlike(NUMBER_PATTERN), cell.cast("double")).alias(name))
    columns += [text(name).alias(name) for name in schema.categorical]
    return customers.select(*columns)


def answers(scored: Any, schema: data_contract.Schema, decision: dict[str, Any]) -> Any:
    """The joined lines: the customer's cells and, under SageMakerOutput, inference.py's keys."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    economics = business.Economics(**decision["economics"]) if decision.get("economics") else business.Economics()
    gain = economics.offer_acceptance * economics.value_retained
    keys = contract.PREDICTION_KEYS
    probability = vector_to_array("probability")[1]
    value = F.col(schema.value_column) if schema.value_column else F.lit(None).cast("double")
    prediction = F.struct(
        (probability > metrics.DECISION_THRESHOLD).alias(keys["predicted_churn"]),
        probability.alias(keys["probability"]),
        (probability > float(decision["threshold"])).alias(keys["contact"]),
        F.round(probability * gain - economics.offer_cost, 6).alias(keys["expected_profit"]),
        value.alias(keys["value"]),
    )
    kept = [name for name in ([schema.id_column] if schema.id_column else []) + list(schema.features)
            if name in scored.columns]
    return scored.select(*kept, prediction.alias(contract.TRANSFORM_JOINED_OUTPUT_KEY))


def run(args: argparse.Namespace, spark: Any) -> int:
    from pyspark.ml import PipelineModel

    with tempfile.TemporaryDirectory(prefix="churn-scoring-") as scratch:
        folder = unpack(args.model, Path(scratch))
        schema = data_contract.load_schema(folder / "schema.json")
        decision = business.load_decision(folder)
        try:
            customers = spark.read.parquet(args.customers)
        except Exception as error:  # Spark's AnalysisException: no such path, or no Parquet there
            raise container.ContractError(args.customers, [f"the customers cannot be read: "
                                                           f"{str(error).splitlines()[0]}"]) from None
        model = PipelineModel.load(model_uri(spark, folder, args.work_uri))
        lines = answers(model.transform(served_cells(customers, schema)), schema, decision).persist()
        # nulls written as null, as the joined output of Batch Transform keeps every key of a record
        lines.write.mode("overwrite").option("ignoreNullFields", "false").json(args.output)
        count = lines.count()
        lines.unpersist()
    print(f"scored {count} customer(s) into {args.output}")
    return count


def spark_session(step: str) -> Any:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(f"churn-{step}").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def main(argv: Sequence[str] | None = None) -> int:
    """Like the other steps, but a refused input is reported as the scoring's failure: the contract's
    bad-input form names the three steps the training DAG runs, and scoring checks its customers
    before the job (as it does before a Batch Transform)."""
    refused: list[str] = []

    def body() -> None:
        try:
            run(parse_args(argv), spark_session(STEP))
        except (container.ContractError, container.UsageError) as error:
            refused.append(f"{STEP} failed: {error}")

    code = container.run_main(STEP, container.PROCESSING_REASON_FILE, body)
    if refused:
        print(refused[0], file=sys.stderr)
        container.write_failure_reason(container.PROCESSING_REASON_FILE, refused[0])
        return 1
    return code


if __name__ == "__main__":
    container.exit_now(main())
