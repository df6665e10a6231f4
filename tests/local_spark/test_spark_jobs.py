"""Spark processing requests through the local runner, in the Spark twin with real Spark: the request
PySparkProcessor sends, on local threads and on a two-worker loopback cluster; what the job sees
(its spark-defaults, its py-files), where it writes (only where its request says), its event log, and
how it fails. One Spark start per scenario, the cluster once: each costs seconds."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from churn_pipeline.local.runner import LocalJobRunner
from churn_pipeline.services.objectstore import LocalObjectStore
from tests.local_spark.conftest import BUCKET, pyspark_request, store_files, write_customers

pytestmark = pytest.mark.xdist_group("spark")

REPORT = "/opt/ml/processing/output/report"
CONFIGURATION = [
    {"Classification": "spark-defaults", "Properties": {
        "spark.churn.probe": "from configuration.json", "spark.sql.shuffle.partitions": "3",
        "spark.executor.memory": "60g"}},
    {"Classification": "spark-env", "Properties": {},
     "Configurations": [{"Classification": "export", "Properties": {"PROBE": "1"}}]},
]


@dataclass
class SparkRun:
    store: LocalObjectStore
    job_name: str
    description: dict[str, Any]
    lines: list[str]
    new_files: set[str]

    def report(self) -> dict[str, Any]:
        return json.loads(self.store.read_bytes(f"s3://{BUCKET}/{self.job_name}/report/probe.json"))


def run_probe(folder: Path, job_name: str, arguments: list[str], instances: int = 1,
              configuration: list[dict[str, Any]] | None = CONFIGURATION) -> SparkRun:
    store = LocalObjectStore(folder)
    write_customers(store, f"s3://{BUCKET}/raw/customers", rows=40)
    request = pyspark_request(store, job_name, arguments, instances, configuration)
    before = store_files(store)
    lines: list[str] = []
    description = LocalJobRunner(store, log=lines.append).run_processing(request)
    return SparkRun(store, job_name, description, lines, store_files(store) - before)


def probe_arguments(output: str) -> list[str]:
    return ["--input", f"s3://{BUCKET}/raw/customers", "--output", f"s3://{BUCKET}/{output}/",
            "--report-dir", REPORT]


@pytest.fixture(scope="module")
def local_run(spark_twin: Path, tmp_path_factory: pytest.TempPathFactory) -> SparkRun:
    return run_probe(tmp_path_factory.mktemp("spark-local"), "probe-local", probe_arguments("features/doubled"))


@pytest.fixture(scope="module")
def cluster_run(spark_twin: Path, tmp_path_factory: pytest.TempPathFactory) -> SparkRun:
    return run_probe(tmp_path_factory.mktemp("spark-cluster"), "probe-cluster", probe_arguments("features/two"),
                     instances=2)


def processes_of(workspace: Path) -> list[str]:
    """The processes a job left behind: any started in its workspace or naming it (JVMs, Python workers)."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
        cmdline, cwd = process.info["cmdline"] or [], process.info["cwd"] or ""
        if cwd.startswith(str(workspace)) or any(str(workspace) in part for part in cmdline):
            found.append(f"{process.info['pid']}: {' '.join(cmdline)[:200]}")
    return found


def only_where_the_request_says(run: SparkRun, output: str) -> set[str]:
    allowed = (f"s3/{BUCKET}/{output}/", f"s3/{BUCKET}/{run.job_name}/report/",
               f"s3/{BUCKET}/spark-events/{run.job_name}/", f"jobs/{run.job_name}/")
    return {path for path in run.new_files if not path.startswith(allowed)}


def test_a_pyspark_request_runs_in_the_spark_twin_on_local_threads(local_run: SparkRun, spark_twin: Path) -> None:
    assert local_run.description["ProcessingJobStatus"] == "Completed", local_run.description.get("FailureReason")
    report = local_run.report()
    assert report["master"] == "local[*]"
    assert report["rows"] == 40
    assert Path(report["python"]).parent == spark_twin.parent
    assert any(f"job python: {spark_twin}" in line and "the Spark twin" in line for line in local_run.lines)


