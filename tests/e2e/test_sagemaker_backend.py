"""The sagemaker backend end to end through real Airflow and the provider's operators, against the
AWS emulation (``churn_pipeline.tooling.aws_emulation``): moto's server, whose jobs really run in the
image twin, reading their inputs from its S3 and writing their outputs there. Nothing a job writes is
staged by a test: the gate, the report and registration read what this run's own jobs wrote. The IAM
policies against the calls these runs recorded: test_sagemaker_policies.py."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from churn_pipeline.domain.payloads import JobResult
from tests.conftest import HEADER, make_rows
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
    SPARK_KEY,
    assert_allowed_by_the_shipped_policies,
    job_log,
    read_back,
    record_this_run,
    run_extracting,
    run_failing_threshold,
    run_on_spark,
    run_passing,
    run_scoring,
    sagemaker_world,
    validate_against_service_models,
)

# One worker runs these and the policy test: it compares the policies with the calls these runs recorded.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(MOTO_RECORDED_CALLS)]


@pytest.fixture()
def aws(moto_server: MotoServer, airflow_project, sample_outputs) -> dict:
    return sagemaker_world(moto_server, airflow_project, sample_outputs)


def test_a_passing_run_runs_its_jobs_and_registers_a_pending_version_from_what_they_wrote(aws,
                                                                                        airflow_project) -> None:
    """Airflow's default_deferrable=True (as on MWAA) is set and leaves the job tasks synchronous."""
    key = PASSING_KEY
    airflow_project.extra_env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] = "True"
    outcome, layout, calls = run_passing(aws, airflow_project)

    assert outcome.returncode == 0, outcome.log[-6000:]
    assert outcome.log.count("[DAG TEST] running trigger in line") == 0
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
    evaluation = json.loads(read_back(aws, layout.evaluation_file_uri))  # as this run's evaluation job wrote it
    assert float(metadata["accuracy"]) == pytest.approx(evaluation["metrics"]["accuracy"], abs=1e-6)
    assert metadata["training_job"] == f"churn-train-{key}" and metadata["run_key"] == key
    assert aws["clients"]["sqs"].receive_message(QueueUrl=aws["queue"]).get("Messages") is None

    # what the training job packed, and the description SageMaker gives of it
    trained = JobResult.from_xcom(airflow_project.xcom("2026-11-20", "train"))
    with tarfile.open(fileobj=io.BytesIO(read_back(aws, trained.output("model")))) as model:
        assert "code/inference.py" in model.getnames()
    training = sagemaker.describe_training_job(TrainingJobName=f"churn-train-{key}")
    assert training["TrainingJobStatus"] == "Completed"
    assert {metric["MetricName"] for metric in training["FinalMetricDataList"]} >= {"validation:accuracy"}
    report = read_back(aws, layout.report_file_uri)
    assert b"Content-Security-Policy" in report and f"churn-train-{key}".encode() in report
    # every job's own lines, in SageMaker's log groups, and in its task's log
    for kind, step in (("Processing", "preprocess"), ("Training", "train"), ("Processing", "evaluate")):
        lines = job_log(aws, kind, f"churn-{step}-{key}")
        assert any("image twin" in line for line in lines), lines
        assert f"[churn-{step}-{key}] {lines[-1]}" in outcome.log


