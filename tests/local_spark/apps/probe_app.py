"""A tiny PySpark app that reports what it saw, run by the Spark tests through the local runner as
the Spark processing image would run it (``smspark-submit ... probe_app.py <arguments>``).

It reads the CSV files at ``--input``, writes them as Parquet with a doubled ``value`` to
``--output`` (helpers from the job's ``--py-files``), and writes ``probe.json`` to ``--report-dir``:
a spark-defaults property, the master, the executors and where its tasks ran. ``--fail MESSAGE``
writes MESSAGE where SageMaker reads a processing job's failure reason and exits 3 before Spark
starts; ``--crash`` raises without writing one; ``--sleep SECONDS`` waits that long with Spark
started (for a test to stop it meanwhile).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path

PROBED_PROPERTY = "spark.churn.probe"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--report-dir")
    parser.add_argument("--fail")
    parser.add_argument("--crash", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    return parser.parse_args(argv)


def where_a_task_runs(_rows: object) -> list[tuple[str, str]]:
    """The host and working directory of the process running a task (an executor's own folder)."""
    return [(socket.gethostname(), os.getcwd())]


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.fail:
        reason = Path(os.environ["SAGEMAKER_BASE_DIR"]) / "output" / "message"
        reason.parent.mkdir(parents=True, exist_ok=True)
        reason.write_text(args.fail, encoding="utf-8")
        return 3
    if args.crash:
        raise RuntimeError("the probe crashed")

    from probe_helpers import doubled  # shipped in --py-files
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("probe").getOrCreate()
    context = spark.sparkContext
    if args.sleep:
        print("probe: Spark started, sleeping", flush=True)
        time.sleep(args.sleep)
    frame = spark.read.option("header", True).option("inferSchema", True).csv(args.input)
    doubled(frame).write.mode("overwrite").parquet(args.output)
    slots = max(4, context.defaultParallelism * 2)
    places = context.parallelize(range(slots), slots).mapPartitions(where_a_task_runs).distinct().collect()
    executors = context._jsc.sc().getExecutorIds().mkString(",")  # PySpark has no API for them
    report = {
        "property": spark.conf.get(PROBED_PROPERTY, None),
        "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
        "master": context.master,
        "executor_ids": sorted(filter(None, executors.split(","))),
        "task_places": sorted(list(place) for place in places),
        "rows": frame.count(),
        "python": sys.executable,
    }
    spark.stop()
    Path(args.report_dir).mkdir(parents=True, exist_ok=True)
    (Path(args.report_dir) / "probe.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
