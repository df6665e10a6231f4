"""A registered version's review: the evidence a person reads, and what each answer writes to the local
registry (the MLflow tags and the champion alias) and emits (one champion event, for approvals only)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk import AssetAlias
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from churn_pipeline.domain.payloads import RegisteredVersion
from churn_pipeline.domain.review import (
    EvidenceError,
    checked_evidence,
    decision_description,
    review_body,
    review_link,
)
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.services.registry import MlflowRegistry
from churn_pipeline.tasks.review import record_review_answers, registration_evidence
from tests.builders import champion_block, passing_decision, registration_request

RUN = SimpleNamespace(dag_id="customer_churn_review", run_id="asset_triggered__1")


def evidence(version: int = 2, **decision) -> dict:
    settings = load_settings({})
    return registration_evidence(settings, RegisteredVersion(version, f"models:/customer-churn/{version}",
                                                             "PendingManualApproval", True),
                                 passing_decision(**decision), "scheduled__20261126T020000+00:00", "20261126T020000Z")


def test_the_body_shows_the_gate_the_metrics_beside_the_champions_drift_business_and_the_report() -> None:
    body = review_body(evidence(champion=champion_block(version=1, accuracy=0.79, roc_auc=0.85),
                                drifted_features=("Monthly_Charges",), details=("accuracy 0.8100 >= threshold 0.7500",
                                                                                 "roc_auc 0.8600 >= 0.8500")),
                       "file:///store/runs/20261126T020000Z/report/report.html")
    # as Markdown source: the escapes render as the characters themselves
    assert "**Gate: passed**: accuracy 0.8100 \\>= threshold 0.7500" in body
    assert "- roc\\_auc 0.8600 \\>= 0.8500" in body
    assert "| metric | this version | champion (version 1) |" in body
    assert "| accuracy | 0.8100 | 0.7900 |" in body
    assert "**Drift**: drifted from the baseline in Monthly\\_Charges" in body
    assert "**Report**: <file:///store/runs/20261126T020000Z/report/report.html>" in body
    assert "\n\n**Business**: " in body, "its own paragraph"


def test_words_from_data_cannot_become_links_tables_or_templates() -> None:
    body = review_body(evidence(drifted_features=("[click](http://evil)", "{{ ti.xcom_pull() }}", "a|b")), None)
    assert "](" not in body.replace("\\](", "") and "{{" not in body and "a\\|b" in body
    assert "**Report**: none was written" in body


def test_an_event_without_the_evidence_is_refused_in_one_line() -> None:
    with pytest.raises(EvidenceError, match=r"^the churn_model_version event carries no identifier, decision; was "
                                            r"it emitted by register_model\? \(its extra has: group, version\)$"):
        checked_evidence({"group": "g", "version": 1})


def test_the_description_says_who_when_how_and_why_within_sagemakers_limit() -> None:
    said = decision_description("Approved", "ana", "2026-11-26T09:00:00+00:00", "cli", "fine\nby me")
    assert said == "Approved by ana at 2026-11-26T09:00:00+00:00 via cli: fine by me"
    assert len(decision_description("Rejected", "ana", "t", "cli", "x" * 5000)) == 1024


def test_the_link_opens_the_question_of_the_mapped_task_instance() -> None:
    assert review_link("http://h:8080/", "d", "asset_triggered__2026-11-26T09:00:00+00:00_x", "t", 1) == \
        "http://h:8080/dags/d/runs/asset_triggered__2026-11-26T09%3A00%3A00%2B00%3A00_x/tasks/t/mapped/1/required_actions"
    assert review_link("http://h", "d", "r", "t").endswith("/runs/r/tasks/t/required_actions")


@pytest.fixture()
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowRegistry:
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    registry = MlflowRegistry(tmp_path)
    for key in ("20261126T020000Z", "20261127T020000Z"):
        registry.register(registration_request(load_settings(), key))
    return registry


def answer(option: str, comment: str = "", who: str | None = "ana") -> dict:
    return {"chosen_options": [option], "params_input": {"comment": comment}, "responded_at": "2026-11-27T09:00:00",
            "responded_by_user": {"id": who, "name": who} if who else None}


def test_an_approval_moves_the_champion_and_emits_one_event(registry: MlflowRegistry) -> None:
    outlets = OutletEventAccessors()
    record_review_answers(evidence=[evidence(1), evidence(2)], answers=[answer("Approve", "good"), answer("Approve")],
                          outlet_events=outlets, dag_run=RUN)
    versions = registry.versions("customer-churn")
    assert [v["tags"]["approval_status"] for v in versions] == ["Approved", "Approved"]
    assert versions[1]["aliases"] == ["champion"]
    assert versions[0]["tags"]["approval_description"].endswith("via Airflow review (customer_churn_review run "
                                                                 "asset_triggered__1): good")
    (event,) = outlets[AssetAlias(name="churn_champion_approvals")].asset_alias_events
    assert event.dest_asset_key.name == "churn_champion" and event.extra["version"] == 2


def test_a_rejection_or_no_answer_moves_nothing_and_emits_nothing(registry: MlflowRegistry) -> None:
    outlets = OutletEventAccessors()
    record_review_answers(evidence=[evidence(1), evidence(2)], answers=[answer("Reject", "worse"),
                                                                        answer("Reject", who=None)],
                          outlet_events=outlets, dag_run=RUN)
    first, second = registry.versions("customer-churn")
    assert first["tags"]["approval_status"] == second["tags"]["approval_status"] == "Rejected"
    assert first["aliases"] == second["aliases"] == []
    assert second["tags"]["approval_description"].startswith("Rejected by nobody at ")
    assert second["tags"]["approval_description"].endswith(": no answer within 7 day(s): rejected automatically")
    assert outlets[AssetAlias(name="churn_champion_approvals")].asset_alias_events == []


def test_a_question_without_its_answer_fails_saying_what_to_clear(registry: MlflowRegistry) -> None:
    with pytest.raises(AirflowFailException, match=r"2 question\(s\) but 1 answer\(s\): a review_version task did not"):
        record_review_answers(evidence=[evidence(1), evidence(2)], answers=[answer("Approve")],
                              outlet_events=OutletEventAccessors(), dag_run=RUN)
    assert [v["tags"]["approval_status"] for v in registry.versions("customer-churn")] == ["PendingManualApproval"] * 2


@pytest.mark.parametrize(("status", "events"), [("Rejected", 0), ("Approved", 1)])
def test_the_approval_dag_emits_the_champion_event_for_an_approval_only(registry: MlflowRegistry, status: str,
                                                                        events: int) -> None:
    from churn_pipeline.tasks.approval import approve_version

    outlets = OutletEventAccessors()
    approve_version(params={"version": 1, "status": status}, outlet_events=outlets,
                    dag_run=SimpleNamespace(run_id="manual__1", triggering_user_name="ana"))
    assert len(outlets[AssetAlias(name="churn_champion_approvals")].asset_alias_events) == events
    (first, _) = registry.versions("customer-churn")
    assert first["tags"]["approval_status"] == status
    assert first["tags"]["approval_description"].startswith(f"{status} by ana at ")


class TaskInstance:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def test_a_version_whose_registration_event_airflow_lost_is_asked_by_the_next_run_and_only_once(
        registry: MlflowRegistry) -> None:
    """Two versions registered within one scheduler loop: Airflow's asset queue can start one run with
    the first event and drop the second. The run asks about both; another run asks about neither again."""
    import json

    from airflow.sdk import Asset
    from airflow.sdk.exceptions import AirflowSkipException

    from churn_pipeline.domain.layout import RunLayout
    from churn_pipeline.services.objectstore import LocalObjectStore
    from churn_pipeline.tasks.review import questions_for_review

    settings = load_settings()
    store = LocalObjectStore(settings.local_root)
    lost = passing_decision(detail="accuracy 0.8300 >= threshold 0.7500")
    store.write_bytes(RunLayout(settings.base_uri, "20261127T020000Z").decision_file_uri,
                      json.dumps(lost.to_xcom()).encode())
    events = {Asset(name="churn_model_version"): [SimpleNamespace(extra=evidence(1))]}
    ti = TaskInstance()
    questions = questions_for_review(triggering_asset_events=events, dag_run=RUN, ti=ti)
    assert [question["subject"] for question in questions] == ["Approve customer-churn version 1?",
                                                               "Approve customer-churn version 2?"]
    assert "accuracy 0.8300 \\>= threshold 0.7500" in questions[1]["body"], "the evidence its run kept"
    assert [item["version"] for item in ti.pushed["evidence"]] == [1, 2]
    links = [note["review_url"] for note in map(json.loads, (settings.local_root / "notifications.jsonl")
                                                 .read_text().splitlines())]
    assert [link.rsplit("/", 2)[-2] for link in links] == ["0", "1"], "each question's own mapped index"
    # a retry of the same run asks the same again; another run (the lost event after all) asks nothing
    assert len(questions_for_review(triggering_asset_events=events, dag_run=RUN, ti=TaskInstance())) == 2
    later = SimpleNamespace(dag_id=RUN.dag_id, run_id="asset_triggered__2")
    with pytest.raises(AirflowSkipException, match="asked in another run"):
        questions_for_review(triggering_asset_events={Asset(name="churn_model_version"): [
            SimpleNamespace(extra=evidence(2))]}, dag_run=later, ti=TaskInstance())
