"""The whole DAG at scale: one nightly run through the local backend on N customers, each job's peak memory.

    make bench-dag                           # 10 million customers (about 40 minutes on 2 cores)
    make bench-dag ROWS=1000000 ENGINES="sklearn spark"   # both engines, one after the other, same customers
    make bench-dag ENGINES="sklearn spark" SPARK_MEMORY=4g  # 10 million: Spark's JVMs need more than the defaults
    python -m bench.whole_dag --rows 2000000 --workdir /var/tmp/churn-dag

The customers are the sample generator's, written as CSV parts of at most a million rows (each part its
own seed, so no id repeats across parts), into a fresh local store. Real Airflow then runs
``customer_churn_pipeline`` with ``airflow dags test`` in a fresh home, the jobs in the image twin, and
the run's job descriptions give each job's wall time and its process tree's peak resident memory (the
local runner records them from wait4: on Spark, the largest of the job's processes, not their sum).
With ``--engines sklearn spark`` the same customers go through the DAG once per engine, each run in its
own Airflow home and store; the Spark run asks for ``--spark-instances`` (default 2) instances per step,
which the Spark twin runs as a standalone cluster of that many workers on 127.0.0.1. Results print as a
table and land in ``bench/results/dag-<rows>.json`` (``dag-<rows>-<engines>.json`` for other engines).
Not part of ``make bench``: it needs about 4 GB of disk per 10 million
customers and most of an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
AIRFLOW = PROJECT / ".venv" / "bin" / "airflow"
RESULTS = PROJECT / "bench" / "results"
DAG_ID = "customer_churn_pipeline"
LOGICAL_DATE = "2026-11-01"
PART_ROWS = 1_000_000
JOB_MEMORY_LIMIT_MB = 4096  # what each job may take at 10 million customers (issue's target)
DAG_TIMEOUT_SECONDS = 4 * 3600


def write_parts(folder: Path, rows: int) -> list[Path]:
    """The customers as CSV parts of at most PART_ROWS rows each, written one part at a time."""
    sys.path.insert(0, str(PROJECT / "include"))
    from churn_pipeline.tooling.sample_data import write_sample

    parts = []
    for index, start in enumerate(range(0, rows, PART_ROWS)):
        parts.append(write_sample(folder / f"part-{index:04d}.csv", min(PART_ROWS, rows - start), seed=101 + index))
    return parts


SPARK_STEPS = ("PREPROCESS", "TRAIN", "EVALUATE")


def airflow_env(home: Path, store: Path, engine: str = "sklearn", spark_instances: int = 2,
                spark_memory: str = "") -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CHURN_", "AIRFLOW"))}
    env["CHURN_ENGINE"] = engine
    if engine == "spark":
        env.update({f"CHURN_SPARK_{step}_INSTANCE_COUNT": str(spark_instances) for step in SPARK_STEPS})
    if engine == "spark" and spark_memory:  # each loopback worker, its executor and the driver (see smspark_submit)
        env.update({f"SPARK_{jvm}_MEMORY": spark_memory for jvm in ("WORKER", "EXECUTOR", "DRIVER")})
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "CHURN_LOCAL_ROOT": str(store),
        "CHURN_RETRIES": "0",  # a bench measures one attempt; a failure is reported, not retried
        "CHURN_MAX_RUNTIME_SECONDS": str(DAG_TIMEOUT_SECONDS),
    })
    return env


def job_figures(store: Path) -> list[dict[str, Any]]:
    """Each job of the run, in start order: its step, status, wall time and recorded resource usage."""
    jobs = []
    for description_file in sorted((store / "jobs").glob("*/description.json")):
        description = json.loads(description_file.read_text(encoding="utf-8"))
        name = next(description[field] for field in ("ProcessingJobName", "TrainingJobName", "TransformJobName")
                    if field in description)
        status = next(description[field] for field in ("ProcessingJobStatus", "TrainingJobStatus",
                                                        "TransformJobStatus") if field in description)
        start = next(description[field] for field in ("ProcessingStartTime", "TrainingStartTime",
                                                       "TransformStartTime") if field in description)
        end = next((description[field] for field in ("ProcessingEndTime", "TrainingEndTime", "TransformEndTime")
                    if field in description), None)
        wall = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() if end else None
        jobs.append({"job": name, "status": status, "started": start, "wall_s": wall,
                     **description.get("LocalResourceUsage", {})})
    return sorted(jobs, key=lambda job: job["started"])


def run_dag(rows: int, workdir: Path, engine: str = "sklearn", spark_instances: int = 2,
            customers: Path | None = None, spark_memory: str = "") -> dict[str, Any]:
    """One run of the DAG on ``engine``, in ``workdir``; the customers are generated there, or copied
    from ``customers`` (another engine's run of the same bench), so that both engines read the same."""
    home, store = workdir / "airflow", workdir / "store"
    env = airflow_env(home, store, engine, spark_instances, spark_memory)
    input_uri = local_input_uri(env, "bench-input/customers")
    data = store / "s3" / input_uri.removeprefix("s3://").rstrip("/")  # where the local store keeps that URI
    started = time.perf_counter()
    if customers is None:
        parts = write_parts(data, rows)
    else:
        shutil.copytree(customers, data)
        parts = sorted(data.glob("part-*.csv"))
    generated = time.perf_counter() - started
    input_mb = sum(part.stat().st_size for part in parts) / 2**20
    print(f"  {engine}: {rows:,} customers in {len(parts)} CSV parts ({input_mb:,.0f} MB), ready in {generated:.0f} s",
          flush=True)
    subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, check=True, capture_output=True, cwd=workdir)
    conf = {"input_uri": input_uri}
    started = time.perf_counter()
    completed = subprocess.run([str(AIRFLOW), "dags", "test", DAG_ID, LOGICAL_DATE, "--conf", json.dumps(conf)],
                               env=env, capture_output=True, text=True, cwd=workdir, timeout=DAG_TIMEOUT_SECONDS)
    dag_wall = time.perf_counter() - started
    (workdir / "dag.log").write_text(completed.stdout + completed.stderr, encoding="utf-8")
    jobs = job_figures(store)
    return {"engine": engine, "spark_instances": spark_instances if engine == "spark" else None,
            "spark_memory": (spark_memory or "the twin's defaults") if engine == "spark" else None,
            "rows": rows, "input_mb": input_mb, "parts": len(parts), "customers": str(data),
            "dag_returncode": completed.returncode, "dag_wall_s": dag_wall, "jobs": jobs,
            "log": str(workdir / "dag.log")}


