"""The sagemaker backend end to end through real Airflow and the provider's operators, against a
moto server: moto accepts the jobs and completes them at once without running anything, so the
files a job would have written are staged where the job would have written them. The IAM policies
against the calls these runs recorded: test_sagemaker_policies.py."""

from __future__ import annotations

import io
import json

import pytest

from churn_pipeline.domain.payloads import JobResult
from tests.e2e.moto_server import MotoServer
from tests.e2e.sagemaker_runs import (
    BUCKET,
    EXTRACT_KEY,
    FAILING_KEY,
    GROUP,
    MOTO_RECORDED_CALLS,
    PASSING_KEY,
    PREFIX,
    RECORDED,
    assert_allowed_by_the_shipped_policies,
    run_extracting,
    run_failing_threshold,
    run_passing,
    run_scoring,
    sagemaker_world,
    stage_job_outputs,
    validate_against_service_models,
)

# One worker runs these and the policy test: it compares the policies with the calls these runs recorded.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(MOTO_RECORDED_CALLS)]


@pytest.fixture()
def aws(moto_server: MotoServer, airflow_project, sample_outputs) -> dict:
    return sagemaker_world(moto_server, airflow_project, sample_outputs)


def test_a_passing_run_creates_the_jobs_and_registers_a_pending_version(aws, airflow_project) -> None:
    key = PASSING_KEY
    outcome, layout, calls = run_passing(aws, airflow_project)

    assert outcome.returncode == 0, outcome.log[-6000:]
    s3, sagemaker = aws["clients"]["s3"], aws["clients"]["sagemaker"]
    code = {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/runs/{key}/code/")["Contents"]}
    assert {f"{PREFIX}/runs/{key}/code/{name}" for name in
            ("preprocessing.py", "training.py", "evaluation.py", "sourcedir.tar.gz")} <= code

    created = {call.params.get("ProcessingJobName") or call.params.get("TrainingJobName"): call
               for call in calls if call.action in ("CreateProcessingJob", "CreateTrainingJob")}
    assert sorted(created) == [f"churn-evaluate-{key}", f"churn-preprocess-{key}", f"churn-train-{key}"]
    def cluster(job: str) -> dict:
        return created[job].params["ProcessingResources"]["ClusterConfig"]

    assert cluster(f"churn-preprocess-{key}")["InstanceType"] == "ml.m5.xlarge"
    assert created[f"churn-train-{key}"].params["ResourceConfig"]["InstanceType"] == "ml.c5.2xlarge"
    assert cluster(f"churn-evaluate-{key}")["InstanceType"] == "ml.m5.large"
    assert created[f"churn-train-{key}"].params["AlgorithmSpecification"]["TrainingImage"].endswith(
        "sagemaker-scikit-learn:1.9-0-cpu-py3")
    validate_against_service_models(calls)
    assert_allowed_by_the_shipped_policies(calls, airflow_project.env)

    (package,) = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    described = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == layout.evaluation_file_uri
    metadata = described["CustomerMetadataProperties"]
    evaluation = json.loads((aws["outputs"]["evaluation"] / "evaluation.json").read_text())
    assert float(metadata["accuracy"]) == pytest.approx(evaluation["metrics"]["accuracy"], abs=1e-6)
    assert metadata["training_job"] == f"churn-train-{key}" and metadata["run_key"] == key
    assert aws["clients"]["sqs"].receive_message(QueueUrl=aws["queue"]).get("Messages") is None


@pytest.mark.parametrize("setting, defers", [
    ({"AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True"}, False),
    ({"CHURN_DEFERRABLE": "true"}, True),
], ids=["airflow-default-deferrable", "churn-deferrable"])
def test_deferrable_settings_keep_the_run_and_its_results(aws, airflow_project, setting: dict, defers: bool) -> None:
    """Airflow's default_deferrable=True (as on MWAA) leaves the job tasks synchronous; CHURN_DEFERRABLE
    hands each wait to the provider's trigger (run inline by `airflow dags test`, through aiobotocore)
    and the resumed tasks hand on the same JobResult payloads."""
    airflow_project.extra_env.update(setting)
    key = PASSING_KEY
    stage_job_outputs(aws, key)

    outcome = airflow_project.dags_test("2026-11-20T02:00:00+00:00")

    assert outcome.returncode == 0, outcome.log[-6000:]
    assert outcome.log.count("[DAG TEST] running trigger in line") == (3 if defers else 0)
    assert outcome.log.count("resumed after the trigger reported success") == (3 if defers else 0)
    for step in ("preprocess", "train", "evaluate"):
        result = JobResult.from_xcom(airflow_project.xcom("2026-11-20", step))
        assert (result.job_name, result.status, result.attempt, result.reused) == (
            f"churn-{step}-{key}", "Completed", 1, False)
    assert JobResult.from_xcom(airflow_project.xcom("2026-11-20", "train")).output("model").endswith(
        f"/model/churn-train-{key}/output/model.tar.gz")
    (package,) = aws["clients"]["sagemaker"].list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    described = aws["clients"]["sagemaker"].describe_model_package(ModelPackageName=package["ModelPackageArn"])
    assert described["CustomerMetadataProperties"]["training_job"] == f"churn-train-{key}"


def test_a_failing_threshold_registers_nothing_and_publishes_one_message(aws, airflow_project) -> None:
    key = FAILING_KEY
    outcome, calls = run_failing_threshold(aws, airflow_project)

    assert outcome.returncode == 1 and outcome.states["notify_failure"] == "failed"
    sagemaker, sqs = aws["clients"]["sagemaker"], aws["clients"]["sqs"]
    groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert groups == [] or sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"] == []
    messages = sqs.receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body["reason"] == "model_rejected" and body["threshold"] == 0.99
    assert 0 < body["accuracy"] < 0.99 and body["run_id"] and body["run_key"] == key
    assert "Publish" in {call.action for call in calls}
    assert_allowed_by_the_shipped_policies(calls, airflow_project.env)


def test_an_approved_package_is_the_champion_of_the_next_run(aws, airflow_project) -> None:
    first_key, next_key = "20261123T020000Z", "20261124T020000Z"
    stage_job_outputs(aws, first_key)
    assert airflow_project.dags_test("2026-11-23T02:00:00+00:00").returncode == 0
    sagemaker, s3 = aws["clients"]["sagemaker"], aws["clients"]["s3"]
    (package,) = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    sagemaker.update_model_package(ModelPackageArn=package["ModelPackageArn"], ModelApprovalStatus="Approved")
    champion = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    layout = stage_job_outputs(aws, next_key)
    # what the evaluation job writes when it was given the champion (moto runs no job)
    written = json.loads((aws["outputs"]["evaluation"] / "evaluation.json").read_text())
    written["champion"] = {"identifier": package["ModelPackageArn"], "version": 1, "comparable": True, "reason": None,
                           "metrics": written["metrics"], "delta": dict.fromkeys(written["metrics"], 0.0)}
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/runs/{next_key}/evaluation/evaluation.json",
                  Body=json.dumps(written).encode())
    aws["server"].record_afresh()

    outcome = airflow_project.dags_test("2026-11-24T02:00:00+00:00", {"compare_with_champion": "report"})
    calls = aws["server"].calls()

    assert outcome.returncode == 0, outcome.log[-6000:]
    (evaluate,) = [call.params for call in calls if call.action == "CreateProcessingJob"
                   and call.params["ProcessingJobName"] == f"churn-evaluate-{next_key}"]
    inputs = {item["InputName"]: item["S3Input"]["S3Uri"] for item in evaluate["ProcessingInputs"]}
    assert inputs["champion"] == champion["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert inputs["baseline"] == champion["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"]
    assert package["ModelPackageArn"] in evaluate["AppSpecification"]["ContainerArguments"]
    (created,) = [call.params for call in calls if call.action == "CreateModelPackage"]
    validate_against_service_models(calls)  # the lineage fields included
    metadata = created["CustomerMetadataProperties"]
    assert len(metadata) <= 50 and all(len(value) <= 256 for value in metadata.values())
    assert metadata["compared_with"] == package["ModelPackageArn"] and metadata["compared_on"] == "roc_auc"
    assert "delta_roc_auc" in metadata and metadata["report_uri"] == layout.report_file_uri
    assert created["MetadataProperties"]["GeneratedBy"].startswith("airflow:customer_churn_pipeline/")
    assert created["ModelCard"]["ModelCardStatus"] == "Draft"
    assert "evaluation_details" in json.loads(created["ModelCard"]["ModelCardContent"])
    profile = created["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"]
    assert profile == f"{layout.preprocessing_uri('profile')}/statistics.json"
    assert created["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"] == profile
    report = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/runs/{next_key}/report/report.html")["Body"].read()
    assert b"Content-Security-Policy" in report and package["ModelPackageArn"].encode() in report
    assert_allowed_by_the_shipped_policies(calls, airflow_project.env)
    RECORDED["run with a champion"] = calls


def test_scoring_creates_a_model_from_the_approved_package_and_a_transform_job(aws, airflow_project) -> None:
    outcome, package, calls = run_scoring(aws, airflow_project)

    assert outcome.returncode == 0, outcome.log[-6000:]
    validate_against_service_models(calls)
    (model,) = [call.params for call in calls if call.action == "CreateModel"]
    (transform,) = [call.params for call in calls if call.action == "CreateTransformJob"]
    assert model["PrimaryContainer"] == {"ModelPackageName": package}
    assert model["ModelName"] == "churn-model-20261125T060000Z" == transform["ModelName"]
    assert transform["TransformJobName"] == "churn-score-20261125T060000Z"
    assert transform["TransformResources"]["InstanceType"] == "ml.m5.xlarge"
    assert transform["DataProcessing"] == {"InputFilter": "$", "JoinSource": "Input",
                                           "OutputFilter": "$['CustomerID','SageMakerOutput']"}
    scores = aws["clients"]["s3"].get_object(Bucket=BUCKET, Key=f"{PREFIX}/scoring/20261125T060000Z/scores.csv")
    assert len(scores["Body"].read().decode().splitlines()) == 10_001  # header + every unique customer


def test_an_extract_lands_in_the_runs_prefix_on_s3_and_preprocess_reads_it_there(aws, airflow_project,
                                                                                 tmp_path) -> None:
    import pyarrow.parquet as pq

    key = EXTRACT_KEY
    outcome, calls = run_extracting(aws, airflow_project, tmp_path)

    assert outcome.returncode == 0, outcome.log[-6000:]
    assert outcome.states["extract_customers"] == outcome.states["register_model"] == "success"
    s3 = aws["clients"]["s3"]
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/runs/{key}/input/customers.parquet")["Body"].read()
    assert pq.read_metadata(io.BytesIO(body)).num_rows == 10_100
    (preprocess,) = [call for call in calls if call.action == "CreateProcessingJob"
                     and call.params["ProcessingJobName"] == f"churn-preprocess-{key}"]
    (data,) = [item for item in preprocess.params["ProcessingInputs"] if item["InputName"] == "data"]
    assert data["S3Input"]["S3Uri"] == f"s3://{BUCKET}/{PREFIX}/runs/{key}/input"
    writes = [call.path for call in calls if call.service == "s3" and call.action == "PutObject"
              and "/input/" in call.path]
    assert writes == [f"/{BUCKET}/{PREFIX}/runs/{key}/input/customers.parquet"]
    footer_reads = [call for call in calls if call.action == "GetObject" and call.path.endswith("customers.parquet")]
    assert footer_reads, "stage_inputs and the extract read the footer, not the data, to check it"
    assert_allowed_by_the_shipped_policies(calls, airflow_project.env)
