"""Benchmarks: each step as the container runs it, beside its floor, at 10k, 100k and 1M customers.

    make bench                                  # all sizes (about 10 minutes on 2 cores)
    python -m bench.run --sizes 10000 100000    # fewer

For every size it generates data with the sample generator, runs preprocessing.py, training.py and
evaluation.py as subprocesses in the image twin (.venv-container, the SageMaker image's Python and
versions; the project's environment where there is none) and records wall time, CPU time and peak
RSS of each, and measures each step's floor (bench/floors.py) on the same data, in the same
interpreter: each step and its floor three times, interleaved, the best of each reported.
Preprocessing also runs on the same customers as Parquet (what extract_customers writes: numbers
stored as numbers), interleaved with the CSV run, best of three each, and must give the same splits;
reading and checking the input, the part the format changes, is timed on its own for both
(bench/phases.py). It also measures what importing the DAG file adds over Airflow's SDK and the
provider modules it uses, and the local runner's overhead per job on the 10k sample. Results print
as a table and land in bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
SCRIPTS = PROJECT / "include" / "scripts"
DAG_FILE = PROJECT / "dags" / "customer_churn_pipeline.py"
TOY_DAG_FILE = PROJECT / "bench" / "toy_dag.py"  # the same shape, none of this project's code
PARSE_BUDGET_MS = 35  # what parsing the DAG file may add over the toy
RESULTS = PROJECT / "bench" / "results"
SIZES = (10_000, 100_000, 1_000_000)
TARGETS = {"preprocess": 3.0, "train": 1.15, "evaluate": 2.0}  # at 1M customers on 2 cores
REPEATS = 3  # runs of each step and of its floor, interleaved: the best of each is reported
PARQUET_TARGET = 0.6  # preprocessing from Parquet, as a share of the same customers from CSV
MEMORY_LIMIT_MB = {"preprocess": 350}  # bounded memory: Arrow batches, not the whole table
REPORT_AND_DRIFT_SHARE = 0.15
# The evaluation step before it reported ranking, the campaign and calibration: the scripts of this
# revision are run on the same model and customers (git archive), so "today's step" is measured, not
# remembered. Evaluation with the business numbers may take at most BUSINESS_SHARE of it.
EVALUATION_BEFORE_BUSINESS = "17303e6"
BUSINESS_SHARE = 1.3


@dataclass
class Measurement:
    wall: float
    cpu: float
    peak_rss_mb: float


def measure(command: list[str], env: dict[str, str] | None = None) -> tuple[Measurement, str]:
    """Run a command; its own wall time, and the CPU time (user + system) and peak RSS of its process
    tree as the local runner records a job's: from a small recorder process around it, since a child
    of this (by then large) process would inherit this process's memory high-water mark across exec."""
    sys.path.insert(0, str(PROJECT / "include"))
    from churn_pipeline.local.job_process import USAGE_RECORDER, read_usage

    with tempfile.TemporaryDirectory(prefix="churn-usage-") as scratch:
        usage_file = Path(scratch) / "usage.json"
        start = time.perf_counter()
        completed = subprocess.run([sys.executable, "-c", USAGE_RECORDER, str(usage_file), *command],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, **(env or {})})
        wall = time.perf_counter() - start
        usage = read_usage(usage_file)
    if completed.returncode != 0 or usage is None:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stdout[-3000:]}")
    return Measurement(wall, usage.cpu_seconds, usage.peak_rss_mb), completed.stdout


def python(*args: str | Path) -> list[str]:
    """A command in the interpreter the jobs run with: the image twin's, as the local runner uses it."""
    sys.path.insert(0, str(PROJECT / "include"))
    from churn_pipeline.local.image_twin import job_python

    return [str(job_python().executable), *map(str, args)]


