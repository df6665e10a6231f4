"""What the Spark tests share: the Spark twin (skipped where absent, failed where CI requires it), a
local store, and requests shaped as ``PySparkProcessor.run`` sends them (aws/sagemaker-python-sdk,
``sagemaker/spark/processing.py``: the ``py-files``, ``conf`` and ``code`` inputs, then the
event-log output with ``S3UploadMode: Continuous``)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from churn_pipeline.services.objectstore import LocalObjectStore
from tests.conftest import REQUIRE_TWIN

APPS = Path(__file__).with_name("apps")
BUCKET = "probe-bucket"
SPARK_IMAGE = "173754725891.dkr.ecr.us-east-1.amazonaws.com/sagemaker-spark-processing:3.5-cpu-py312-v1.3"
EVENT_LOGS_DIR = "/opt/ml/processing/spark-events/"
REPORT_DIR = "/opt/ml/processing/output/report"


@pytest.fixture(scope="session")
def spark_twin() -> Path:
    """The Spark twin's python3, with Java. Absent: skipped with the reason, except where
    CHURN_TESTS_REQUIRE_TWIN is set (CI, which builds both twins and installs Java)."""
    from churn_pipeline.local.spark_twin import TWIN_DIR, find_java, twin_python

    python = twin_python()
    missing = (f"no Spark twin at {TWIN_DIR} (make setup builds it where Python 3.12 exists)" if python is None
               else "no Java (make setup installs openjdk-17-jre-headless as root)" if find_java(os.environ) is None
               else None)
    if missing:
        if os.environ.get(REQUIRE_TWIN):
            pytest.fail(f"{missing}, and {REQUIRE_TWIN} says this machine must have it")
        pytest.skip(missing)
    assert python is not None
    return python


def _input(name: str, uri: str, local_path: str) -> dict[str, Any]:
    return {"InputName": name, "AppManaged": False, "S3Input": {
        "S3Uri": uri, "LocalPath": local_path, "S3DataType": "S3Prefix", "S3InputMode": "File",
        "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"}}


def _output(name: str, uri: str, local_path: str, mode: str = "EndOfJob") -> dict[str, Any]:
    return {"OutputName": name, "AppManaged": False,
            "S3Output": {"S3Uri": uri, "LocalPath": local_path, "S3UploadMode": mode}}


def pyspark_request(store: LocalObjectStore, job_name: str, arguments: list[str], instances: int = 1,
                    configuration: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The probe app's job as PySparkProcessor.run would request it, its inputs staged in ``store``."""
    prefix = f"s3://{BUCKET}/{job_name}/input"
    store.upload_file(APPS / "probe_app.py", f"{prefix}/code/probe_app.py")
    archive = store.root / "scratch" / job_name / "probe_helpers.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(APPS / "probe_helpers.py", "probe_helpers.py")
    store.upload_file(archive, f"{prefix}/py-files/probe_helpers.zip")
    inputs = [_input("py-files", f"{prefix}/py-files", "/opt/ml/processing/input/py-files")]
    if configuration is not None:
        store.write_bytes(f"{prefix}/conf/configuration.json", json.dumps(configuration).encode())
        inputs.append(_input("conf", f"{prefix}/conf/configuration.json", "/opt/ml/processing/input/conf"))
    inputs.append(_input("code", f"{prefix}/code/probe_app.py", "/opt/ml/processing/input/code"))
    return {
        "ProcessingJobName": job_name,
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.4xlarge", "InstanceCount": instances,
                                                  "VolumeSizeInGB": 30}},
        "AppSpecification": {
            "ImageUri": SPARK_IMAGE,
            "ContainerEntrypoint": ["smspark-submit", "--py-files", "/opt/ml/processing/input/py-files",
                                    "--local-spark-event-logs-dir", EVENT_LOGS_DIR,
                                    "/opt/ml/processing/input/code/probe_app.py"],
            "ContainerArguments": arguments,
        },
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": [
            _output("report", f"s3://{BUCKET}/{job_name}/report", REPORT_DIR),
            _output("output-1", f"s3://{BUCKET}/spark-events/{job_name}", EVENT_LOGS_DIR, mode="Continuous"),
        ]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        "RoleArn": "arn:aws:iam::123456789012:role/probe",
    }


def write_customers(store: LocalObjectStore, uri: str, rows: int) -> None:
    lines = ["id,value"] + [f"C{index:04d},{index}" for index in range(rows)]
    store.write_bytes(f"{uri}/part-0.csv", ("\n".join(lines) + "\n").encode())


def store_files(store: LocalObjectStore) -> set[str]:
    """Every file in the store, relative to its root."""
    return {path.relative_to(store.root).as_posix() for path in store.root.rglob("*") if path.is_file()}
