"""Batch Transform on this machine, run in the image twin around the packaged model's own handlers:
JSON lines in, every record answered in order, joined to its input, filtered; a blank cell is
scored, not dropped; a failure leaves its reason where the runner reads it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from churn_pipeline.local import transform as local_transform
from tests.conftest import container_python

RECORDS = [
    {"CustomerID": "A", "Gender": "Female", "Age": 34, "MonthlyCharges": 99.5, "TotalCharges": None, "Tenure": 2,
     "Contract": "Month-to-month", "InternetService": "Fiber optic", "TechSupport": "No", "StreamingTV": "Yes",
     "PaymentMethod": "Electronic check"},
    {"CustomerID": "B", "Gender": None, "Age": None, "MonthlyCharges": 25, "TotalCharges": 1750, "Tenure": 70,
     "Contract": "Two year", "InternetService": "DSL", "TechSupport": "Yes", "StreamingTV": "No",
     "PaymentMethod": "A brand-new payment method"},
    {"CustomerID": "C", "Gender": "Male", "Age": 61, "MonthlyCharges": 70.0, "TotalCharges": 700.0, "Tenure": 10,
     "Contract": "One year", "InternetService": "No", "TechSupport": "No internet service",
     "StreamingTV": "No internet service", "PaymentMethod": "Mailed check"},
]


def transform(tmp_path: Path, model: Path, *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "in" / "customers.jsonl").write_text("".join(json.dumps(record) + "\n" for record in RECORDS))
    env = {**os.environ, "SAGEMAKER_SUBMIT_DIRECTORY": str(model / "code"), "SAGEMAKER_PROGRAM": "inference.py"}
    return subprocess.run([container_python(), local_transform.__file__, "--model-dir", str(model),
                           "--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"),
                           "--content-type", "application/jsonlines", "--accept", "application/jsonlines",
                           "--max-payload-mb", "0.0003", "--join-source", "Input",
                           "--failure-file", str(tmp_path / "failure"), *extra],
                          capture_output=True, text=True, env=env, timeout=300)


def test_every_record_is_answered_in_order_and_joined_to_its_input(tmp_path: Path,
                                                                   sample_outputs: dict[str, Path]) -> None:
    completed = transform(tmp_path, sample_outputs["model"], "--output-filter", "$['CustomerID','SageMakerOutput']")
    assert completed.returncode == 0, completed.stderr
    lines = [json.loads(line) for line in (tmp_path / "out" / "customers.jsonl.out").read_text().splitlines()]
    assert [line["CustomerID"] for line in lines] == ["A", "B", "C"]  # several batches, one answer per record
    assert all(set(line) == {"CustomerID", "SageMakerOutput"} for line in lines)
    assert all(0.0 <= line["SageMakerOutput"]["probability"] <= 1.0 for line in lines)
    assert lines[0]["SageMakerOutput"]["probability"] > lines[1]["SageMakerOutput"]["probability"]


def test_a_failure_says_why_where_the_runner_reads_it(tmp_path: Path, sample_outputs: dict[str, Path]) -> None:
    completed = transform(tmp_path, sample_outputs["model"], "--output-filter", "$.CustomerID")
    assert completed.returncode == 1
    assert "unsupported JSONPath filter" in (tmp_path / "failure").read_text()
    assert not (tmp_path / "out").exists()
