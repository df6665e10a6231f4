"""On AWS a person approves in SageMaker or in Airflow's review; either must schedule scoring once. The
shipped EventBridge rule sends the group's "approved" state changes (and nothing else) to the approvals
queue, and the trigger the champion asset's watcher runs turns a message there into an event. An
approval made in Airflow is written to the package (status and description) and also causes that
EventBridge event: scoring, started by it for a package already scored, starts nothing. Checked against
moto's SageMaker, S3, EventBridge and SQS, with the provider's own trigger and the tasks' own code."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from types import SimpleNamespace

import boto3
import pytest

from churn_pipeline.domain.layout import ScoringLayout
from churn_pipeline.domain.settings import PROJECT_DIR, load_settings
from churn_pipeline.operators.assets import champion_asset
from tests.builders import passing_decision, registration_request

pytestmark = pytest.mark.e2e

RULE = PROJECT_DIR / "deploy" / "eventbridge" / "champion-approved-rule.json"
GROUP = "customer-churn"


def state_change(group: str, status: str, version: int) -> dict:
    return {"Source": "aws.sagemaker", "DetailType": "SageMaker Model Package State Change",
            "Detail": json.dumps({"ModelPackageGroupName": group, "ModelApprovalStatus": status,
                                  "ModelPackageVersion": version})}


def aws_on_loopback(moto_server, monkeypatch) -> tuple[str, object]:
    """The emulation, the approvals queue and the shipped rule feeding it; (queue URL, EventBridge client)."""
    moto_server.reset()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto_server.url,
                        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws"})}.items():
        monkeypatch.setenv(name, value)
    sqs, events = boto3.client("sqs"), boto3.client("events")
    queue = sqs.create_queue(QueueName="churn-approvals")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="churn-champion-approved", EventPattern=RULE.read_text().replace("${MODEL_PACKAGE_GROUP}",
                                                                                          GROUP))
    events.put_targets(Rule="churn-champion-approved", Targets=[{"Id": "approvals", "Arn": queue_arn}])
    return queue, events


def first_watched_event(queue: str):
    settings = load_settings({"CHURN_BACKEND": "sagemaker", "CHURN_APPROVAL_QUEUE_URL": queue,
                              "CHURN_REGION": "us-east-1"})
    (watcher,) = champion_asset(settings).watchers
    watcher.trigger.waiter_delay = 1

    async def first_event():
        async for event in watcher.trigger.run():
            return event
        return None

    return asyncio.run(asyncio.wait_for(first_event(), timeout=60))


def test_an_approval_in_sagemaker_reaches_the_champion_assets_watcher(moto_server, monkeypatch) -> None:
    queue, events = aws_on_loopback(moto_server, monkeypatch)
    sqs = boto3.client("sqs")
    events.put_events(Entries=[state_change(GROUP, "Rejected", 2), state_change("another-group", "Approved", 9),
                               state_change(GROUP, "Approved", 3)])

    event = first_watched_event(queue)

    (message,) = event.payload["message_batch"]  # only the group's approval got through the rule
    assert json.loads(message["Body"])["detail"] == {"ModelPackageGroupName": GROUP, "ModelApprovalStatus": "Approved",
                                                     "ModelPackageVersion": 3}
    assert sqs.receive_message(QueueUrl=queue).get("Messages") is None  # consumed once


def test_an_approval_in_airflow_is_written_to_the_package_and_its_eventbridge_echo_scores_nothing(
        moto_server, monkeypatch) -> None:
    from airflow.sdk import AssetAlias
    from airflow.sdk.exceptions import AirflowSkipException
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from churn_pipeline.services.objectstore import S3ObjectStore
    from churn_pipeline.services.registry import SageMakerRegistry
    from churn_pipeline.tasks.review import record_review_answers, registration_evidence
    from churn_pipeline.tasks.scoring import record_scored, stage_scoring_inputs

    queue, events = aws_on_loopback(moto_server, monkeypatch)
    environment = {"CHURN_BACKEND": "sagemaker", "CHURN_REGION": "us-east-1", "CHURN_BUCKET": "churn-echo",
                   "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/churn", "CHURN_MODEL_PACKAGE_GROUP": GROUP,
                   "CHURN_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:team", "CHURN_APPROVAL_QUEUE_URL": queue}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    sagemaker, s3 = boto3.client("sagemaker"), boto3.client("s3")
    s3.create_bucket(Bucket="churn-echo")
    store = S3ObjectStore(s3)
    registered = SageMakerRegistry(sagemaker, store, settings.base_uri).register(
        registration_request(settings, "20261126T020000Z"))

    # the review's answer, as the HITL task hands it on, recorded by the review DAG's own task
    outlets = OutletEventAccessors()
    (decision,) = record_review_answers(
        evidence=[registration_evidence(settings, registered, passing_decision(), "scheduled__x", "20261126T020000Z")],
        answers=[{"chosen_options": ["Approve"], "params_input": {"comment": "beats the champion"},
                  "responded_at": "2026-11-26T09:00:00+00:00", "responded_by_user": {"id": "ana", "name": "Ana"}}],
        outlet_events=outlets, dag_run=SimpleNamespace(dag_id="customer_churn_review", run_id="review-1"))
    package = sagemaker.describe_model_package(ModelPackageName=registered.identifier)
    assert package["ModelApprovalStatus"] == "Approved"
    assert re.fullmatch(r"Approved by Ana at 20\d\d-\d\d-\d\dT[\d:]+\+00:00 via Airflow review "
                        r"\(customer_churn_review run review-1\): beats the champion", package["ApprovalDescription"])
    assert package["CustomerMetadataProperties"]["run_key"] == "20261126T020000Z", "kept through the update"
    (emitted,) = outlets[AssetAlias(name="churn_champion_approvals")].asset_alias_events
    assert emitted.dest_asset_key.name == "churn_champion" and emitted.extra["version"] == decision["version"]

    # Airflow's event scored the new champion; SageMaker's own event of the same change (moto emits none:
    # sent here as SageMaker sends it) reaches the watcher, and the scoring run it starts stops at once
    champion = SageMakerRegistry(sagemaker, store, settings.base_uri).champion(GROUP)
    assert champion is not None and champion.identifier == registered.identifier
    record_scored(settings, store, champion, "asset_triggered__first", ScoringLayout(settings.base_uri,
                                                                                     "20261126T090000Z"))
    events.put_events(Entries=[state_change(GROUP, "Approved", registered.version)])
    assert first_watched_event(queue) is not None
    echo = SimpleNamespace(run_type="asset_triggered", run_id="asset_triggered__echo",
                           run_after=datetime(2026, 11, 26, 9, 5, tzinfo=UTC))
    with pytest.raises(AirflowSkipException, match=r"already scored by run asset_triggered__first; this approval "
                                                   r"event starts nothing"):
        stage_scoring_inputs(params={"input_uri": settings.default_input_uri}, ti=None, dag_run=echo)
    scoring = s3.list_objects_v2(Bucket="churn-echo", Prefix=f"{settings.prefix}/scoring/").get("Contents", [])
    assert [item["Key"] for item in scoring] == [], "the echo staged nothing for a job"