def bench_size(rows: int, root: Path) -> dict[str, Any]:
    sys.path.insert(0, str(PROJECT / "include"))
    from churn_pipeline.tooling.sample_data import write_sample

    data, out, model, evaluation = root / "in", root / "out", root / "model", root / "eval"
    parquet_data, parquet_out = root / "in-parquet", root / "out-parquet"
    write_sample(data / "customers.csv", rows, seed=1)
    write_sample(parquet_data / "customers.parquet", rows, seed=1)  # the same customers, typed
    steps = {
        "preprocess": python(SCRIPTS / "preprocessing.py", "--input-dir", data, "--output-dir", out),
        "train": python(SCRIPTS / "training.py", "--train", out / "train", "--validation", out / "validation",
                        "--preprocessor", out / "preprocessor", "--model-dir", model),
        "evaluate": python(SCRIPTS / "evaluation.py", "--model", model, "--holdout", out / "holdout",
                           "--output-dir", evaluation),
    }
    floors = {
        "preprocess": python("-m", "bench.floors", "preprocess", data / "customers.csv", out),
        "train": python("-m", "bench.floors", "train", out),
        "evaluate": python("-m", "bench.floors", "evaluate", model, out),
    }
    result: dict[str, Any] = {"rows": rows, "input_mb": (data / "customers.csv").stat().st_size / 2**20}
    for step, command in steps.items():
        # the step and its floor interleaved, best of REPEATS each: another process taking the CPU
        # for a while then slows both or neither, and cannot decide the ratio
        step_runs, floor_runs = [], []
        for _ in range(REPEATS):
            step_runs.append(measure(command)[0])
            floor_run, printed = measure(floors[step])
            floor_runs.append((json.loads(printed.strip().splitlines()[-1]), floor_run))
        step_run = min(step_runs, key=lambda run: run.wall)
        floor, floor_run = min(floor_runs, key=lambda run: run[0]["wall"])
        result[step] = {"step": asdict(step_run), "floor": {**floor, "peak_rss_mb": floor_run.peak_rss_mb},
                        "ratio": step_run.wall / floor["wall"], "repeats": REPEATS}
        print(f"  {rows:>9,} {step:<10} {step_run.wall:7.2f} s  floor {floor['wall']:6.2f} s  "
              f"x{step_run.wall / floor['wall']:5.2f}  cpu {step_run.cpu:7.2f} s  rss {step_run.peak_rss_mb:7.0f} MB"
              f"  (best of {REPEATS})", flush=True)
        if step == "preprocess":
            result["preprocess_parquet"] = preprocess_from_parquet(parquet_data, parquet_out, out, step_run, rows,
                                                                   command)
            result["read_and_check"] = read_and_check(data, parquet_data, rows)
    return result


def report_and_drift_cost(rows: int, root: Path) -> dict[str, Any]:
    """What the run report and the drift check add to the evaluation step: the job with and without
    the report's curves and importances and the drift measurement (against this run's own profile),
    and rendering the report from the job's files as the gate does."""
    out, model, bare, full = root / "out", root / "model", root / "eval-bare", root / "eval-full"
    bare_run, _ = measure(python(SCRIPTS / "evaluation.py", "--model", model, "--holdout", out / "holdout",
                                 "--no-drift", "--no-details", "--output-dir", bare))
    full_run, _ = measure(python(SCRIPTS / "evaluation.py", "--model", model, "--holdout", out / "holdout",
                                 "--baseline", out / "profile", "--output-dir", full))
    decision = root / "decision.json"
    decision.write_text(json.dumps({"passed": True, "reason": "passed", "reasons": [], "details": ["bench"],
                                    "threshold": 0.75, "evaluation_uri": str(full / "evaluation.json")}))
    # rendered on the Airflow worker, in the project's environment (the image has no matplotlib)
    render = ["-m", "churn_pipeline.report.html", "render", "--decision", decision,
              "--evaluation", full / "evaluation.json",
              "--details", full / "details.json", "--drift", full / "drift.json",
              "--quality", out / "quality" / "data_quality.json", "--run-key", "20260101T000000Z",
              "-o", root / "report.html"]
    render_run, _ = measure([sys.executable, *map(str, render)])
    added = full_run.wall - bare_run.wall
    print(f"  {rows:>9,} report and drift: evaluation job {bare_run.wall:.2f} s -> {full_run.wall:.2f} s "
          f"(+{added / bare_run.wall:.0%}); rendering the report on the worker {render_run.wall:.2f} s", flush=True)
    return {"rows": rows, "evaluate_bare": asdict(bare_run), "evaluate_full": asdict(full_run),
            "render": asdict(render_run), "added_share": added / bare_run.wall}


