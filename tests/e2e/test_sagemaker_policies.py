"""The shipped IAM policies against the AWS calls the sagemaker backend really makes, in both
directions: every call the runs made (recorded by the moto server, in test_sagemaker_backend.py when
it ran first on this worker, or here) and the failure paths no run takes is allowed, and every
granted action is needed."""

from __future__ import annotations

import io

import pytest

from churn_pipeline.domain.settings import load_settings
from churn_pipeline.domain.steps import INPUT_ROLES
from churn_pipeline.services.notifications import Notification, SnsChannel, notify_once
from churn_pipeline.services.objectstore import S3ObjectStore
from churn_pipeline.services.registry import SageMakerRegistry
from churn_pipeline.tooling.iam import AIRFLOW_POLICY, EXECUTION_POLICY, render_policies
from tests.builders import registration_request
from tests.e2e.iam_check import (
    SAGEMAKER_PLATFORM_ACTIONS,
    granted_actions,
    job_data_permissions,
    required_permissions,
)
from tests.e2e.moto_server import MotoServer, RecordedCall
from tests.e2e.sagemaker_runs import (
    ACCOUNT,
    BUCKET,
    MOTO_RECORDED_CALLS,
    PREFIX,
    RECORDED,
    REGION,
    assert_allowed_by_the_shipped_policies,
    run_extracting,
    run_failing_threshold,
    run_on_spark,
    run_passing,
    run_scoring,
    sagemaker_world,
)

# One worker runs this and test_sagemaker_backend.py, whose runs' recorded calls it reuses.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(MOTO_RECORDED_CALLS)]


@pytest.fixture()
def aws(moto_server: MotoServer, airflow_project, sample_outputs) -> dict:
    return sagemaker_world(moto_server, airflow_project, sample_outputs)


def exercise_the_paths_no_run_takes(aws: dict, env: dict[str, str],
                                    monkeypatch: pytest.MonkeyPatch) -> list[RecordedCall]:
    """Calls the code makes only when things go wrong: killing a job task stops its job (all three kinds),
    and a notification whose sending fails removes its at-most-once marker, and an extract too large for
    one PUT whose upload breaks abandons its multipart upload (the upload SqlToS3Operator makes, through
    the provider's S3Hook); and the outcome DAG linking its page from the version it measured, which no
    run here reaches (a cohort is measured a month after scoring). Made against the moto server from
    this process, so its recorder sees them like the runs' calls."""
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
        # killed before it read its upstream results: only the job it started matters here
        operator = operator_class(task_id=step, step=step, settings=settings, staged=None,
                                  inputs=dict.fromkeys(INPUT_ROLES[step]))
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
    # a review answered in Airflow writes its decision on the package (no run of the training DAG does)
    registry = SageMakerRegistry(aws["clients"]["sagemaker"], store, settings.base_uri)
    registered = registry.register(registration_request(settings, "20261122T020000Z"))
    registry.set_approval(settings.model_package_group, registered.version, "Approved",
                          "Approved by ana at 2026-11-22T09:00:00+00:00 via Airflow review: fine",
                          registered.identifier)
    measured = registered
    registry.link_outcomes(measured.identifier, f"{settings.base_uri}/outcomes/outcomes.html")
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
    if "spark run" not in RECORDED:  # before the extracting run, which leaves a source configured
        run_on_spark(aws, airflow_project)
        airflow_project.extra_env["CHURN_ENGINE"] = "sklearn"
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
