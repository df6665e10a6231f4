"""The sagemaker backend end to end through real Airflow and the provider's operators, against a
moto server: moto accepts the jobs and completes them at once without running anything, so the
files a job would have written are staged where the job would have written them."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.payloads import JobResult
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.services.notifications import Notification, SnsChannel, notify_once
from churn_pipeline.services.objectstore import S3ObjectStore
from churn_pipeline.tooling.iam import AIRFLOW_POLICY, EXECUTION_POLICY, render_policies
from churn_pipeline.tooling.sample_data import SAMPLE_ROWS, SAMPLE_SEED, write_sample
from tests.conftest import SAMPLE_CSV
from tests.e2e.iam_check import (
    SAGEMAKER_PLATFORM_ACTIONS,
    allows,
    granted_actions,
    job_data_permissions,
    required_permissions,
)
from tests.e2e.moto_server import MotoServer, RecordedCall

# One worker runs this module: the policy test compares the policies with the calls its runs recorded.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("moto-recorded-calls")]

REGION = "us-east-1"
BUCKET = "churn-e2e-artifacts"
PREFIX = "ml/churn"
ROLE = "arn:aws:iam::123456789012:role/churn-sagemaker-execution"
GROUP = "churn-e2e"
ACCOUNT = "123456789012"  # moto's account
PASSING_KEY, FAILING_KEY, EXTRACT_KEY = "20261120T020000Z", "20261121T020000Z", "20261123T020000Z"
# Every AWS call the runs of this module made, by run: the IAM test compares the policies with them.
RECORDED: dict[str, list[RecordedCall]] = {}


@pytest.fixture()
def aws(moto_server: MotoServer, airflow_project, sample_outputs):
    moto_server.reset()
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    clients = {name: session.client(name, endpoint_url=moto_server.url) for name in ("s3", "sns", "sqs", "sagemaker")}
    clients["s3"].create_bucket(Bucket=BUCKET)
    topic = clients["sns"].create_topic(Name="churn-team")["TopicArn"]
    queue = clients["sqs"].create_queue(QueueName="churn-team-inbox")["QueueUrl"]
    attributes = clients["sqs"].get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    queue_arn = attributes["QueueArn"]
    clients["sns"].subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                             Attributes={"RawMessageDelivery": "true"})
    clients["s3"].upload_file(str(SAMPLE_CSV), BUCKET, f"{PREFIX}/input-data/customer_data.csv")
    airflow_project.extra_env.update({
        "CHURN_BACKEND": "sagemaker", "CHURN_BUCKET": BUCKET, "CHURN_PREFIX": PREFIX, "CHURN_ROLE_ARN": ROLE,
        "CHURN_REGION": REGION, "CHURN_SNS_TOPIC_ARN": topic, "CHURN_MODEL_PACKAGE_GROUP": GROUP,
        "CHURN_TRAIN_INSTANCE_TYPE": "ml.c5.2xlarge", "CHURN_EVALUATE_INSTANCE_TYPE": "ml.m5.large",
        "CHURN_RETRIES": "0", "AWS_ENDPOINT_URL": moto_server.url, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "extra": {"region_name": REGION}}),
    })
    return {"clients": clients, "topic": topic, "queue": queue, "server": moto_server, "outputs": sample_outputs}


def stage_job_outputs(aws: dict, key: str) -> RunLayout:
    """Put what preprocessing and evaluation would have written where they would have written it."""
    s3 = aws["clients"]["s3"]
    layout = RunLayout(f"s3://{BUCKET}/{PREFIX}", key)
    produced: Path = aws["outputs"]["out"]
    for path in sorted(produced.rglob("*")):
        if path.is_file():
            relative = path.relative_to(produced).as_posix()
            s3.upload_file(str(path), BUCKET, f"{PREFIX}/runs/{key}/preprocessing/{relative}")
    for path in sorted(aws["outputs"]["evaluation"].iterdir()):  # evaluation.json, details.json, drift.json
        s3.upload_file(str(path), BUCKET, f"{PREFIX}/runs/{key}/evaluation/{path.name}")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as bundle:
        for path in sorted(aws["outputs"]["model"].iterdir()):
            bundle.add(path, arcname=path.name)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/runs/{key}/model/churn-train-{key}/output/model.tar.gz",
                  Body=archive.getvalue())
    aws["server"].record_afresh()
    return layout


def validate_against_service_models(calls) -> None:
    session = botocore.session.get_session()
    for call in calls:
        if call.service not in ("sagemaker",):
            continue
        shape = session.get_service_model(call.service).operation_model(call.action).input_shape
        report = ParamValidator().validate(call.params, shape)
        assert not report.has_errors(), f"{call.action}: {report.generate_report()}"


def assert_allowed_by_the_shipped_policies(calls, env: dict[str, str]) -> None:
    policies = render_policies(load_settings(env), ACCOUNT)
    for call in calls:
        for action, resource in required_permissions(call, REGION, ACCOUNT):
            assert allows(policies[AIRFLOW_POLICY], action, resource), f"Airflow policy lacks {action} on {resource}"
        if call.action in ("CreateProcessingJob", "CreateTrainingJob"):
            for action, resource in job_data_permissions(call):
                assert allows(policies[EXECUTION_POLICY], action, resource), \
                    f"execution role lacks {action} on {resource}"


def run_passing(aws: dict, airflow_project) -> tuple:
    layout = stage_job_outputs(aws, PASSING_KEY)
    outcome = airflow_project.dags_test("2026-11-20T02:00:00+00:00")
    RECORDED["passing run"] = aws["server"].calls()  # before the test's own calls are recorded too
    return outcome, layout, RECORDED["passing run"]


def run_failing_threshold(aws: dict, airflow_project) -> tuple:
    stage_job_outputs(aws, FAILING_KEY)
    outcome = airflow_project.dags_test("2026-11-21T02:00:00+00:00", {"accuracy_threshold": 0.99})
    RECORDED["failing run"] = aws["server"].calls()
    return outcome, RECORDED["failing run"]


def run_extracting(aws: dict, airflow_project, folder: Path) -> tuple:
    """A run whose customers come from a database (SQLite here: SqlToS3Operator reads any DB-API
    connection alike) through the provider's SqlToS3Operator into S3, the way production runs it."""
    database = write_sample(folder / "crm.sqlite", SAMPLE_ROWS, SAMPLE_SEED)
    airflow_project.extra_env.update({
        "AIRFLOW_CONN_CHURN_CRM": json.dumps({"conn_type": "sqlite", "host": str(database)}),
        "CHURN_SOURCE_CONN_ID": "churn_crm", "CHURN_SOURCE_QUERY": "SELECT * FROM customers"})
    stage_job_outputs(aws, EXTRACT_KEY)
    outcome = airflow_project.dags_test("2026-11-23T02:00:00+00:00")
    RECORDED["extracting run"] = aws["server"].calls()
    return outcome, RECORDED["extracting run"]


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