def test_the_job_sees_its_spark_defaults_and_this_machine_keeps_its_sizes(local_run: SparkRun) -> None:
    report = local_run.report()
    assert report["property"] == "from configuration.json"
    assert report["shuffle_partitions"] == "3"
    log = "\n".join(local_run.lines)
    assert "replaced locally (this machine's sizes and loopback): spark.executor.memory" in log
    assert "ignored locally, no daemon here reads them: the classifications spark-env" in log


def test_s3_arguments_read_and_write_the_local_store(local_run: SparkRun) -> None:
    import pyarrow.parquet

    written = local_run.store.path_for(f"s3://{BUCKET}/features/doubled")
    table = pyarrow.parquet.read_table(sorted(written.glob("part-*.parquet")))
    assert sorted(table.column("value").to_pylist()) == [2 * index for index in range(40)]
    assert (written / "_SUCCESS").is_file()
    assert not list(written.rglob("*.crc"))  # Hadoop's local checksums: S3 would hold none
    assert only_where_the_request_says(local_run, "features/doubled") == set()


def test_the_event_log_is_stored_at_the_end_from_its_continuous_output(local_run: SparkRun) -> None:
    uris = local_run.store.list_uris(f"s3://{BUCKET}/spark-events/{local_run.job_name}")
    assert len(uris) == 1 and not uris[0].endswith(".inprogress"), uris
    events = [json.loads(line) for line in local_run.store.read_bytes(uris[0]).decode().splitlines()]
    assert {"SparkListenerApplicationStart", "SparkListenerApplicationEnd"} <= {event["Event"] for event in events}


def test_an_app_that_fails_fails_the_job_with_its_own_reason(spark_twin: Path, tmp_path: Path) -> None:
    run = run_probe(tmp_path, "probe-fails", ["--fail", "the probe was told to fail"])

    assert run.description["ProcessingJobStatus"] == "Failed"
    assert run.description["FailureReason"] == "AlgorithmError: the probe was told to fail"
    assert not run.store.list_uris(f"s3://{BUCKET}/probe-fails/report")


def test_an_app_that_crashes_without_a_reason_gets_the_images_reason(spark_twin: Path, tmp_path: Path) -> None:
    run = run_probe(tmp_path, "probe-crashes", ["--crash"])

    assert run.description["ProcessingJobStatus"] == "Failed"
    assert run.description["FailureReason"] == (
        "AlgorithmError: Algorithm Error: spark failed with a non-zero exit code 1 "
        "(" + str(tmp_path / "jobs" / "probe-crashes" / "ml" / "processing" / "input" / "code" / "probe_app.py") + ")")
    assert any("RuntimeError: the probe crashed" in line for line in run.lines)


