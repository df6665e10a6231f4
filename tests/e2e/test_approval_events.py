"""On AWS a person approves in SageMaker; the approval must still schedule scoring. The shipped
EventBridge rule sends the group's "approved" state changes (and nothing else) to the approvals
queue, and the trigger the champion asset's watcher runs turns a message there into an event.
Checked against moto's EventBridge and SQS, with the provider's own trigger."""

from __future__ import annotations

import asyncio
import json

import boto3
import pytest

from churn_pipeline.domain.settings import PROJECT_DIR, load_settings
from churn_pipeline.operators.assets import champion_asset

pytestmark = pytest.mark.e2e

RULE = PROJECT_DIR / "deploy" / "eventbridge" / "champion-approved-rule.json"
GROUP = "customer-churn"


def state_change(group: str, status: str, version: int) -> dict:
    return {"Source": "aws.sagemaker", "DetailType": "SageMaker Model Package State Change",
            "Detail": json.dumps({"ModelPackageGroupName": group, "ModelApprovalStatus": status,
                                  "ModelPackageVersion": version})}


def test_an_approval_in_sagemaker_reaches_the_champion_assets_watcher(moto_server, monkeypatch) -> None:
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
    events.put_events(Entries=[state_change(GROUP, "Rejected", 2), state_change("another-group", "Approved", 9),
                               state_change(GROUP, "Approved", 3)])

    settings = load_settings({"CHURN_BACKEND": "sagemaker", "CHURN_APPROVAL_QUEUE_URL": queue,
                              "CHURN_REGION": "us-east-1"})
    (watcher,) = champion_asset(settings).watchers
    watcher.trigger.waiter_delay = 1

    async def first_event():
        async for event in watcher.trigger.run():
            return event
        return None

    event = asyncio.run(asyncio.wait_for(first_event(), timeout=60))

    (message,) = event.payload["message_batch"]  # only the group's approval got through the rule
    assert json.loads(message["Body"])["detail"] == {"ModelPackageGroupName": GROUP, "ModelApprovalStatus": "Approved",
                                                     "ModelPackageVersion": 3}
    assert sqs.receive_message(QueueUrl=queue).get("Messages") is None  # consumed once