def run_scoring(aws: dict, airflow_project) -> tuple:
    """An approved package of the sample model, then the scoring DAG; moto runs no transform, so its
    joined output is put where the job would have written it."""
    s3, sagemaker = aws["clients"]["s3"], aws["clients"]["sagemaker"]
    key = "20261125T060000Z"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as bundle:
        for path in sorted(aws["outputs"]["model"].iterdir()):
            bundle.add(path, arcname=path.name)
    model_uri = f"s3://{BUCKET}/{PREFIX}/runs/20261101T020000Z/model/churn-train-x/output/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=model_uri.removeprefix(f"s3://{BUCKET}/"), Body=archive.getvalue())
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    package = sagemaker.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved",
        InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": model_uri}],
                                "SupportedContentTypes": ["application/jsonlines"],
                                "SupportedResponseMIMETypes": ["application/jsonlines"]})["ModelPackageArn"]
    ids = sorted({line.split(",")[0] for line in SAMPLE_CSV.read_text().splitlines()[1:]})
    joined = "".join(json.dumps({"CustomerID": customer, "SageMakerOutput": {"probability": (n % 100) / 100}}) + "\n"
                     for n, customer in enumerate(ids))
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/scoring/{key}/transform/customers.jsonl.out", Body=joined.encode())
    aws["server"].record_afresh()
    outcome = airflow_project.dags_test("2026-11-25T06:00:00+00:00", dag_id="customer_churn_scoring")
    RECORDED["scoring run"] = aws["server"].calls()
    return outcome, package, RECORDED["scoring run"]


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


