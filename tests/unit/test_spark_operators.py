"""The train task of a Spark run runs a Processing job of the Spark image, on both backends, by the
same resumable-job rules as every job: the attempt is planned among this run's processing jobs, a
completed one is reused, a running one awaited, a deferred wait resumes as a processing job, and
killing the task stops it. SageMaker is botocore's Stubber (each request checked against the service
model), as in test_sagemaker_operators.py; the local backend's runner is replaced by a recorder."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred
from botocore.stub import Stubber

from churn_pipeline.domain.payloads import JobResult, StagedInputs
from churn_pipeline.domain.sagemaker_api import JobKind
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.operators.local import LocalJobOperator
from churn_pipeline.operators.sagemaker import ChurnTrainingOperator
from tests.unit.test_sagemaker_operators import BASE, KEY, FakeTaskInstance, aws  # noqa: F401  # aws: its fixture

SPARK_IMAGE = "173754725891.dkr.ecr.us-east-1.amazonaws.com/sagemaker-spark-processing:3.5-cpu-py312-v1.3"
SPARK_STAGED = StagedInputs(run_key=KEY, run_uri=BASE, input_uri=f"{BASE}/input", schema_uri=f"{BASE}/schema.json",
                            code_uri=f"{BASE}/code", image_uri=SPARK_IMAGE, engine="spark",
                            engine_reason="engine=spark was asked for")
PREPROCESSED = JobResult(job_name=f"churn-preprocess-{KEY}", status="Completed", attempt=1, reused=False,
                         outputs={name: f"{BASE}/preprocessing/{name}" for name in ("preprocessor", "quality",
                                                                                    "profile")})
NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
JOB = f"churn-train-{KEY}"


def train_operator() -> ChurnTrainingOperator:
    return ChurnTrainingOperator(task_id="train", step="train", settings=load_settings(),
                                 staged=SPARK_STAGED.to_xcom(), inputs={"preprocessing": PREPROCESSED.to_xcom()})


def processing_job(status: str, name: str = JOB) -> dict[str, Any]:
    return {
        "ProcessingJobName": name, "ProcessingJobStatus": status, "CreationTime": NOW,
        "ProcessingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:processing-job/{name}",
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 4, "InstanceType": "ml.m5.4xlarge",
                                                  "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": SPARK_IMAGE},
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "model", "S3Output": {
            "S3Uri": f"{BASE}/model/{name}/output", "LocalPath": "/opt/ml/processing/output/model",
            "S3UploadMode": "EndOfJob"}}]},
    }


class SparkOnSageMaker:
    """SageMaker's answers about processing jobs only: a training-job call fails the test."""

    def __init__(self, operator: ChurnTrainingOperator) -> None:
        self.stubber = Stubber(operator.hook.conn)
        self.stubber.activate()

    def no_such_job(self) -> SparkOnSageMaker:
        self.stubber.add_client_error("describe_processing_job", service_error_code="ValidationException",
                                      service_message="Could not find job")
        return self

    def job(self, status: str, name: str = JOB) -> SparkOnSageMaker:
        self.stubber.add_response("describe_processing_job", processing_job(status, name), {"ProcessingJobName": name})
        return self

    def created(self) -> SparkOnSageMaker:
        self.stubber.add_response("create_processing_job", {"ProcessingJobArn": "arn:aws:sagemaker:x",
                                  "ResponseMetadata": {"HTTPStatusCode": 200}}, None)  # validated, not compared
        return self


@pytest.mark.usefixtures("aws")
def test_a_spark_runs_train_task_creates_a_processing_job_of_the_spark_image_and_hands_on_its_model() -> None:
    operator = train_operator()
    sagemaker = SparkOnSageMaker(operator).no_such_job().created().job("InProgress").job("Completed")

    result = JobResult.from_xcom(operator.execute({"ti": FakeTaskInstance()}))

    sagemaker.stubber.assert_no_pending_responses()
    assert operator.kind is JobKind.PROCESSING
    assert operator.config["ProcessingJobName"] == JOB
    assert operator.config["AppSpecification"]["ImageUri"] == SPARK_IMAGE
    assert operator.config["AppSpecification"]["ContainerEntrypoint"][-1] == \
        "/opt/ml/processing/input/code/train_spark.py"
    assert (result.job_name, result.status, result.reused) == (JOB, "Completed", False)
    assert result.output("model") == f"{BASE}/model/{JOB}/output"