def test_a_spark_run_runs_every_step_in_the_spark_image_and_registers_a_spark_version(aws,
                                                                                     airflow_project) -> None:
    """CHURN_ENGINE=spark against the emulation: every job, training too, is a processing job of the
    Spark image whose data sets Spark itself reads and writes in the emulated S3; the gate and the
    registration read what those jobs wrote, as on the scikit-learn engine."""
    key = SPARK_KEY
    outcome, layout, calls = run_on_spark(aws, airflow_project)

    assert outcome.returncode == 0, outcome.log[-6000:]
    created = {call.params["ProcessingJobName"]: call for call in calls if call.action == "CreateProcessingJob"}
    assert sorted(created) == [f"churn-evaluate-{key}", f"churn-preprocess-{key}", f"churn-train-{key}"]
    assert not [call for call in calls if call.action == "CreateTrainingJob"]
    for call in created.values():
        app = call.params["AppSpecification"]
        assert "/sagemaker-spark-processing:3.5-cpu-py312-v" in app["ImageUri"]
        assert app["ContainerEntrypoint"][0] == "smspark-submit"
    validate_against_service_models(calls)
    assert_allowed_by_the_shipped_policies(calls, airflow_project.env)

    s3, sagemaker = aws["clients"]["s3"], aws["clients"]["sagemaker"]
    written = {item["Key"] for item in s3.list_objects_v2(
        Bucket=BUCKET, Prefix=f"{PREFIX}/runs/{key}/preprocessing/train/")["Contents"]}
    assert any(name.endswith(".parquet") for name in written), written  # Spark wrote it there, through S3
    (package,) = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    described = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    metadata = described["CustomerMetadataProperties"]
    assert metadata["engine"] == "spark-mllib"
    evaluation = json.loads(read_back(aws, layout.evaluation_file_uri))
    assert float(metadata["accuracy"]) == pytest.approx(evaluation["metrics"]["accuracy"], abs=1e-6)
    model = described["InferenceSpecification"]["Containers"][0]
    assert "/sagemaker-spark-processing:" in model["Image"]
    with tarfile.open(fileobj=io.BytesIO(read_back(aws, model["ModelDataUrl"]))) as archive:
        assert "training_metrics.json" in archive.getnames()
    lines = job_log(aws, "Processing", f"churn-train-{key}")
    assert lines and f"[churn-train-{key}] {lines[-1]}" in outcome.log


def test_a_deferred_wait_keeps_the_run_and_its_results(aws, airflow_project) -> None:
    """CHURN_DEFERRABLE hands each wait to the provider's trigger (run inline by `airflow dags test`,
    through aiobotocore, while the job runs) and the resumed tasks hand on the same JobResult payloads,
    with the job's log lines."""
    airflow_project.extra_env["CHURN_DEFERRABLE"] = "true"
    key = PASSING_KEY
    record_this_run(aws, key)

    outcome = airflow_project.dags_test("2026-11-20T02:00:00+00:00")

    assert outcome.returncode == 0, outcome.log[-6000:]
    assert outcome.log.count("[DAG TEST] running trigger in line") == 3
    assert outcome.log.count("resumed after the trigger reported success") == 3
    for step in ("preprocess", "train", "evaluate"):
        result = JobResult.from_xcom(airflow_project.xcom("2026-11-20", step))
        assert (result.job_name, result.status, result.attempt, result.reused) == (
            f"churn-{step}-{key}", "Completed", 1, False)
        assert f"[churn-{step}-{key}] job python: " in outcome.log
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
    written = json.loads(read_back(aws, f"s3://{BUCKET}/{PREFIX}/runs/{key}/evaluation/evaluation.json"))
    assert body["accuracy"] == pytest.approx(written["metrics"]["accuracy"])  # the gate read this run's job
    assert "Publish" in {call.action for call in calls}
    assert_allowed_by_the_shipped_policies(calls, airflow_project.env)


