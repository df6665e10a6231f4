"""A run's summary: what the last task logs and ``cli summary`` prints, from the run's own files.

It says where the customers came from, what the model scored, what the gate decided and why, which
version was registered or where the run failed, what the team was told and where the report is; a
part the run never reached is said, not guessed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.report.summary import FAILED, REGISTERED, RunOutcome, shown_by, summary_lines, write_outcome
from churn_pipeline.services.notifications import Notification
from churn_pipeline.services.objectstore import LocalObjectStore
from tests.builders import passing_decision

KEY = "20261126T020000Z"


@pytest.fixture()
def run(tmp_path: Path) -> tuple[LocalObjectStore, RunLayout]:
    return LocalObjectStore(tmp_path), RunLayout("s3://local/churn", KEY)


def write_evaluated_run(store: LocalObjectStore, layout: RunLayout) -> None:
    store.write_bytes(f"{layout.preprocessing_uri('quality')}/data_quality.json",
                      json.dumps({"rows_read": 10_100, "rows_used": 10_000}).encode())
    store.write_bytes(layout.evaluation_file_uri, json.dumps({
        "metrics": {"accuracy": 0.8123, "roc_auc": 0.8601}, "baseline": {"majority_class_accuracy": 0.7204},
        "champion": None}).encode())
    decision = passing_decision(details=("accuracy 0.8123 >= threshold 0.7500", "no approved champion yet"))
    store.write_bytes(layout.decision_file_uri, json.dumps(decision.to_xcom()).encode())
    store.write_bytes(layout.report_file_uri, b"<!DOCTYPE html>")


def test_a_registered_run_says_what_it_read_scored_decided_and_registered(run) -> None:
    store, layout = run
    write_evaluated_run(store, layout)
    outcome = RunOutcome(REGISTERED, data_source="/data/customers.csv", group="customer-churn", version=3,
                         identifier="models:/customer-churn/3", approval_status="PendingManualApproval")
    write_outcome(store, layout, outcome)

    lines = summary_lines(store, layout, shown_by(store))

    assert lines[0] == f"run {KEY}"
    assert f"  artefacts     {store.path_for(layout.run_uri)}" in lines
    assert "  data source   /data/customers.csv" in lines
    assert "  customers     10100 rows read, 10000 used" in lines
    assert "  test metrics  accuracy 0.8123  roc_auc 0.8601" in lines
    assert "  gate          passed" in lines and "                - no approved champion yet" in lines
    assert ("  registered    customer-churn version 3 (PendingManualApproval): models:/customer-churn/3"
            in lines)
    assert f"  report        {store.path_for(layout.report_file_uri)}" in lines
    assert not any("failed" in line or "outcome" in line for line in lines)


def test_a_run_that_failed_before_the_gate_says_where_and_why_not_that_the_gate_refused(run) -> None:
    store, layout = run
    notification = Notification(reason="pipeline_failed", subject="Churn pipeline failed at stage_inputs",
                                message="m", run_id="r", run_key=KEY, failed_tasks=("stage_inputs",))
    store.write_bytes(layout.notification_marker_uri("pipeline_failed"), json.dumps(notification.to_dict()).encode())
    write_outcome(store, layout, RunOutcome(FAILED, data_source="/data/x.csv", failed={
        "stage_inputs": "input_uri: /data/x.csv: missing column 'CustomerID' (the file has 'customerID')"}))

    lines = summary_lines(store, layout, shown_by(store))

    assert ("  failed at     stage_inputs: input_uri: /data/x.csv: missing column 'CustomerID' "
            "(the file has 'customerID')") in lines
    assert "  notified      pipeline_failed: Churn pipeline failed at stage_inputs" in lines
    assert not any(line.startswith(("  gate", "  test metrics", "  report", "  registered")) for line in lines)


def test_a_run_whose_last_task_has_not_run_says_so(run) -> None:
    store, layout = run
    write_evaluated_run(store, layout)
    lines = summary_lines(store, layout)
    assert lines[-2].startswith("  outcome       none recorded: the run is still going")
    assert lines[-1] == f"  report        {layout.report_file_uri}"  # shown as the URI by default


def test_the_outcome_survives_its_file() -> None:
    outcome = RunOutcome(FAILED, failed={"train": "AlgorithmError: boom"})
    assert RunOutcome.from_json(outcome.to_json()) == outcome


def test_the_summary_says_what_the_campaign_earns_and_what_the_run_cost(run) -> None:
    store, layout = run
    evaluation = {"metrics": {"accuracy": 0.8013}, "baseline": {"majority_class_accuracy": 0.7346}, "champion": None,
                  "ranking": {"top_decile_lift": 2.9391}, "calibration": {"applied": False},
                  "economics": {"threshold": 0.28, "chosen_on": "validation",
                                "at_threshold": {"threshold": 0.28, "profit": 91200.0, "cost": 95800.0},
                                "at_default": {"threshold": 0.5, "profit": 68500.0, "cost": 118500.0}}}
    store.write_bytes(layout.evaluation_file_uri, json.dumps(evaluation).encode())
    decision = passing_decision(run_cost={"total": 0.0213, "jobs": {}})
    store.write_bytes(layout.decision_file_uri, json.dumps(decision.to_xcom()).encode())

    lines = summary_lines(store, layout)

    assert ("  campaign      contact above 0.28 (chosen on validation): cost 95,800 on the test split against "
            "118,500 at 0.5 (profit 91,200 against 68,500)") in lines
    assert "  ranking       top-decile lift 2.94, calibrated: no" in lines
    assert "  cost          0.0213 for the three jobs (at CHURN_INSTANCE_PRICES)" in lines