@pytest.mark.usefixtures("aws")
def test_a_completed_spark_training_of_this_run_is_reused_without_another_job() -> None:
    operator = train_operator()
    sagemaker = SparkOnSageMaker(operator).job("Completed")  # planning finds it; no create

    result = JobResult.from_xcom(operator.execute({"ti": FakeTaskInstance()}))

    sagemaker.stubber.assert_no_pending_responses()
    assert (result.job_name, result.reused) == (JOB, True)


@pytest.mark.usefixtures("aws")
def test_a_deferred_spark_training_waits_in_the_trigger_as_a_processing_job_and_resumes_as_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_DEFERRABLE", "true")
    operator = train_operator()
    SparkOnSageMaker(operator).no_such_job().created()

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": FakeTaskInstance()})

    assert (deferred.value.trigger.job_name, deferred.value.trigger.job_type) == (JOB, "Processing")
    assert deferred.value.method_name == "execute_complete"

    resumed = train_operator()  # a resumed task is a fresh operator: its kind comes from the staged run again
    SparkOnSageMaker(resumed).job("Completed")
    result = JobResult.from_xcom(resumed.execute_complete({"ti": FakeTaskInstance()},
                                                          {"status": "success", "job_name": JOB}))
    assert (result.job_name, result.status) == (JOB, "Completed")
    assert result.output("model").endswith("/output")


@pytest.mark.usefixtures("aws")
def test_killing_a_spark_training_stops_its_processing_job() -> None:
    operator = train_operator()
    sagemaker = SparkOnSageMaker(operator).job("InProgress").job("Completed")
    operator.execute({"ti": FakeTaskInstance()})  # awaits this run's running job
    sagemaker.stubber.add_response("stop_processing_job", {}, {"ProcessingJobName": JOB})

    operator.on_kill()

    sagemaker.stubber.assert_no_pending_responses()


# ---------------------------------------------------------------------------------- local backend


class RecordingRunner:
    """Stands in for LocalJobRunner: no job of this run exists yet, and each kind's run is recorded."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, dict]] = []
        self.described: list[JobKind] = []

    def describe(self, kind: JobKind, name: str) -> None:
        self.described.append(kind)
        return None

    def run_processing(self, request: dict) -> dict:
        self.ran.append(("processing", request))
        return processing_job("Completed", request["ProcessingJobName"])

    def run_training(self, request: dict) -> dict:
        self.ran.append(("training", request))
        raise AssertionError("a Spark run's training is a processing job")


def test_the_local_backend_runs_a_spark_runs_training_as_a_processing_job(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path) -> None:
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    operator = LocalJobOperator(task_id="train", step="train", staged=SPARK_STAGED.to_xcom(),
                                inputs={"preprocessing": PREPROCESSED.to_xcom()})
    runner = RecordingRunner()
    operator._runner = runner  # type: ignore[assignment]

    result = JobResult.from_xcom(operator.execute({"ti": FakeTaskInstance()}))

    assert runner.described == [JobKind.PROCESSING]
    ((kind, request),) = runner.ran
    assert kind == "processing" and request["AppSpecification"]["ContainerEntrypoint"][0] == "smspark-submit"
    assert result.output("model") == f"{BASE}/model/{JOB}/output"


def test_a_scikit_learn_runs_train_task_keeps_its_training_job_locally(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path) -> None:
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    sklearn = StagedInputs(**{**SPARK_STAGED.to_xcom(), "engine": "sklearn", "image_uri": "local"})
    preprocessed = JobResult(job_name="p", status="Completed", attempt=1, reused=False,
                             outputs={name: f"{BASE}/preprocessing/{name}"
                                      for name in ("train", "validation", "preprocessor")})
    operator = LocalJobOperator(task_id="train", step="train", staged=sklearn.to_xcom(),
                                inputs={"preprocessing": preprocessed.to_xcom()})
    runner = RecordingRunner()
    operator._runner = runner  # type: ignore[assignment]

    with pytest.raises(AssertionError, match="a Spark run's training is a processing job"):
        operator.execute({"ti": FakeTaskInstance()})

    assert runner.described == [JobKind.TRAINING] and runner.ran[0][0] == "training"