def test_an_extract_and_an_approved_package_that_is_the_champion_of_the_next_run(aws, airflow_project,
                                                                                 tmp_path) -> None:
    """The first run's customers come from a database through SqlToS3Operator into S3, where its
    preprocessing job reads them; its version, approved, is the champion the next run's evaluation job
    is given and compares with (a real comparison: nothing of it is staged)."""
    import pyarrow.parquet as pq

    key, next_key = EXTRACT_KEY, "20261124T020000Z"
    outcome, calls = run_extracting(aws, airflow_project, tmp_path)

    assert outcome.returncode == 0, outcome.log[-6000:]
    assert outcome.states["extract_customers"] == outcome.states["register_model"] == "success"
    s3, sagemaker = aws["clients"]["s3"], aws["clients"]["sagemaker"]
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

    (package,) = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    sagemaker.update_model_package(ModelPackageArn=package["ModelPackageArn"], ModelApprovalStatus="Approved")
    champion = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    layout = record_this_run(aws, next_key)
    for name in ("CHURN_SOURCE_CONN_ID", "CHURN_SOURCE_QUERY"):  # the next run reads the bucket's input file
        del airflow_project.extra_env[name]

    outcome = airflow_project.dags_test("2026-11-24T02:00:00+00:00", {"compare_with_champion": "report"})
    calls = aws["server"].calls()

    assert outcome.returncode == 0, outcome.log[-6000:]
    (evaluate,) = [call.params for call in calls if call.action == "CreateProcessingJob"
                   and call.params["ProcessingJobName"] == f"churn-evaluate-{next_key}"]
    inputs = {item["InputName"]: item["S3Input"]["S3Uri"] for item in evaluate["ProcessingInputs"]}
    assert inputs["champion"] == champion["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert inputs["baseline"] == champion["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"]
    assert package["ModelPackageArn"] in evaluate["AppSpecification"]["ContainerArguments"]
    written = json.loads(read_back(aws, layout.evaluation_file_uri))  # the evaluation job compared them
    assert written["champion"]["identifier"] == package["ModelPackageArn"] and written["champion"]["comparable"]
    (created,) = [call.params for call in calls if call.action == "CreateModelPackage"]
    validate_against_service_models(calls)  # the lineage fields included
    metadata = created["CustomerMetadataProperties"]
    assert len(metadata) <= 50 and all(len(value) <= 256 for value in metadata.values())
    assert metadata["compared_with"] == package["ModelPackageArn"] and metadata["compared_on"] == "roc_auc"
    assert float(metadata["delta_roc_auc"]) == pytest.approx(written["champion"]["delta"]["roc_auc"], abs=1e-6)
    assert metadata["report_uri"] == layout.report_file_uri
    assert created["MetadataProperties"]["GeneratedBy"].startswith("airflow:customer_churn_pipeline/")
    assert created["ModelCard"]["ModelCardStatus"] == "Draft"
    assert "evaluation_details" in json.loads(created["ModelCard"]["ModelCardContent"])
    profile = created["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"]
    assert profile == f"{layout.preprocessing_uri('profile')}/statistics.json"
    assert created["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"] == profile
    report = read_back(aws, layout.report_file_uri)
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
    # the transform job's own output, joined by Batch Transform as the request asked, and the scores from it
    joined = read_back(aws, f"s3://{BUCKET}/{PREFIX}/scoring/20261125T060000Z/transform/customers.jsonl.out")
    records = [json.loads(line) for line in joined.decode().splitlines()]
    assert len(records) == 10_000 and set(records[0]) == {"CustomerID", "SageMakerOutput"}
    scores = read_back(aws, f"s3://{BUCKET}/{PREFIX}/scoring/20261125T060000Z/scores.csv").decode().splitlines()
    assert len(scores) == 10_001  # header + every unique customer
    transform_log = job_log(aws, "Transform", "churn-score-20261125T060000Z")
    assert any("image twin" in line for line in transform_log), transform_log
    assert f"[churn-score-20261125T060000Z] {transform_log[-1]}" in outcome.log


def test_input_that_breaks_the_contract_fails_its_preprocessing_job_with_the_jobs_error_in_the_task_log(
        aws, airflow_project) -> None:
    """The same one-line rejection as on the local backend, now from a job on the AWS path: the job fails
    with it as its FailureReason, its own log lines (CloudWatch) are in the task's log, nothing is
    retried, registered or written downstream, and the team is told once."""
    key = "20261126T020000Z"
    bad = "\n".join([HEADER] + [row.replace(",Yes", ",Perhaps") for row in make_rows(60)]) + "\n"
    aws["clients"]["s3"].put_object(Bucket=BUCKET, Key=f"{PREFIX}/input-data/customer_data.csv", Body=bad.encode())
    airflow_project.extra_env["CHURN_RETRIES"] = "2"
    record_this_run(aws, key)

    outcome = airflow_project.dags_test("2026-11-26T02:00:00+00:00")

    assert outcome.returncode == 1
    assert outcome.states["preprocess"] == "failed" and outcome.states["train"] == "upstream_failed"
    job = f"churn-preprocess-{key}"
    described = aws["clients"]["sagemaker"].describe_processing_job(ProcessingJobName=job)
    assert described["ProcessingJobStatus"] == "Failed"
    reason = described["FailureReason"]
    assert "preprocessing rejected its input" in reason and "'Perhaps' (20)" in reason
    lines = job_log(aws, "Processing", job)
    (error_line,) = [line for line in lines if "'Perhaps' (20)" in line]
    assert f"[{job}] {error_line}" in outcome.log, "the job's own error line is in the task log"
    created = [call for call in aws["server"].calls() if call.action == "CreateProcessingJob"]
    assert len(created) == 1, "bad input is not retried: no second paid job"
    assert aws["clients"]["s3"].list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/runs/{key}/preprocessing/")[
        "KeyCount"] == 0
    messages = aws["clients"]["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10,
                                                     WaitTimeSeconds=1).get("Messages", [])
    (message,) = [json.loads(item["Body"]) for item in messages]
    assert message["reason"] == "pipeline_failed" and message["failed_tasks"] == ["preprocess"]