def business_cost(rows: int, root: Path, repeats: int = 3) -> dict[str, Any] | None:
    """The evaluation step with ranking, the campaign and calibration against the same step as it was
    before them (``EVALUATION_BEFORE_BUSINESS``), on the same model and customers, interleaved, best of
    ``repeats`` each. None where the project is not a git checkout."""
    before = root / "scripts-before"
    archive = subprocess.run(["git", "-C", str(PROJECT), "archive", EVALUATION_BEFORE_BUSINESS, "include/scripts"],
                             capture_output=True)
    if archive.returncode != 0:
        print(f"  business numbers: skipped (no git revision {EVALUATION_BEFORE_BUSINESS} here)", flush=True)
        return None
    before.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
    out, model = root / "out", root / "model"
    # the same model as the step before knew them: its schema without the key it did not have yet
    old_model = root / "model-before"
    shutil.copytree(model, old_model, dirs_exist_ok=True)
    schema = json.loads((old_model / "schema.json").read_text())
    schema.pop("value_column", None)
    (old_model / "schema.json").write_text(json.dumps(schema))
    runs: dict[str, list[Measurement]] = {"before": [], "now": []}
    for attempt in range(repeats):
        for name, scripts, given in (("before", before / "include" / "scripts", old_model), ("now", SCRIPTS, model)):
            runs[name].append(measure(python(scripts / "evaluation.py", "--model", given, "--holdout",
                                             out / "holdout", "--baseline", out / "profile",
                                             "--output-dir", root / f"eval-{name}-{attempt}"))[0])
    best = {name: min(found, key=lambda run: run.wall) for name, found in runs.items()}
    share = best["now"].wall / best["before"].wall
    print(f"  {rows:>9,} business numbers: evaluation job {best['before'].wall:.2f} s before them, "
          f"{best['now'].wall:.2f} s now (x{share:.2f}; best of {repeats} each)", flush=True)
    return {"rows": rows, "revision_before": EVALUATION_BEFORE_BUSINESS, "before": asdict(best["before"]),
            "now": asdict(best["now"]), "share": share}


def preprocess_from_parquet(data: Path, out: Path, csv_out: Path, csv_run: Measurement, rows: int,
                            csv_command: list[str], repeats: int = 3) -> dict[str, Any]:
    """Preprocessing of the same customers from Parquet, interleaved with the CSV run: best of
    ``repeats`` each, so that another process taking the CPU for a while cannot decide the ratio."""
    parquet_runs, csv_runs = [], [csv_run]
    for attempt in range(repeats):
        parquet_runs.append(measure(python(SCRIPTS / "preprocessing.py", "--input-dir", data, "--output-dir", out))[0])
        if attempt < repeats - 1:
            csv_runs.append(measure(csv_command)[0])
    for split in ("train/train.csv", "validation/validation.csv", "test/test.csv"):
        if (out / split).read_bytes() != (csv_out / split).read_bytes():
            raise RuntimeError(f"preprocessing from Parquet wrote another {split} than from CSV: not the same work")
    best_parquet = min(parquet_runs, key=lambda run: run.wall)
    best_csv = min(csv_runs, key=lambda run: run.wall)
    share = best_parquet.wall / best_csv.wall
    print(f"  {rows:>9,} {'  parquet':<10} {best_parquet.wall:7.2f} s  x{share:.2f} of the CSV run's "
          f"{best_csv.wall:.2f} s (best of {repeats} each)  cpu {best_parquet.cpu:7.2f} s  "
          f"rss {best_parquet.peak_rss_mb:7.0f} MB", flush=True)
    return {"step": asdict(best_parquet), "csv": asdict(best_csv), "share_of_csv": share,
            "cpu_share_of_csv": best_parquet.cpu / best_csv.cpu}


def read_and_check(csv_data: Path, parquet_data: Path, rows: int) -> dict[str, Any]:
    """The part of preprocessing the format changes (bench/phases.py), for both formats."""
    timed = {}
    for name, folder in (("csv", csv_data), ("parquet", parquet_data)):
        _, printed = measure(python("-m", "bench.phases", folder))
        timed[name] = json.loads(printed.strip().splitlines()[-1])
    share = timed["parquet"]["wall"] / timed["csv"]["wall"]
    print(f"  {rows:>9,} {'  read+check':<10} CSV {timed['csv']['wall']:.2f} s, Parquet "
          f"{timed['parquet']['wall']:.2f} s (x{share:.2f}): the part of preprocessing the format changes", flush=True)
    return {**timed, "share_of_csv": share}


