"""Side effects happen once: one notification per run and reason, one registry version per run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.services.notifications import LocalOutbox, Notification, notify_once
from churn_pipeline.services.objectstore import LocalObjectStore
from churn_pipeline.services.registry import APPROVED, PENDING, MlflowRegistry
from tests.builders import registration_request

KEY = "20261126T020000Z"


def notification(reason: str = "model_rejected") -> Notification:
    return Notification(reason=reason, subject="s", message="m", run_id="r", run_key=KEY, accuracy=0.7,
                        threshold=0.75, evaluation_uri="s3://b/e.json")


def test_a_notification_is_sent_at_most_once_per_run_and_reason(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    outbox = LocalOutbox(tmp_path / "notifications.jsonl")
    layout = RunLayout("s3://bucket/p", KEY)
    for _ in range(3):
        notify_once(notification(), outbox, store, layout.notification_marker_uri("model_rejected"))
    notify_once(notification("pipeline_failed"), outbox, store, layout.notification_marker_uri("pipeline_failed"))
    sent = [json.loads(line) for line in (tmp_path / "notifications.jsonl").read_text().splitlines()]
    assert [item["reason"] for item in sent] == ["model_rejected", "pipeline_failed"]
    assert sent[0]["accuracy"] == 0.7 and sent[0]["threshold"] == 0.75 and sent[0]["run_id"] == "r"


def test_a_failed_send_can_be_retried(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    marker = RunLayout("s3://bucket/p", KEY).notification_marker_uri("model_rejected")

    class Broken:
        def send(self, _):
            raise ConnectionError("SNS unreachable")

    with pytest.raises(ConnectionError):
        notify_once(notification(), Broken(), store, marker)
    assert not store.exists(marker)
    assert notify_once(notification(), LocalOutbox(tmp_path / "out.jsonl"), store, marker)


def registration(root: Path, key: str) -> dict:
    return registration_request(load_settings({"CHURN_LOCAL_ROOT": str(root)}), key)


def test_mlflow_registry_registers_once_per_run_with_metrics_and_pending_status(tmp_path: Path) -> None:
    registry = MlflowRegistry(tmp_path)
    first = registry.register(registration(tmp_path, KEY))
    again = registry.register(registration(tmp_path, KEY))
    second = registry.register(registration(tmp_path, "20261127T020000Z"))

    assert (first.version, first.created, first.approval_status) == (1, True, PENDING)
    assert (again.version, again.created) == (1, False)
    assert second.version == 2
    versions = registry.versions("customer-churn")
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["tags"]["accuracy"] == "0.810000"
    assert versions[0]["tags"]["evaluation_uri"].endswith(f"/runs/{KEY}/evaluation/evaluation.json")

    registry.set_approval("customer-churn", 1, APPROVED)
    assert registry.versions("customer-churn")[0]["tags"]["approval_status"] == APPROVED
    with pytest.raises(ValueError, match="approval status"):
        registry.set_approval("customer-churn", 1, "Maybe")
