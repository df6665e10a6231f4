"""Scoring a Spark champion: the registry says which engine trained a version; the score task then
runs a processing job of the Spark image (the request valid for botocore, shaped as
``PySparkProcessor.run`` sends it, its data sets under the scoring run's prefix), reads the joined
lines Spark writes, and a scikit-learn champion keeps Batch Transform."""

from __future__ import annotations

import json

import botocore.session
import pyarrow.parquet as pq
import pytest
from botocore.validate import ParamValidator

from churn_pipeline.domain.engine import Engine, job_kind
from churn_pipeline.domain.layout import ScoringLayout, job_name
from churn_pipeline.domain.payloads import JobResult, ModelVersionRef, StagedScoring
from churn_pipeline.domain.sagemaker_api import JobKind
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.domain.steps import SCORE
from churn_pipeline.requests.spark import spark_score_request
from churn_pipeline.requests.steps import request_for_step
from churn_pipeline.services.objectstore import LocalObjectStore
from churn_pipeline.tasks.scoring import parquet_of_lines, scored_output_uris
from tests.unit.test_sagemaker_operators import aws  # noqa: F401  # its fixture: the sagemaker backend's settings

ROLE = "arn:aws:iam::123456789012:role/churn-sagemaker"
SPARK_IMAGE = "173754725891.dkr.ecr.us-east-1.amazonaws.com/sagemaker-spark-processing:3.5-cpu-py312-v1.3"
KEY = "20261201T060000Z"
SCORING = f"s3://customer-churn-pipeline/churn-pipeline/scoring/{KEY}"
ENVIRONMENT = {"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": ROLE, "CHURN_SNS_TOPIC_ARN": "arn:aws:sns:x"}
MODEL = botocore.session.get_session().get_service_model("sagemaker")
MODEL_ARCHIVE = "s3://customer-churn-pipeline/churn-pipeline/runs/20261130T020000Z/model/j/output/model.tar.gz"


def champion(engine: str) -> ModelVersionRef:
    return ModelVersionRef(version=4, identifier="arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/4",
                           approval_status="Approved", model_uri=MODEL_ARCHIVE, engine=engine)


def staged(engine: str, image: str = SPARK_IMAGE) -> StagedScoring:
    return StagedScoring(run_key=KEY, image_uri=image, input_uri=f"{SCORING}/input", customers=3,
                         dropped_duplicates=0, id_column="CustomerID", champion=champion(engine), engine=engine)


@pytest.fixture()
def settings(monkeypatch):
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_a_spark_champions_score_step_is_a_processing_job_and_a_scikit_learn_ones_a_transform() -> None:
    assert job_kind(SCORE, Engine.SPARK) is JobKind.PROCESSING
    assert job_kind(SCORE, Engine.SKLEARN) is JobKind.TRANSFORM