def test_a_configuration_that_is_not_json_fails_the_job_before_spark_starts(spark_twin: Path, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    request = pyspark_request(store, "probe-bad-conf", probe_arguments("never"), configuration=[])
    store.write_bytes(f"s3://{BUCKET}/probe-bad-conf/input/conf/configuration.json", b"{not json")
    lines: list[str] = []

    description = LocalJobRunner(store, log=lines.append).run_processing(request)

    assert description["ProcessingJobStatus"] == "Failed"
    assert description["FailureReason"].startswith("AlgorithmError: Algorithm Error: configuration.json is not JSON")
    assert not any("Traceback" in line for line in lines)


def test_a_two_instance_request_runs_on_two_loopback_workers_and_leaves_no_jvm(cluster_run: SparkRun) -> None:
    assert cluster_run.description["ProcessingJobStatus"] == "Completed", cluster_run.description.get("FailureReason")
    report = cluster_run.report()
    assert report["master"].startswith("spark://127.0.0.1:")
    assert len(report["executor_ids"]) == 2
    workspace = cluster_run.store.root / "jobs" / cluster_run.job_name / "ml"
    folders = {Path(folder).relative_to(workspace).parts[:3] for _, folder in report["task_places"]}
    assert {parts[2] for parts in folders} == {"worker-1", "worker-2"}, folders  # an executor in each worker
    assert only_where_the_request_says(cluster_run, "features/two") == set()
    assert processes_of(workspace) == []


def test_a_cluster_job_stopped_while_it_runs_leaves_no_process(spark_twin: Path, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    write_customers(store, f"s3://{BUCKET}/raw/customers", rows=40)
    request = pyspark_request(store, "probe-stopped", [*probe_arguments("features/stopped"), "--sleep", "600"],
                              instances=2, configuration=CONFIGURATION)
    lines: list[str] = []
    runner = LocalJobRunner(store, log=lines.append)
    ended: dict[str, Any] = {}
    job = threading.Thread(target=lambda: ended.update(runner.run_processing(request)))
    job.start()
    deadline = time.monotonic() + 300
    while not any("probe: Spark started, sleeping" in line for line in lines):
        assert job.is_alive() and time.monotonic() < deadline, "\n".join(lines[-30:])
        time.sleep(0.5)
    workspace = tmp_path / "jobs" / "probe-stopped" / "ml"
    assert processes_of(workspace), "the job's processes should be running now"

    runner.kill()  # what the task does when Airflow kills it
    job.join(timeout=120)

    assert ended.get("ProcessingJobStatus") == "Failed", "\n".join([str(ended.get("FailureReason")), *lines[-60:]])
    assert not store.list_uris(f"s3://{BUCKET}/probe-stopped/report")
    deadline = time.monotonic() + 60
    while processes_of(workspace) and time.monotonic() < deadline:
        time.sleep(1)
    assert processes_of(workspace) == []


def test_the_aws_emulation_runs_a_spark_request_on_its_own_s3(spark_twin: Path, tmp_path: Path) -> None:
    import boto3

    from tests.e2e.moto_server import MotoServer

    staging = LocalObjectStore(tmp_path)
    write_customers(staging, f"s3://{BUCKET}/raw/customers", rows=40)
    request = pyspark_request(staging, "probe-emulated", probe_arguments("features/emulated"),
                              configuration=CONFIGURATION)
    server = MotoServer()
    try:
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        s3, sagemaker = (session.client(name, endpoint_url=server.url) for name in ("s3", "sagemaker"))
        s3.create_bucket(Bucket=BUCKET)
        bucket_folder = staging.objects_root / BUCKET
        for path in bucket_folder.rglob("*"):
            if path.is_file():
                s3.put_object(Bucket=BUCKET, Key=path.relative_to(bucket_folder).as_posix(), Body=path.read_bytes())

        sagemaker.create_processing_job(**request)
        deadline = time.monotonic() + 300
        while (described := sagemaker.describe_processing_job(ProcessingJobName="probe-emulated"))[
                "ProcessingJobStatus"] == "InProgress":
            assert time.monotonic() < deadline, "the emulated Spark job did not end in 300 s"
            time.sleep(1)

        assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
        keys = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                for item in page.get("Contents", [])]
        assert any(key.startswith("features/emulated/part-") and key.endswith(".parquet") for key in keys), keys
        assert "features/emulated/_SUCCESS" in keys
        assert not [key for key in keys if key.endswith(".crc")]
        report = json.loads(s3.get_object(Bucket=BUCKET, Key="probe-emulated/report/probe.json")["Body"].read())
        assert (report["rows"], report["property"]) == (40, "from configuration.json")
        assert any(key.startswith("spark-events/probe-emulated/") for key in keys), keys
    finally:
        server.stop()


def test_the_spark_twin_holds_exactly_its_pins(spark_twin: Path) -> None:
    completed = subprocess.run([sys.executable, "-m", "churn_pipeline.local.spark_twin", "check"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr
