"""The sagemaker backend's job operators never count a Failed or Stopped job as success, show
SageMaker's reason, reuse a completed job and stop their job when killed (the hook is stubbed:
moto cannot make a job fail)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from churn_pipeline.job_operator import JobFailed
from churn_pipeline.sagemaker_operators import ChurnProcessingOperator, ChurnTrainingOperator
from churn_pipeline.settings import load_settings

KEY = "20261126T020000Z"
STAGED = {"run_key": KEY, "input_uri": "s3://bucket-x/in.csv", "schema_uri": "s3://bucket-x/schema.json",
          "image_uri": "img", "code_uri": "s3://bucket-x/code", "run_uri": "s3://bucket-x/run"}
NOT_FOUND = ClientError({"Error": {"Code": "ValidationException", "Message": "Could not find job"}}, "Describe")


class FakeTaskInstance:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return {"stage_inputs": STAGED}.get(task_ids)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.fixture()
def sagemaker_env(monkeypatch: pytest.MonkeyPatch):
    for name, value in {"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
                        "CHURN_BUCKET": "bucket-x", "CHURN_POLL_SECONDS": "0", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def processing_operator(settings, monkeypatch, statuses: list[dict | Exception]):
    operator = ChurnProcessingOperator(task_id="preprocess", step="preprocess", settings=settings)
    answers = iter(statuses)
    created: list[dict] = []

    def describe(name: str) -> dict:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return {"ProcessingJobName": name, "ProcessingOutputConfig": {"Outputs": []}, **answer}

    monkeypatch.setattr(operator.hook, "describe_processing_job", describe)
    monkeypatch.setattr(operator.hook, "create_processing_job",
                        lambda config, **_: created.append(config) or {"ResponseMetadata": {"HTTPStatusCode": 200}})
    return operator, created


@pytest.mark.parametrize("status, reason", [
    ("Stopped", "MaxRuntimeExceeded: the job reached its 3600 s limit"),
    ("Failed", "CapacityError: insufficient ml.m5.xlarge capacity"),
])
def test_a_job_that_ends_failed_or_stopped_fails_the_task_with_sagemakers_reason(
        sagemaker_env, monkeypatch, capsys, status: str, reason: str) -> None:
    operator, created = processing_operator(sagemaker_env, monkeypatch, [
        NOT_FOUND,  # planning: no job of this run yet
        NOT_FOUND,  # the provider's own existence check before creating
        {"ProcessingJobStatus": status, "FailureReason": reason},  # the provider's wait (Stopped passes it)
        {"ProcessingJobStatus": status, "FailureReason": reason},  # provider's final describe
        {"ProcessingJobStatus": status, "FailureReason": reason},  # ours
    ])
    ti = FakeTaskInstance()
    with pytest.raises(JobFailed, match=reason.split(":")[0]):
        operator.execute({"ti": ti})
    assert len(created) == 1 and created[0]["ProcessingJobName"] == f"churn-preprocess-{KEY}"
    assert f"ended {status}: {reason}" in capsys.readouterr().out  # the task log
    assert ti.pushed["failure"]["reason"].endswith(reason)


def test_a_completed_job_of_this_run_is_reused_without_creating_another(sagemaker_env, monkeypatch) -> None:
    operator, created = processing_operator(sagemaker_env, monkeypatch, [{"ProcessingJobStatus": "Completed"}])
    result = operator.execute({"ti": FakeTaskInstance()})
    assert created == [] and result["reused"] is True and result["job_name"] == f"churn-preprocess-{KEY}"


def test_after_a_failed_attempt_the_next_one_gets_the_next_name(sagemaker_env, monkeypatch) -> None:
    operator, created = processing_operator(sagemaker_env, monkeypatch, [
        {"ProcessingJobStatus": "Failed", "FailureReason": "InternalServerError"}, NOT_FOUND, NOT_FOUND,
        {"ProcessingJobStatus": "Completed"}, {"ProcessingJobStatus": "Completed"}, {"ProcessingJobStatus": "Completed"}])
    result = operator.execute({"ti": FakeTaskInstance()})
    assert [c["ProcessingJobName"] for c in created] == [f"churn-preprocess-{KEY}-r2"]
    assert result["attempt"] == 2 and result["reused"] is False


def test_killing_the_task_stops_its_job(sagemaker_env, monkeypatch) -> None:
    operator = ChurnTrainingOperator(task_id="train", step="train", settings=sagemaker_env)
    stopped: list[dict] = []

    class Conn:
        def stop_training_job(self, **kwargs):
            stopped.append(kwargs)

    monkeypatch.setattr(type(operator.hook), "conn", property(lambda _: Conn()))
    operator._current_job = f"churn-train-{KEY}"
    operator.on_kill()
    assert stopped == [{"TrainingJobName": f"churn-train-{KEY}"}]