def local_input_uri(env: dict[str, str], key: str) -> str:
    """The S3 URI of ``key`` in the run's bucket (the local store keeps it under ``<local root>/s3/<bucket>/``)."""
    sys.path.insert(0, str(PROJECT / "include"))
    from churn_pipeline.domain.settings import load_settings

    settings = load_settings({name: value for name, value in env.items() if name.startswith("CHURN_")})
    return f"s3://{settings.bucket}/{key}/"


def print_run(result: dict[str, Any]) -> None:
    print(f"  {result['engine']} DAG run: {'succeeded' if result['dag_returncode'] == 0 else 'FAILED'} "
          f"in {result['dag_wall_s']:.0f} s")
    for job in result["jobs"]:
        rss = job.get("PeakRssMB")
        verdict = "" if rss is None else ("  (below 4 GB)" if rss < JOB_MEMORY_LIMIT_MB else "  (ABOVE 4 GB)")
        print(f"  {job['job']:<48} {job['status']:<10} {job['wall_s'] or 0:8.0f} s  "
              f"peak {rss if rss is not None else float('nan'):8,.0f} MB{verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One whole DAG run through the local backend on N customers.")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--engines", nargs="+", choices=("sklearn", "spark"), default=["sklearn"])
    parser.add_argument("--spark-instances", type=int, default=2, help="instances per Spark step (loopback workers)")
    parser.add_argument("--spark-memory", default="",
                        help="each loopback worker's, its executor's and the driver's JVM memory, such as 4g "
                             "(default: the twin's laptop sizes, 1g workers of 512m executors)")
    parser.add_argument("--workdir", type=Path, default=None, help="kept after the run (default: a temporary one)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    suffix = "" if args.engines == ["sklearn"] else "-" + "-".join(args.engines)
    output = args.output or RESULTS / f"dag-{args.rows}{suffix}.json"
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="churn-bench-dag-"))
    runs: list[dict[str, Any]] = []
    try:
        for engine in args.engines:
            customers = Path(runs[0]["customers"]) if runs else None
            runs.append(run_dag(args.rows, workdir / engine, engine, args.spark_instances, customers,
                                args.spark_memory))
            print_run(runs[-1])
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform()}
    result = {**runs[0], "machine": machine} if len(runs) == 1 else {"rows": args.rows, "runs": runs,
                                                                        "machine": machine}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {output}")
    return 0 if all(run["dag_returncode"] == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