def parse_time(repeats: int = 11) -> dict[str, dict[str, float]]:
    """Median milliseconds of executing the DAG file, of a DAG of the same shape without this project's
    code (``bench/toy_dag.py``), and what the DAG file adds over it, per backend."""
    probe = (
        "import sys, time, importlib.util;"
        # what the dag-processor holds when it forks a parse (Airflow's serialization, timetables and
        # asset definitions), the Airflow names the DAG files use (the SDK loads them lazily) and the
        # provider's operators; what is left is building the DAG, and this project's own code
        "import airflow.dag_processing.manager;"
        "from airflow.sdk import DAG, Asset, AssetWatcher, BaseOperator, CronTriggerTimetable, Param, TriggerRule,"
        " XComArg, chain;"
        "from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator;"
        "import airflow.providers.amazon.aws.operators.sagemaker, pendulum;"
        "start = time.perf_counter();"
        "spec = importlib.util.spec_from_file_location('dag', sys.argv[1]);"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module);"
        "print((time.perf_counter() - start) * 1000)"
    )
    # A scheduler parses with the modules' bytecode cached; compiling them on every probe would measure
    # the compiler (an environment with PYTHONDONTWRITEBYTECODE set does that).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(PROJECT / "include"), str(PROJECT / "dags"),
                    str(PROJECT / "bench")], check=True, capture_output=True)  # the scheduler's interpreter's
    found = {}
    for backend in ("local", "sagemaker"):
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env.update({"CHURN_BACKEND": backend, "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/bench"})
        medians = {}
        for name, path in (("dag", DAG_FILE), ("toy", TOY_DAG_FILE)):
            samples = []
            for _ in range(repeats):  # interleaving would be fairer to a drifting machine; a quiet one is assumed
                completed = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True,
                                           env=env, check=True)  # the scheduler's interpreter, not the jobs'
                samples.append(float(completed.stdout.strip().splitlines()[-1]))
            medians[name] = statistics.median(samples)
        found[backend] = {**medians, "added": medians["dag"] - medians["toy"]}
    return found