def exercise_the_paths_no_run_takes(aws: dict, env: dict[str, str],
                                    monkeypatch: pytest.MonkeyPatch) -> list[RecordedCall]:
    """Calls the code makes only when things go wrong: killing a job task stops its job (all three kinds),
    and a notification whose sending fails removes its at-most-once marker, and an extract too large for
    one PUT whose upload breaks abandons its multipart upload (the upload SqlToS3Operator makes, through
    the provider's S3Hook). Made against the moto server from this process, so its recorder sees them
    like the runs' calls."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from churn_pipeline.operators.sagemaker import (
        ChurnProcessingOperator,
        ChurnTrainingOperator,
        ChurnTransformOperator,
    )

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server: MotoServer = aws["server"]
    aws["clients"]["sns"].delete_topic(TopicArn=aws["topic"])  # so that publishing fails
    server.record_afresh()
    settings = load_settings()
    for operator_class, step in ((ChurnProcessingOperator, "preprocess"), (ChurnTrainingOperator, "train"),
                                 (ChurnTransformOperator, "score")):
        operator = operator_class(task_id=step, step=step, settings=settings)
        operator._current_job = f"churn-{step}-20261122T020000Z"
        operator.on_kill()  # moto answers "no such job"; the call is what the policy must allow
    store = S3ObjectStore(aws["clients"]["s3"])
    unreachable = SnsChannel(aws["clients"]["sns"], aws["topic"])
    notification = Notification(reason="model_rejected", subject="s", message="m", run_id="r",
                                run_key="20261122T020000Z")
    with pytest.raises(Exception, match="NotFound"):
        notify_once(notification, unreachable, store, f"s3://{BUCKET}/{PREFIX}/runs/20261122T020000Z/notifications/x.json")

    class ConnectionLostMidway(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() >= 8 * 2**20:  # past the first part of a multipart upload
                raise ConnectionResetError(104, "Connection reset by peer")
            return super().read(size)

    with pytest.raises(ConnectionResetError):
        S3Hook(aws_conn_id=settings.aws_conn_id).load_file_obj(
            ConnectionLostMidway(bytes(20 * 2**20)), key=f"{PREFIX}/runs/20261122T020000Z/input/customers.parquet",
            bucket_name=BUCKET, replace=True)
    return server.calls()


def test_the_policies_grant_exactly_what_the_recorded_calls_need(aws, airflow_project, monkeypatch,
                                                                 tmp_path) -> None:
    """Both directions: every call the pipeline made (in the runs above, the extracting one included,
    and on the failure paths) is allowed, and every action granted is needed by one of them (or, for
    the execution role, by SageMaker itself as it runs the job: image pulls, logs, metrics, listing
    S3Prefix inputs)."""
    if "passing run" not in RECORDED:
        run_passing(aws, airflow_project)
    if "failing run" not in RECORDED:
        run_failing_threshold(aws, airflow_project)
    if "scoring run" not in RECORDED:
        run_scoring(aws, airflow_project)
    if "extracting run" not in RECORDED:
        run_extracting(aws, airflow_project, tmp_path)
    calls = [call for recorded in RECORDED.values() for call in recorded]
    calls += exercise_the_paths_no_run_takes(aws, airflow_project.env, monkeypatch)
    policies = render_policies(load_settings(airflow_project.env), ACCOUNT)

    needed_by_airflow = {action for call in calls for action, _ in required_permissions(call, REGION, ACCOUNT)}
    needed_by_jobs = {action for call in calls
                      if call.action in ("CreateProcessingJob", "CreateTrainingJob", "CreateTransformJob")
                      for action, _ in job_data_permissions(call)}
    assert_allowed_by_the_shipped_policies(calls, airflow_project.env)
    assert granted_actions(policies[AIRFLOW_POLICY]) == needed_by_airflow
    assert granted_actions(policies[EXECUTION_POLICY]) == needed_by_jobs | SAGEMAKER_PLATFORM_ACTIONS
