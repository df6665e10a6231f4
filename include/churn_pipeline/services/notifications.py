"""Tell the team once: at most one message per run and reason, whatever retries happen.

A marker object under the run's prefix records what was sent; it is written before sending and
removed if sending fails, so a retry sends again only when nothing went out. The channel is SNS
(``sagemaker`` backend) or a JSON-lines outbox at ``<local root>/notifications.jsonl`` (local).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from churn_pipeline.services.locks import file_lock
from churn_pipeline.services.objectstore import ObjectStore, atomic_write


@dataclass(frozen=True)
class Notification:
    reason: str
    subject: str
    message: str
    run_id: str
    run_key: str
    accuracy: float | None = None
    threshold: float | None = None
    evaluation_uri: str | None = None
    failed_tasks: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # every reason the gate gave, when it decided
    report_uri: str | None = None  # where the run's report is, when it has one
    champion: str | None = None  # the champion compared with (identifier), when there was one
    drifted_features: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failed_tasks": list(self.failed_tasks), "reasons": list(self.reasons),
                "drifted_features": list(self.drifted_features)}


class NotificationChannel(Protocol):
    def send(self, notification: Notification) -> str:
        """Deliver the message; returns where it went, for the log."""


class LocalOutbox:
    """Appends each notification as one JSON line; the file is rewritten atomically under a lock."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def send(self, notification: Notification) -> str:
        with file_lock(self.path.with_name(self.path.name + ".lock")):
            existing = self.path.read_bytes() if self.path.is_file() else b""
            line = json.dumps(notification.to_dict(), sort_keys=True).encode() + b"\n"
            atomic_write(self.path, existing + line)
        return f"appended to {self.path}"


class SnsChannel:
    def __init__(self, client: Any, topic_arn: str):
        self.client = client
        self.topic_arn = topic_arn

    def send(self, notification: Notification) -> str:
        response = self.client.publish(
            TopicArn=self.topic_arn,
            Subject=notification.subject[:100],
            Message=json.dumps(notification.to_dict(), indent=2, sort_keys=True),
            MessageAttributes={"reason": {"DataType": "String", "StringValue": notification.reason}},
        )
        return f"published to {self.topic_arn} as message {response['MessageId']}"


def notify_once(notification: Notification, channel: NotificationChannel, store: ObjectStore, marker_uri: str,
                log: Callable[[str], None] = print) -> bool:
    """Send unless this run already sent this reason; True when a message went out now."""
    if store.exists(marker_uri):
        log(f"the team was already notified for run {notification.run_key} ({notification.reason}); not sending again")
        return False
    store.write_bytes(marker_uri, json.dumps(notification.to_dict(), sort_keys=True).encode())
    try:
        where = channel.send(notification)
    except BaseException:
        store.delete(marker_uri)
        raise
    log(f"notified the team ({notification.reason}): {where}")
    return True
