"""What the sagemaker-backend end-to-end tests share: the AWS emulation (moto's server, whose jobs
really run) set up as the account the pipeline runs in, the runs, what their jobs wrote read back, the checks of
their recorded calls, and those calls by run (RECORDED), which the policy test compares with the IAM
policies. The tests that share them carry the xdist group MOTO_RECORDED_CALLS, so one worker runs them."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import boto3
import botocore.session
from botocore.validate import ParamValidator

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.requests.transform import INFERENCE_ENVIRONMENT
from churn_pipeline.tooling.iam import AIRFLOW_POLICY, EXECUTION_POLICY, render_policies
from churn_pipeline.tooling.sample_data import SAMPLE_ROWS, SAMPLE_SEED, write_sample
from tests.conftest import SAMPLE_CSV
from tests.e2e.iam_check import (
    allows,
    job_data_permissions,
    required_permissions,
)
from tests.e2e.moto_server import MotoServer, RecordedCall

MOTO_RECORDED_CALLS = "moto-recorded-calls"

REGION = "us-east-1"
BUCKET = "churn-e2e-artifacts"
PREFIX = "ml/churn"
ROLE = "arn:aws:iam::123456789012:role/churn-sagemaker-execution"
GROUP = "churn-e2e"
ACCOUNT = "123456789012"  # moto's account
PASSING_KEY, FAILING_KEY, EXTRACT_KEY = "20261120T020000Z", "20261121T020000Z", "20261123T020000Z"
SPARK_KEY = "20261124T020000Z"
# Every AWS call the runs made in this process, by run: the policy test compares the policies with them.
RECORDED: dict[str, list[RecordedCall]] = {}


def sagemaker_world(moto_server: MotoServer, airflow_project, sample_outputs) -> dict:
    """A reset AWS emulation (its jobs really run, in the image twin) with the bucket, the team's topic
    (and a queue subscribed to read what it publishes) and the sample input, and the project set to the
    sagemaker backend against it."""
    moto_server.reset()
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    clients = {name: session.client(name, endpoint_url=moto_server.url)
               for name in ("s3", "sns", "sqs", "sagemaker", "logs")}
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
        "CHURN_RETRIES": "0",
        # the jobs really run for seconds: poll once a second (the tests' default, 0, would spin)
        "CHURN_POLL_SECONDS": "1", "AWS_ENDPOINT_URL": moto_server.url, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "extra": {"region_name": REGION}}),
    })
    return {"clients": clients, "topic": topic, "queue": queue, "server": moto_server, "outputs": sample_outputs}


def record_this_run(aws: dict, key: str) -> RunLayout:
    """From now on the recorder holds only the run's calls (not the test's set-up); the run's layout."""
    aws["server"].record_afresh()
    return RunLayout(f"s3://{BUCKET}/{PREFIX}", key)


def read_back(aws: dict, uri: str) -> bytes:
    """An object a job wrote, from the emulated S3."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return aws["clients"]["s3"].get_object(Bucket=bucket, Key=key)["Body"].read()


def job_log(aws: dict, kind: str, job_name: str) -> list[str]:
    """The lines a job wrote to the emulated CloudWatch Logs, in SageMaker's group for its kind."""
    logs = aws["clients"]["logs"]
    group = f"/aws/sagemaker/{kind}Jobs"
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job_name}/")["logStreams"]
    return [event["message"] for stream in streams for event in
            logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])["events"]]


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
    layout = record_this_run(aws, PASSING_KEY)
    outcome = airflow_project.dags_test("2026-11-20T02:00:00+00:00")
    RECORDED["passing run"] = aws["server"].calls()  # before the test's own calls are recorded too
    return outcome, layout, RECORDED["passing run"]


def run_on_spark(aws: dict, airflow_project) -> tuple:
    """A run on the Spark engine: its three jobs in the Spark image, run by the emulation in the
    Spark twin, Spark reading and writing the emulated S3 through the run's s3:// arguments. One
    instance per step: the two-worker cluster is tested on the local backend
    (tests/e2e/test_spark_engine.py), and four JVM workers per job would crowd two cores here."""
    airflow_project.extra_env.update({"CHURN_ENGINE": "spark", **{
        f"CHURN_SPARK_{step}_INSTANCE_COUNT": "1" for step in ("PREPROCESS", "TRAIN", "EVALUATE", "SCORE")}})
    layout = record_this_run(aws, SPARK_KEY)
    outcome = airflow_project.dags_test("2026-11-24T02:00:00+00:00")
    RECORDED["spark run"] = aws["server"].calls()
    return outcome, layout, RECORDED["spark run"]


def run_failing_threshold(aws: dict, airflow_project) -> tuple:
    record_this_run(aws, FAILING_KEY)
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
    record_this_run(aws, EXTRACT_KEY)
    outcome = airflow_project.dags_test("2026-11-23T02:00:00+00:00")
    RECORDED["extracting run"] = aws["server"].calls()
    return outcome, RECORDED["extracting run"]


def run_scoring(aws: dict, airflow_project) -> tuple:
    """An approved package of the sample model (as training.py writes it: the model and its serving
    code), then the scoring DAG, whose transform job really runs in the emulation."""
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
        InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": model_uri,
                                                "Environment": dict(INFERENCE_ENVIRONMENT)}],
                                "SupportedContentTypes": ["application/jsonlines"],
                                "SupportedResponseMIMETypes": ["application/jsonlines"]})["ModelPackageArn"]
    record_this_run(aws, key)
    outcome = airflow_project.dags_test("2026-11-25T06:00:00+00:00", dag_id="customer_churn_scoring")
    RECORDED["scoring run"] = aws["server"].calls()
    return outcome, package, RECORDED["scoring run"]
