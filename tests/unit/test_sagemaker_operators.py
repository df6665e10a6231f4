"""The sagemaker backend's job tasks, driven through the amazon provider's own code (its existence
check, ``create_*_job`` and the ``check_status`` wait) with botocore's Stubber answering as SageMaker
would: every request is checked against the service model, and a call nobody expects fails the test.
S3 (which the training operator checks before creating a job) is moto, in-process.

A job that ends Completed hands on its result; Failed and Stopped fail the task with SageMaker's
reason (Stopped would pass the provider's synchronous wait); a wait that gives up while the job still
runs fails the task so that the next attempt awaits the same job; a running job of this run is
awaited instead of started again; killing the task stops its job."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import airflow.providers.amazon.aws.hooks.sagemaker as provider_hook
import boto3
import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from botocore.stub import ANY, Stubber
from moto import mock_aws

from churn_pipeline.domain.payloads import JobResult, StagedInputs
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.operators.resumable import JobFailed, JobStillRunning
from churn_pipeline.operators.sagemaker import ChurnProcessingOperator, ChurnTrainingOperator, trigger_max_attempts

KEY = "20261126T020000Z"
BUCKET = "churn-unit"
BASE = f"s3://{BUCKET}/churn-pipeline/runs/{KEY}"
STAGED = StagedInputs(run_key=KEY, run_uri=BASE, input_uri=f"{BASE}/input/in.csv", schema_uri=f"{BASE}/schema.json",
                      code_uri=f"{BASE}/code", image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.9-0")
PREPROCESSED = JobResult(job_name=f"churn-preprocess-{KEY}", status="Completed", attempt=1, reused=False,
                         outputs={name: f"{BASE}/preprocessing/{name}"
                                  for name in ("train", "validation", "test", "preprocessor", "quality")})
NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


class FakeTaskInstance:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.fixture()
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
                        "CHURN_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t", "CHURN_BUCKET": BUCKET,
                        "CHURN_POLL_SECONDS": "1", "CHURN_MAX_RUNTIME_SECONDS": "60",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing",
                        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws"})}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(provider_hook.time, "sleep", lambda seconds: None)  # the wait's clock still counts
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        for channel in ("train", "validation", "preprocessor"):
            s3.put_object(Bucket=BUCKET, Key=f"churn-pipeline/runs/{KEY}/preprocessing/{channel}/part", Body=b"x")
        yield


class SageMaker:
    """The answers SageMaker gives, queued in the order the code asks."""

    def __init__(self, operator: Any, kind: str) -> None:
        self.kind = kind
        self.stubber = Stubber(operator.hook.conn)
        self.stubber.activate()

    def no_such_job(self) -> SageMaker:
        self.stubber.add_client_error(f"describe_{self.kind.lower()}_job", service_error_code="ValidationException",
                                      service_message="Could not find job")
        return self

    def job(self, status: str, *, reason: str | None = None, times: int = 1, name: str | None = None) -> SageMaker:
        description: dict[str, Any] = {
            f"{self.kind}JobName": name or f"churn-{'preprocess' if self.kind == 'Processing' else 'train'}-{KEY}",
            f"{self.kind}JobStatus": status,
            f"{self.kind}JobArn": "arn:aws:sagemaker:us-east-1:123456789012:job/x",
            "CreationTime": NOW,
        }
        if reason:
            description["FailureReason"] = reason
        if self.kind == "Processing":
            description.update({
                "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                          "VolumeSizeInGB": 30}},
                "AppSpecification": {"ImageUri": STAGED.image_uri},
                "ProcessingOutputConfig": {"Outputs": [{"OutputName": "train", "S3Output": {
                    "S3Uri": f"{BASE}/preprocessing/train", "LocalPath": "/opt/ml/processing/output/train",
                    "S3UploadMode": "EndOfJob"}}]},
            })
        else:
            description.update({
                "ModelArtifacts": {"S3ModelArtifacts": f"{BASE}/model/churn-train-{KEY}/output/model.tar.gz"},
                "SecondaryStatus": "Completed", "AlgorithmSpecification": {"TrainingInputMode": "File"},
                "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30},
                "StoppingCondition": {"MaxRuntimeInSeconds": 60}, "TrainingStartTime": NOW, "TrainingEndTime": NOW,
            })
        for _ in range(times):
            self.stubber.add_response(f"describe_{self.kind.lower()}_job", description,
                                      {f"{self.kind}JobName": ANY})
        return self

    def created(self) -> SageMaker:
        self.stubber.add_response(f"create_{self.kind.lower()}_job", {f"{self.kind}JobArn": "arn:aws:sagemaker:x",
                                  "ResponseMetadata": {"HTTPStatusCode": 200}},
                                  None)  # None: the request is validated against the service model, not compared
        return self

    def stopped_by_kill(self) -> SageMaker:
        self.stubber.add_response(f"stop_{self.kind.lower()}_job", {}, {f"{self.kind}JobName": ANY})
        return self


def preprocess_operator() -> ChurnProcessingOperator:
    return ChurnProcessingOperator(task_id="preprocess", step="preprocess", settings=load_settings(),
                                   staged=STAGED.to_xcom())


def train_operator() -> ChurnTrainingOperator:
    return ChurnTrainingOperator(task_id="train", step="train", settings=load_settings(), staged=STAGED.to_xcom(),
                                 inputs={"preprocessing": PREPROCESSED.to_xcom()})


def test_a_completed_job_hands_on_its_real_name_and_outputs(aws) -> None:
    operator = preprocess_operator()
    sagemaker = (SageMaker(operator, "Processing").no_such_job()  # planning: nothing of this run yet
                 .no_such_job()  # the provider's own existence check
                 .created().job("InProgress")  # the provider's description of the job it created
                 .job("InProgress").job("Completed"))  # our wait, which shows the job's log lines

    result = JobResult.from_xcom(operator.execute({"ti": FakeTaskInstance()}))

    sagemaker.stubber.assert_no_pending_responses()
    assert (result.job_name, result.status, result.attempt, result.reused) == (
        f"churn-preprocess-{KEY}", "Completed", 1, False)
    assert result.output("train") == f"{BASE}/preprocessing/train"


@pytest.mark.parametrize("status, reason", [
    ("Failed", "CapacityError: insufficient ml.m5.xlarge capacity"),
    ("Stopped", "MaxRuntimeExceeded: the job reached its 60 s limit"),
])
def test_a_processing_job_that_ends_failed_or_stopped_fails_the_task_with_sagemakers_reason(
        aws, status: str, reason: str) -> None:
    operator = preprocess_operator()
    # the provider creates the job and describes it; our wait judges Failed and Stopped alike
    sagemaker = (SageMaker(operator, "Processing").no_such_job().no_such_job().created().job("InProgress")
                 .job(status, reason=reason))
    ti = FakeTaskInstance()

    with pytest.raises(JobFailed, match=f"ended {status}: {reason.split(':')[0]}"):
        operator.execute({"ti": ti})

    sagemaker.stubber.assert_no_pending_responses()
    assert ti.pushed["failure"]["reason"].endswith(reason)


def test_a_training_job_that_ends_stopped_fails_the_task(aws) -> None:
    operator = train_operator()
    sagemaker = (SageMaker(operator, "Training").no_such_job().no_such_job().created()
                 .job("InProgress").job("Stopped", reason="MaxRuntimeExceeded"))

    with pytest.raises(JobFailed, match="ended Stopped: MaxRuntimeExceeded"):
        operator.execute({"ti": FakeTaskInstance()})
    sagemaker.stubber.assert_no_pending_responses()


def test_input_that_breaks_the_contract_fails_without_a_retry(aws) -> None:
    operator = preprocess_operator()
    SageMaker(operator, "Processing").no_such_job().no_such_job().created().job(
        "Failed", reason="AlgorithmError: preprocessing rejected its input: 2 problem(s) found", times=2)

    with pytest.raises(AirflowFailException, match="rejected its input"):
        operator.execute({"ti": FakeTaskInstance()})


def test_control_characters_a_job_quotes_from_the_data_reach_the_task_log_escaped(aws) -> None:
    operator = preprocess_operator()
    SageMaker(operator, "Processing").no_such_job().no_such_job().created().job(
        "Failed", reason="AlgorithmError: preprocessing rejected its input: no column 'Age\x1b[2K\r\u202e'", times=3)

    with pytest.raises(AirflowFailException) as failure:
        operator.execute({"ti": FakeTaskInstance()})
    assert str(failure.value).endswith("rejected its input: no column 'Age\\x1b[2K\\r\\u202e'")


def test_a_wait_that_gives_up_while_the_job_runs_leaves_it_to_the_next_attempt(aws) -> None:
    operator = preprocess_operator()
    operator.max_ingestion_time = 3  # the wait gives up after 3 sleeps of 1 s
    sagemaker = (SageMaker(operator, "Processing").no_such_job().no_such_job().created()
                 .job("InProgress")  # the provider's description of the job it created
                 .job("InProgress", times=4))  # our polls, the last one at 3 s, when the wait gives up

    with pytest.raises(JobStillRunning, match="next attempt of this task awaits it"):
        operator.execute({"ti": FakeTaskInstance()})
    sagemaker.stubber.assert_no_pending_responses()


def test_a_running_job_of_this_run_is_awaited_not_started_again(aws) -> None:
    operator = preprocess_operator()
    sagemaker = (SageMaker(operator, "Processing").job("InProgress")  # planning finds it running
                 .job("InProgress").job("Completed"))  # the wait; no create call is queued, so none may happen

    result = JobResult.from_xcom(operator.execute({"ti": FakeTaskInstance()}))

    sagemaker.stubber.assert_no_pending_responses()
    assert (result.job_name, result.attempt, result.reused) == (f"churn-preprocess-{KEY}", 1, False)


def test_a_completed_job_of_this_run_is_reused_without_creating_another(aws) -> None:
    operator = preprocess_operator()
    SageMaker(operator, "Processing").job("Completed")
    result = JobResult.from_xcom(operator.execute({"ti": FakeTaskInstance()}))
    assert result.reused is True and result.job_name == f"churn-preprocess-{KEY}"


def test_after_a_failed_attempt_the_next_one_gets_the_next_name(aws) -> None:
    operator = train_operator()
    name = f"churn-train-{KEY}-r2"
    sagemaker = (SageMaker(operator, "Training").job("Failed", reason="InternalServerError")
                 .no_such_job().no_such_job().created().job("Completed", name=name, times=2))
    result = JobResult.from_xcom(operator.execute({"ti": FakeTaskInstance()}))
    sagemaker.stubber.assert_no_pending_responses()
    assert (result.attempt, result.reused) == (2, False)
    assert operator.config["TrainingJobName"] == name


def test_killing_the_task_stops_its_job(aws) -> None:
    operator = train_operator()
    sagemaker = SageMaker(operator, "Training").stopped_by_kill()
    operator._current_job = f"churn-train-{KEY}"
    operator.on_kill()
    sagemaker.stubber.assert_no_pending_responses()


# ---------------------------------------------------------------------------------- deferrable


def test_waiting_is_synchronous_unless_churn_deferrable_says_otherwise(aws, monkeypatch) -> None:
    """The choice is passed to the provider explicitly: Airflow's default_deferrable cannot make it."""
    assert (preprocess_operator().deferrable, train_operator().deferrable) == (False, False)
    monkeypatch.setenv("CHURN_DEFERRABLE", "true")
    operator = train_operator()
    assert operator.deferrable is True
    # one poll a second (CHURN_POLL_SECONDS) for the job's 60 s limit plus 30 min of start-up and upload
    assert operator.max_attempts == trigger_max_attempts(load_settings()) == 60 + 1800 + 1


def test_a_running_job_of_this_run_is_handed_to_the_trigger_when_deferrable(aws, monkeypatch) -> None:
    monkeypatch.setenv("CHURN_DEFERRABLE", "true")
    operator = preprocess_operator()
    sagemaker = SageMaker(operator, "Processing").job("InProgress")  # planning finds it running; no create

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": FakeTaskInstance()})

    sagemaker.stubber.assert_no_pending_responses()
    trigger = deferred.value.trigger
    assert (trigger.job_name, trigger.job_type) == (f"churn-preprocess-{KEY}", "Processing")
    polls = trigger.serialize()[1]["waiter_max_attempts"]
    assert polls == operator.max_attempts == trigger_max_attempts(load_settings())
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout.total_seconds() == load_settings().job_wait_seconds


def test_a_resumed_task_hands_on_the_same_result_as_a_waiting_one(aws, monkeypatch) -> None:
    monkeypatch.setenv("CHURN_DEFERRABLE", "true")
    operator = train_operator()
    name = f"churn-train-{KEY}-r2"
    SageMaker(operator, "Training").job("Completed", name=name)

    result = JobResult.from_xcom(operator.execute_complete({"ti": FakeTaskInstance()},
                                                           {"status": "success", "job_name": name}))

    assert (result.job_name, result.status, result.attempt, result.reused) == (name, "Completed", 2, False)
    assert result.output("model").endswith("/output/model.tar.gz")


@pytest.mark.parametrize("event_status, job_status, reason, raised", [
    ("failed", "Failed", "AlgorithmError: preprocessing rejected its input: 1 problem(s) found", AirflowFailException),
    ("failed", "Failed", "CapacityError: insufficient capacity", JobFailed),
    ("stopped", "Stopped", "MaxRuntimeExceeded: the job ran past its limit", JobFailed),
    ("timeout", "InProgress", None, JobStillRunning),
])
def test_a_resumed_task_fails_or_retries_by_the_same_rules(aws, event_status, job_status, reason, raised) -> None:
    operator = preprocess_operator()
    name = f"churn-preprocess-{KEY}"
    SageMaker(operator, "Processing").job(job_status, reason=reason)
    ti = FakeTaskInstance()

    with pytest.raises(raised):
        operator.execute_complete({"ti": ti}, {"status": event_status, "job_name": name, "message": "from trigger"})

    if reason:
        assert ti.pushed["failure"]["reason"].endswith(reason)


# ---------------------------------------------------------------------------------- the job's log


def test_a_jobs_log_lines_are_read_once_each_from_every_stream_as_they_come(aws) -> None:
    """The wait shows each new line of the job's CloudWatch streams at every poll (the task log gets a
    failed job's traceback); streams of another job sharing the name's start are not read."""
    from churn_pipeline.domain.sagemaker_api import JobKind
    from churn_pipeline.operators.sagemaker import JobLogReader

    logs = boto3.client("logs", region_name="us-east-1")
    job = f"churn-preprocess-{KEY}"
    reader = JobLogReader(logs, JobKind.PROCESSING, job)
    assert reader.new_lines() == []  # no job has written to the group yet

    group = "/aws/sagemaker/ProcessingJobs"
    logs.create_log_group(logGroupName=group)
    for stream in (f"{job}/algo-1-1796000000", f"{job}-r2/algo-1-1796000001"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    written = iter(range(1796000000000, 1796000001000))  # CloudWatch orders a stream's events by time

    def write(stream: str, *lines: str) -> None:
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": next(written), "message": line} for line in lines])

    write(f"{job}/algo-1-1796000000", "reading the input", "splitting")
    write(f"{job}-r2/algo-1-1796000001", "another attempt's line")
    assert reader.new_lines() == ["reading the input", "splitting"]
    assert reader.new_lines() == []
    write(f"{job}/algo-1-1796000000", "Traceback (most recent call last):", "ValueError: no column 'Churn'\n")
    assert reader.new_lines() == ["Traceback (most recent call last):", "ValueError: no column 'Churn'"]


def test_a_restarted_triggerer_rebuilds_the_same_wait_from_what_airflow_stored(aws, monkeypatch) -> None:
    """A triggerer that restarts while a job task is deferred re-creates its trigger from the classpath
    and keyword arguments Airflow stored (``serialize()``): the rebuilt trigger waits for the same job,
    through the same connection, as long as the first did; when it fires the resumed task judges the
    job by the rules above, and when the deferral times out the next attempt awaits the job."""
    import importlib

    monkeypatch.setenv("CHURN_DEFERRABLE", "true")
    operator = preprocess_operator()
    SageMaker(operator, "Processing").job("InProgress")
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": FakeTaskInstance()})
    classpath, kwargs = deferred.value.trigger.serialize()

    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs, default=str)))

    assert rebuilt.serialize() == (classpath, json.loads(json.dumps(kwargs, default=str)))
    assert (rebuilt.job_name, rebuilt.job_type) == (f"churn-preprocess-{KEY}", "Processing")