def test_the_spark_scoring_request_is_valid_and_shaped_as_pyspark_processor_sends_it(settings) -> None:
    name = job_name(settings.job_prefix, SCORE, KEY)
    request = request_for_step(SCORE, settings, name, staged("spark"), {}, {})

    report = ParamValidator().validate(request, MODEL.operation_model("CreateProcessingJob").input_shape)
    assert not report.has_errors(), report.generate_report()
    assert request == spark_score_request(settings, ScoringLayout(settings.base_uri, KEY), job_name=name,
                                          image_uri=SPARK_IMAGE, model_archive_uri=MODEL_ARCHIVE)
    app = request["AppSpecification"]
    assert app["ImageUri"] == SPARK_IMAGE
    assert app["ContainerEntrypoint"] == ["smspark-submit", "--py-files", "/opt/ml/processing/input/py-files",
                                          "--local-spark-event-logs-dir", "/opt/ml/processing/spark-events/",
                                          "/opt/ml/processing/input/code/score_spark.py"]
    assert app["ContainerArguments"] == [
        "--model", "/opt/ml/processing/input/model", "--customers", f"{SCORING}/input",
        "--output", f"{SCORING}/spark-scores", "--work-uri", f"{SCORING}/spark-work/{name}"]
    assert [(item["InputName"], item["S3Input"]["S3Uri"]) for item in request["ProcessingInputs"]] == [
        ("model", MODEL_ARCHIVE), ("py-files", f"{SCORING}/code/py-files"),
        ("conf", f"{SCORING}/code/spark-conf/score/configuration.json"),
        ("code", f"{SCORING}/code/spark/score_spark.py")]
    assert request["ProcessingOutputConfig"]["Outputs"] == [
        {"OutputName": "spark-events", "AppManaged": False,
         "S3Output": {"S3Uri": f"{SCORING}/spark-events/{name}", "LocalPath": "/opt/ml/processing/spark-events/",
                      "S3UploadMode": "Continuous"}}]
    assert request["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 2  # the score cluster's default


def test_the_score_clusters_size_is_its_own_setting(monkeypatch, settings) -> None:
    monkeypatch.setenv("CHURN_SPARK_SCORE_INSTANCE_COUNT", "5")
    monkeypatch.setenv("CHURN_SPARK_SCORE_INSTANCE_TYPE", "ml.m5.2xlarge")
    request = request_for_step(SCORE, load_settings(), "churn-score-x", staged("spark"), {}, {})
    assert request["ProcessingResources"]["ClusterConfig"] == {"InstanceCount": 5, "InstanceType": "ml.m5.2xlarge",
                                                               "VolumeSizeInGB": 30}


def test_a_scikit_learn_champion_keeps_batch_transform(settings) -> None:
    request = request_for_step(SCORE, settings, "churn-score-x", staged("sklearn", "sklearn-image"), {}, {})
    assert set(request) == {"Model", "Transform"}
    assert request["Transform"]["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"{SCORING}/input"


def test_a_spark_request_refuses_a_model_that_is_not_an_archive(settings) -> None:
    with pytest.raises(ValueError, match=r"a Spark champion is scored from its model\.tar\.gz"):
        spark_score_request(settings, ScoringLayout(settings.base_uri, KEY), job_name="churn-score-x",
                            image_uri=SPARK_IMAGE, model_archive_uri="s3://b/runs/k/model/j/output")


def test_a_version_before_engines_is_a_scikit_learn_model_when_read_back() -> None:
    old = {"version": 1, "identifier": "models:/churn/1", "approval_status": "Approved", "model_uri": MODEL_ARCHIVE}
    assert ModelVersionRef.from_xcom(old).engine == "sklearn"
    assert StagedScoring.from_xcom({**staged("spark").to_xcom(), "engine": "spark"}).engine == "spark"
    without = staged("sklearn").to_xcom()
    del without["engine"]
    assert StagedScoring.from_xcom(without).engine == "sklearn"


def test_staged_lines_become_one_parquet_file_of_text_columns(tmp_path) -> None:
    lines = tmp_path / "customers.jsonl"
    lines.write_text("\n".join(json.dumps(row) for row in [
        {"CustomerID": "C1", "Tenure": 12, "MonthlyCharges": 29.85, "Contract": "Monthly"},
        {"CustomerID": "C2", "Tenure": None, "MonthlyCharges": "n/a", "Contract": None},
        {"CustomerID": "C3", "Tenure": 1.5e-05, "MonthlyCharges": 70, "Contract": "Two year"},
    ]) + "\n")
    columns = ["CustomerID", "Tenure", "MonthlyCharges", "Contract"]

    table = pq.read_table(parquet_of_lines(lines, columns, tmp_path / "customers.parquet", batch_rows=2))

    assert table.column_names == columns and {str(field.type) for field in table.schema} == {"string"}
    assert table.to_pylist() == [
        {"CustomerID": "C1", "Tenure": "12", "MonthlyCharges": "29.85", "Contract": "Monthly"},
        {"CustomerID": "C2", "Tenure": None, "MonthlyCharges": "n/a", "Contract": None},
        {"CustomerID": "C3", "Tenure": "1.5e-05", "MonthlyCharges": "70", "Contract": "Two year"}]
    assert pq.ParquetFile(tmp_path / "customers.parquet").num_row_groups == 2  # written in batches


def test_the_scores_are_read_from_sparks_parts_for_a_spark_champion_and_from_the_transform_otherwise(
        tmp_path) -> None:
    store = LocalObjectStore(tmp_path)
    layout = ScoringLayout("s3://bucket/prefix", KEY)
    for name in ("part-00000-a.json", "part-00001-a.json", "_SUCCESS", ".part-00000-a.json.crc"):
        store.write_bytes(f"{layout.spark_scores_uri}/{name}", b"{}\n")
    store.write_bytes(f"{layout.transform_output_uri}/customers.jsonl.out", b"{}\n")
    transform = JobResult(job_name="t", status="Completed", attempt=1, reused=False,
                          outputs={"scores": layout.transform_output_uri})
    processing = JobResult(job_name="p", status="Completed", attempt=1, reused=False, outputs={})

    assert scored_output_uris(store, staged("spark"), processing, layout) == [
        f"{layout.spark_scores_uri}/part-00000-a.json", f"{layout.spark_scores_uri}/part-00001-a.json"]
    assert scored_output_uris(store, staged("sklearn"), transform, layout) == [
        f"{layout.transform_output_uri}/customers.jsonl.out"]


# ------------------------------------------------------- the score task on SageMaker (botocore's Stubber)


def score_operator():
    from churn_pipeline.operators.sagemaker import ChurnTransformOperator

    scoring = StagedScoring(**{**staged("spark").to_xcom(), "run_key": SCORE_KEY,
                               "champion": champion("spark")})
    return ChurnTransformOperator(task_id="score_customers", step=SCORE, settings=load_settings(),
                                  staged=scoring.to_xcom(), inputs={})


def spark_scoring_job(status: str) -> dict:
    from tests.unit.test_spark_operators import processing_job

    return {**processing_job(status, SCORE_JOB), "ProcessingOutputConfig": {"Outputs": []}}


SCORE_KEY = "20261126T020000Z"  # tests.unit.test_sagemaker_operators.KEY: its aws fixture's run
SCORE_JOB = f"churn-score-{SCORE_KEY}"


@pytest.mark.usefixtures("aws")
def test_on_sagemaker_a_spark_champions_score_task_creates_a_spark_processing_job_and_no_model() -> None:
    from botocore.stub import Stubber

    from tests.unit.test_sagemaker_operators import FakeTaskInstance

    operator = score_operator()
    stubber = Stubber(operator.hook.conn)  # any CreateModel or transform call fails: none is stubbed
    stubber.activate()
    stubber.add_client_error("describe_processing_job", service_error_code="ValidationException",
                             service_message="Could not find job")
    stubber.add_response("create_processing_job", {"ProcessingJobArn": "arn:aws:sagemaker:x",
                         "ResponseMetadata": {"HTTPStatusCode": 200}}, None)  # validated, not compared
    for status in ("InProgress", "Completed"):
        stubber.add_response("describe_processing_job", spark_scoring_job(status), {"ProcessingJobName": SCORE_JOB})

    result = JobResult.from_xcom(operator.execute({"ti": FakeTaskInstance()}))

    stubber.assert_no_pending_responses()
    assert operator.kind is JobKind.PROCESSING
    assert operator.config["AppSpecification"]["ContainerEntrypoint"][-1] == \
        "/opt/ml/processing/input/code/score_spark.py"
    assert (result.job_name, result.status, result.reused) == (SCORE_JOB, "Completed", False)


@pytest.mark.usefixtures("aws")
def test_on_sagemaker_a_retried_score_task_reuses_the_completed_spark_job() -> None:
    from botocore.stub import Stubber

    from tests.unit.test_sagemaker_operators import FakeTaskInstance

    operator = score_operator()
    stubber = Stubber(operator.hook.conn)
    stubber.activate()
    stubber.add_response("describe_processing_job", spark_scoring_job("Completed"), {"ProcessingJobName": SCORE_JOB})

    result = JobResult.from_xcom(operator.execute({"ti": FakeTaskInstance()}))

    stubber.assert_no_pending_responses()
    assert (result.job_name, result.reused) == (SCORE_JOB, True)