def timed(run: Callable[[dict[str, Any]], dict[str, Any]], request: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    description = run(request)
    return time.perf_counter() - start, description


def runner_overhead(root: Path, repeats: int = 3) -> dict[str, float]:
    """Seconds the local runner adds per job (staging, process start, storing outputs) on the 10k sample."""
    from churn_pipeline.domain.layout import RunLayout
    from churn_pipeline.domain.settings import DEFAULT_SCHEMA_FILE, SAMPLE_DATA_FILE, load_settings
    from churn_pipeline.local.runner import LocalJobRunner
    from churn_pipeline.requests.processing import PREPROCESSING_OUTPUTS, evaluate_request, preprocess_request
    from churn_pipeline.requests.training import TRAINING_CHANNELS, train_request
    from churn_pipeline.services.archives import deterministic_tar
    from churn_pipeline.services.objectstore import LocalObjectStore, upload_tree

    overheads: dict[str, list[float]] = {"preprocess": [], "train": [], "evaluate": []}
    for attempt in range(repeats):
        settings = load_settings({"CHURN_LOCAL_ROOT": str(root / f"store-{attempt}")})
        store = LocalObjectStore(settings.local_root)
        layout = RunLayout(settings.base_uri, f"20260101T0{attempt}0000Z")
        upload_tree(store, SCRIPTS, layout.code_uri)
        store.write_bytes(layout.sourcedir_uri, deterministic_tar(SCRIPTS))
        store.upload_file(SAMPLE_DATA_FILE, settings.default_input_uri)
        store.upload_file(DEFAULT_SCHEMA_FILE, layout.schema_uri)
        runner = LocalJobRunner(store, log=lambda _line: None)
        splits = {name: layout.preprocessing_uri(name) for name in PREPROCESSING_OUTPUTS}

        wall, _ = timed(runner.run_processing, preprocess_request(
            settings, layout, job_name=f"p{attempt}", image_uri="local", input_uri=settings.default_input_uri,
            schema_uri=layout.schema_uri))
        direct, _ = measure(python(SCRIPTS / "preprocessing.py", "--input-dir", SAMPLE_DATA_FILE.parent,
                                   "--output-dir", root / f"direct-{attempt}" / "out"))
        overheads["preprocess"].append(wall - direct.wall)
        wall, trained = timed(runner.run_training, train_request(
            settings, layout, job_name=f"t{attempt}", image_uri="local",
            channels={c: splits[c] for c in TRAINING_CHANNELS}))
        out = root / f"direct-{attempt}" / "out"
        direct, _ = measure(python(SCRIPTS / "training.py", "--train", out / "train", "--validation",
                                   out / "validation", "--preprocessor", out / "preprocessor",
                                   "--model-dir", root / f"direct-{attempt}" / "model"))
        overheads["train"].append(wall - direct.wall)
        wall, _ = timed(runner.run_processing, evaluate_request(
            settings, layout, job_name=f"e{attempt}", image_uri="local",
            model_artifact_uri=trained["ModelArtifacts"]["S3ModelArtifacts"], holdout_uri=splits["holdout"]))
        direct, _ = measure(python(SCRIPTS / "evaluation.py", "--model", root / f"direct-{attempt}" / "model",
                                   "--holdout", out / "holdout", "--output-dir", root / f"direct-{attempt}" / "eval"))
        overheads["evaluate"].append(wall - direct.wall)
    return {step: statistics.median(values) for step, values in overheads.items()}


def verdicts(results: dict[str, Any]) -> list[str]:
    lines = []
    largest = results["sizes"][-1]
    for step, target in TARGETS.items():
        ratio = largest[step]["ratio"]
        lines.append(f"{step} at {largest['rows']:,} rows: x{ratio:.2f} of its floor (target x{target}): "
                     + ("met" if ratio <= target else f"missed by {ratio / target:.2f}x"))
        if step in MEMORY_LIMIT_MB:
            rss = largest[step]["step"]["peak_rss_mb"]
            lines.append(f"{step} peak memory {rss:.0f} MB (limit {MEMORY_LIMIT_MB[step]} MB): "
                         + ("met" if rss <= MEMORY_LIMIT_MB[step] else "missed"))
    share = largest["preprocess_parquet"]["share_of_csv"]
    lines.append(f"preprocess from Parquet at {largest['rows']:,} rows: x{share:.2f} of the same customers from CSV "
                 f"(target x{PARQUET_TARGET}): " + ("met" if share <= PARQUET_TARGET else
                                                    f"missed by {share / PARQUET_TARGET:.2f}x"))
    by_rows = {size["rows"]: size for size in results["sizes"]}
    if 100_000 in by_rows and 1_000_000 in by_rows:
        for step in TARGETS:
            growth = by_rows[1_000_000][step]["step"]["peak_rss_mb"] / by_rows[100_000][step]["step"]["peak_rss_mb"]
            lines.append(f"{step} peak memory grows x{growth:.1f} for x10 rows (linear or better: "
                         + ("met" if growth <= 10 else "missed") + ")")
    cost = results["report_and_drift"]
    lines.append(f"report data and drift add {cost['added_share']:.0%} to the evaluation step at {cost['rows']:,} rows "
                 f"(target at most {REPORT_AND_DRIFT_SHARE:.0%}): "
                 + ("met" if cost["added_share"] <= REPORT_AND_DRIFT_SHARE else "missed")
                 + f"; rendering the report on the Airflow worker takes {cost['render']['wall']:.2f} s at any size")
    business = results.get("business")
    if business:
        lines.append(f"evaluation with ranking, campaign and calibration at {business['rows']:,} rows: "
                     f"x{business['share']:.2f} of the step before them (target at most x{BUSINESS_SHARE}): "
                     + ("met" if business["share"] <= BUSINESS_SHARE else "missed"))
    for backend, parse in results["parse_ms"].items():
        added = parse["added"]
        lines.append(f"DAG file parse ({backend} backend) {parse['dag']:.1f} ms, a toy DAG of its shape "
                     f"{parse['toy']:.1f} ms: adds {added:.1f} ms (budget {PARSE_BUDGET_MS} ms): "
                     + ("met" if added <= PARSE_BUDGET_MS else "missed"))
    for step, seconds in results["runner_overhead_s"].items():
        lines.append(f"local runner overhead for {step} on the 10k sample: {seconds:.2f} s (budget 1 s): "
                     + ("met" if seconds <= 1 else "missed"))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark each step against its floor.")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)
    step_python = python("-c", "import platform; print(platform.python_version())")
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "job_python": subprocess.run(step_python, capture_output=True, text=True).stdout.strip()},
        "sizes": [],
    }
    print(f"  {'rows':>9} {'step':<10} {'wall':>9}  {'floor':>12}  {'ratio':>6}  {'cpu':>11}  {'peak rss':>10}")
    with tempfile.TemporaryDirectory(prefix="churn-bench-") as scratch:
        for rows in sorted(args.sizes):
            results["sizes"].append(bench_size(rows, Path(scratch) / str(rows)))
        largest = max(args.sizes)
        results["report_and_drift"] = report_and_drift_cost(largest, Path(scratch) / str(largest))
        results["business"] = business_cost(largest, Path(scratch) / str(largest))
        results["parse_ms"] = parse_time()
        results["runner_overhead_s"] = runner_overhead(Path(scratch) / "runner")
    results["verdicts"] = verdicts(results)
    print("\n".join(results["verdicts"]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
