"""The team hears of every run, whatever the run or its data did to the message: a run prefix that
cannot be written, a marker that cannot be written, a reason of hundreds of kilobytes, control
characters in names, and an SNS that refuses the message."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.services.notifications import (
    MESSAGE_CHARS,
    SNS_MESSAGE_LIMIT,
    LocalOutbox,
    Notification,
    SnsChannel,
    ascii_subject,
    fit_to_send,
    notify_once,
)
from churn_pipeline.services.objectstore import LocalObjectStore

KEY = "20261003T000000Z"
BASE = "s3://customer-churn-pipeline/churn-pipeline"


def failure(message: str = "m", subject: str = "Churn pipeline failed at stage_inputs") -> Notification:
    return Notification(reason="pipeline_failed", subject=subject, message=message, run_id="manual__1",
                        run_key=KEY, failed_tasks=("stage_inputs",))


def sent(outbox: Path) -> list[dict]:
    return [json.loads(line) for line in outbox.read_text().splitlines()]


def test_a_run_whose_prefix_is_not_a_folder_still_tells_the_team_once(tmp_path: Path) -> None:
    store, layout = LocalObjectStore(tmp_path), RunLayout(BASE, KEY)
    blocked = store.path_for(layout.run_uri)
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the run's folder must go")
    outbox = tmp_path / "notifications.jsonl"

    for _ in range(2):  # the task and its retry
        notify_once(failure(), LocalOutbox(outbox), store, layout.notification_marker_uri("pipeline_failed"))

    assert [item["reason"] for item in sent(outbox)] == ["pipeline_failed"]
    assert not layout.notification_marker_uri("pipeline_failed").startswith(layout.run_uri + "/")
    assert blocked.read_text() == "a file where the run's folder must go"


def test_a_marker_that_cannot_be_written_does_not_stop_the_message_and_the_log_says_it_may_repeat(
        tmp_path: Path) -> None:
    store, layout = LocalObjectStore(tmp_path), RunLayout(BASE, KEY)
    notifications = store.path_for(layout.notifications_uri).parent.parent
    notifications.parent.mkdir(parents=True)
    notifications.write_text("the marker's place is taken too")
    outbox, logged = tmp_path / "notifications.jsonl", []

    assert notify_once(failure(), LocalOutbox(outbox), store, layout.notification_marker_uri("pipeline_failed"),
                       logged.append)

    assert len(sent(outbox)) == 1
    assert any("sending anyway, so a retry of this task may send this message again" in line for line in logged)


def test_a_reason_of_hundreds_of_kilobytes_is_sent_as_its_head_and_where_the_rest_is(tmp_path: Path) -> None:
    reason = "stage_inputs: " + "".join(f"\n  - in/part-{i:04d}.csv: missing column 'Churn' (the file has "
                                         f"'Chrun')" for i in range(1000)) * 8
    assert len(reason) > 400_000
    outbox, logged = tmp_path / "out.jsonl", []

    notify_once(failure(reason), LocalOutbox(outbox), LocalObjectStore(tmp_path),
                RunLayout(BASE, KEY).notification_marker_uri("pipeline_failed"), logged.append)

    message = sent(outbox)[0]["message"]
    assert message.startswith("stage_inputs: \n  - in/part-0000.csv: missing column 'Churn'")
    assert len(message) < MESSAGE_CHARS + 200
    assert "more characters cut; the whole text is in the task log" in message
    assert any(reason in line for line in logged), "the task log holds the whole of it"


def test_control_and_bidi_characters_from_data_are_shown_escaped_and_the_subject_is_plain_ascii() -> None:
    hostile = failure(message="missing column 'Age\x1b[2K\r' \u202eevil",
                      subject="Churn drifted (Age\x1b[2K\r, \u00e9)")

    fitted = fit_to_send(hostile)

    assert "\x1b" not in fitted.message and "\u202e" not in fitted.message and "\r" not in fitted.message
    assert "'Age\\x1b[2K\\r' \\u202eevil" in fitted.message
    assert fitted.subject == "Churn drifted (Age\\x1b[2K\\r, ?)"
    assert all(" " <= character <= "~" for character in ascii_subject("\x1b" * 500 + "x" * 500))
    assert len(ascii_subject("x" * 500)) == 100


@mock_aws
def test_sns_accepts_every_message_fit_to_send_even_from_a_megabyte_of_text() -> None:
    client = boto3.client("sns", region_name="us-east-1")
    topic = client.create_topic(Name="churn")["TopicArn"]
    megabyte = failure(message="\u00e9\x1b" * 500_000, subject="x\x1b" * 200)

    with pytest.raises(client.exceptions.InvalidParameterException, match="too long"):  # what SNS says unfitted
        client.publish(TopicArn=topic, Message=megabyte.message * 2)
    where = SnsChannel(client, topic).send(fit_to_send(megabyte))

    assert where.startswith(f"published to {topic} as message ")
    assert len(json.dumps(fit_to_send(megabyte).to_dict(), ensure_ascii=False).encode()) < SNS_MESSAGE_LIMIT // 2


def test_a_message_sns_refuses_is_sent_again_without_its_details() -> None:
    client = boto3.client("sns", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    topic = "arn:aws:sns:us-east-1:123456789012:churn"
    with Stubber(client) as stub:
        stub.add_client_error("publish", service_error_code="InvalidParameter",
                              service_message="Invalid parameter: Message", http_status_code=400)
        stub.add_response("publish", {"MessageId": "m-2"},
                          {"TopicArn": topic, "Subject": "Churn pipeline failed at stage_inputs", "Message": ANY,
                           "MessageAttributes": ANY})
        where = SnsChannel(client, topic).send(fit_to_send(failure("details that SNS refused")))
        stub.assert_no_pending_responses()
    assert "message m-2, without details: SNS refused the full message (InvalidParameter" in where


def test_a_transient_sns_fault_is_raised_for_a_retry_not_turned_into_a_message_without_details() -> None:
    client = boto3.client("sns", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_client_error("publish", service_error_code="Throttled", http_status_code=400)
        with pytest.raises(client.exceptions.ClientError, match="Throttled"):
            SnsChannel(client, "arn:aws:sns:us-east-1:123456789012:churn").send(failure())


@mock_aws
def test_a_store_that_fails_on_its_first_write_still_ends_with_one_message_sent_and_recorded() -> None:
    from botocore.exceptions import ClientError

    from churn_pipeline.services.objectstore import S3ObjectStore

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="customer-churn-pipeline")
    failures = []

    def fail_first_put(**_: object) -> None:
        if not failures:
            failures.append("PutObject")
            raise ClientError({"Error": {"Code": "InternalError", "Message": "We encountered an internal error"}},
                              "PutObject")

    s3.meta.events.register("before-call.s3.PutObject", fail_first_put)
    sns = boto3.client("sns", region_name="us-east-1")
    topic = sns.create_topic(Name="churn")["TopicArn"]
    queue = boto3.client("sqs", region_name="us-east-1")
    queue_url = queue.create_queue(QueueName="team")["QueueUrl"]
    queue_arn = queue.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    store, marker = S3ObjectStore(s3), RunLayout(BASE, KEY).notification_marker_uri("pipeline_failed")

    for _ in range(2):  # the task, and a retry of it
        notify_once(failure(), SnsChannel(sns, topic), store, marker, lambda line: None)

    assert failures == ["PutObject"]
    received = queue.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 1, "one message: the marker was written once the store answered again"
    assert store.exists(marker)
