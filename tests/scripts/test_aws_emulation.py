"""The AWS emulation's SageMaker jobs, through boto3 as the pipeline calls them: a job really runs in the
image twin on what it was given in the emulated S3, says InProgress while it runs, and ends Completed
with its outputs in S3, Failed with SageMaker's FailureReason and ExitMessage, or Stopped when asked;
its lines are in CloudWatch Logs in SageMaker's group, one stream per instance named as SageMaker names it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.e2e.moto_server import MotoServer

BUCKET = "emulation-tests"
GROUP = "/aws/sagemaker/ProcessingJobs"
JOB_SCRIPT = b"""\
import os, pathlib, sys, time
source, target, behaviour = sys.argv[1:]
print("read", pathlib.Path(source).read_text(), flush=True)
pathlib.Path(target).write_text(pathlib.Path(source).read_text().upper())
if behaviour == "fail":
    reason = pathlib.Path(os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"), "output", "message")
    reason.parent.mkdir(parents=True, exist_ok=True)
    reason.write_text("the input was not what the job wants")
    raise SystemExit("the job's own error line")
if behaviour == "sleep":
    time.sleep(60)
"""


@pytest.fixture(scope="module")
def emulation() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture()
def aws(emulation: MotoServer, twin) -> dict[str, Any]:
    emulation.reset()
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    clients = {name: session.client(name, endpoint_url=emulation.url) for name in ("s3", "sagemaker", "logs")}
    clients["s3"].create_bucket(Bucket=BUCKET)
    clients["s3"].put_object(Bucket=BUCKET, Key="input/words.txt", Body=b"hello")
    clients["s3"].put_object(Bucket=BUCKET, Key="code/job.py", Body=JOB_SCRIPT)
    return clients


def start(aws: dict[str, Any], name: str, behaviour: str) -> None:
    local = "/opt/ml/processing"
    aws["sagemaker"].create_processing_job(
        ProcessingJobName=name, RoleArn="arn:aws:iam::123456789012:role/jobs",
        AppSpecification={"ImageUri": "image", "ContainerEntrypoint": ["python3", f"{local}/code/job.py"],
                          "ContainerArguments": [f"{local}/input/words.txt", f"{local}/output/words.txt", behaviour]},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
        ProcessingInputs=[
            {"InputName": "data", "S3Input": {"S3Uri": f"s3://{BUCKET}/input", "LocalPath": f"{local}/input",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}},
            {"InputName": "code", "S3Input": {"S3Uri": f"s3://{BUCKET}/code/job.py", "LocalPath": f"{local}/code",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        ProcessingOutputConfig={"Outputs": [{"OutputName": "words", "S3Output": {
            "S3Uri": f"s3://{BUCKET}/output/{name}", "LocalPath": f"{local}/output", "S3UploadMode": "EndOfJob"}}]},
        StoppingCondition={"MaxRuntimeInSeconds": 120})


def statuses_until_the_end(aws: dict[str, Any], name: str) -> tuple[list[str], dict[str, Any]]:
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        described = aws["sagemaker"].describe_processing_job(ProcessingJobName=name)
        seen.append(described["ProcessingJobStatus"])
        if seen[-1] not in ("InProgress", "Stopping"):
            return list(dict.fromkeys(seen)), described
        time.sleep(0.2)
    raise AssertionError(f"{name} still {seen[-1]} after 60 s")


def log_of(aws: dict[str, Any], name: str) -> tuple[str, list[str]]:
    (stream,) = aws["logs"].describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{name}/")["logStreams"]
    events = aws["logs"].get_log_events(logGroupName=GROUP, logStreamName=stream["logStreamName"])["events"]
    return stream["logStreamName"], [event["message"] for event in events]


def test_a_job_runs_in_the_twin_on_its_inputs_and_its_outputs_land_in_s3(aws: dict[str, Any]) -> None:
    start(aws, "words-ok", "succeed")

    seen, described = statuses_until_the_end(aws, "words-ok")

    assert seen == ["InProgress", "Completed"]
    assert "ProcessingEndTime" in described and "FailureReason" not in described
    assert aws["s3"].get_object(Bucket=BUCKET, Key="output/words-ok/words.txt")["Body"].read() == b"HELLO"
    stream, lines = log_of(aws, "words-ok")
    assert re.fullmatch(r"words-ok/algo-1-\d{10}", stream)
    assert "(Python 3.12" in lines[0] and "the image twin" in lines[0] and lines[1:] == ["read hello"]


def test_a_failing_job_ends_failed_with_its_reason_and_writes_nothing(aws: dict[str, Any]) -> None:
    start(aws, "words-bad", "fail")

    seen, described = statuses_until_the_end(aws, "words-bad")

    assert seen == ["InProgress", "Failed"]
    assert described["FailureReason"] == "AlgorithmError: the input was not what the job wants"
    assert described["ExitMessage"] == "the input was not what the job wants"
    assert aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix="output/words-bad/")["KeyCount"] == 0
    assert log_of(aws, "words-bad")[1][-1] == "the job's own error line"


def test_a_stopped_job_ends_stopped_and_a_stop_of_an_ended_job_is_refused(aws: dict[str, Any]) -> None:
    start(aws, "words-slow", "sleep")
    deadline = time.monotonic() + 30
    while not log_of_or_none(aws, "words-slow") and time.monotonic() < deadline:
        time.sleep(0.2)  # its process has started: it printed

    aws["sagemaker"].stop_processing_job(ProcessingJobName="words-slow")
    seen, described = statuses_until_the_end(aws, "words-slow")
    assert "ProcessingEndTime" in described

    assert seen[-1] == "Stopped" and "Completed" not in seen
    assert aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix="output/words-slow/")["KeyCount"] == 0
    with pytest.raises(aws["sagemaker"].exceptions.ClientError, match="not in progress"):
        aws["sagemaker"].stop_processing_job(ProcessingJobName="words-slow")
    with pytest.raises(aws["sagemaker"].exceptions.ClientError, match="Could not find"):
        aws["sagemaker"].stop_training_job(TrainingJobName="no-such-job")


def log_of_or_none(aws: dict[str, Any], name: str) -> list[str]:
    try:
        return [line for line in log_of(aws, name)[1] if line.startswith("read")]
    except (ValueError, aws["logs"].exceptions.ResourceNotFoundException):
        return []


def test_a_stop_that_races_the_jobs_own_end_leaves_it_stopped_with_its_end_time_and_no_reason() -> None:
    from moto.sagemaker.exceptions import ValidationError

    from churn_pipeline.tooling.aws_emulation import EmulatedJob, JobKind

    job = EmulatedJob(JobKind.PROCESSING, {"ProcessingJobName": "words-raced"})
    job.request_stop()
    job.end("Completed", {"ExitMessage": "done"})  # its process finished as the stop arrived

    described = job.overlay({"ProcessingJobName": "words-raced"})
    assert described["ProcessingJobStatus"] == "Stopped" and "ExitMessage" not in described
    assert "ProcessingEndTime" in described
    with pytest.raises(ValidationError, match="not in progress"):
        job.request_stop()
