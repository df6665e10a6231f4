"""The scoring and approval DAG files parse cleanly and cheaply on both backends; scoring runs daily at
06:00 and whenever the champion asset gets an event, which approval emits (locally) or an SQS queue
fed by SageMaker's approvals does (on AWS); the training DAG announces each registered version."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT
from tests.dags.test_dag_integrity import HEAVY, ROLE

SCORING_FILE = PROJECT / "dags" / "customer_churn_scoring.py"
APPROVAL_FILE = PROJECT / "dags" / "customer_churn_approval.py"
REVIEW_FILE = PROJECT / "dags" / "customer_churn_review.py"
OUTCOMES_FILE = PROJECT / "dags" / "customer_churn_outcomes.py"
QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/churn-approvals"


def load(monkeypatch: pytest.MonkeyPatch, dag_file, dag_id: str, **environment: str):
    from airflow.dag_processing.dagbag import DagBag

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    bag = DagBag(dag_folder=str(dag_file))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


@pytest.mark.parametrize("dag_file", [SCORING_FILE, APPROVAL_FILE, REVIEW_FILE, OUTCOMES_FILE],
                         ids=["scoring", "approval", "review", "outcomes"])
def test_importing_loads_nothing_heavy(dag_file) -> None:
    probe = (
        "import importlib.util, json, sys;"
        f"spec = importlib.util.spec_from_file_location('dag_module', {str(dag_file)!r});"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module);"
        f"print(json.dumps([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]))"
    )
    for environment in ({"CHURN_BACKEND": "local"},
                        {"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": ROLE, "CHURN_APPROVAL_QUEUE_URL": QUEUE}):
        completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                   env={**os.environ, **environment}, timeout=120)
        assert completed.returncode == 0, completed.stderr
        assert json.loads(completed.stdout.strip().splitlines()[-1]) == [], environment


@pytest.mark.parametrize("backend", ["local", "sagemaker"])
def test_scoring_runs_daily_and_when_the_champion_changes(monkeypatch, backend: str) -> None:
    from airflow.sdk import AssetOrTimeSchedule

    dag = load(monkeypatch, SCORING_FILE, "customer_churn_scoring", CHURN_BACKEND=backend, CHURN_ROLE_ARN=ROLE)
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert dag.timetable.timetable.expression == "0 6 * * *"
    assert [asset.name for asset in dag.timetable.asset_condition.objects] == ["churn_champion"]
    assert [task.task_id for task in dag.topological_sort()] == ["stage_customers", "score_customers",
                                                                 "publish_scores", "notify_failure"]
    assert dag.get_task("notify_failure").trigger_rule == "one_failed"
    assert all(task.execution_timeout for task in dag.tasks) and dag.dagrun_timeout
    assert dag.get_task("stage_customers").retries >= 1 and dag.params["input_uri"]


def test_on_aws_the_champion_asset_watches_the_approvals_queue(monkeypatch) -> None:
    from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

    dag = load(monkeypatch, SCORING_FILE, "customer_churn_scoring", CHURN_BACKEND="sagemaker", CHURN_ROLE_ARN=ROLE,
               CHURN_APPROVAL_QUEUE_URL=QUEUE, CHURN_REGION="eu-west-1")
    (asset,) = dag.timetable.asset_condition.objects
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, SqsSensorTrigger)
    assert (watcher.trigger.sqs_queue, watcher.trigger.region_name) == (QUEUE, "eu-west-1")


def test_approval_emits_the_champion_asset_and_training_announces_versions(monkeypatch) -> None:
    approval = load(monkeypatch, APPROVAL_FILE, "customer_churn_approval")
    assert type(approval.timetable).__name__ == "NullTimetable"  # triggered by a person, never scheduled
    # through the alias only an approval adds to: a rejection emits no champion event, so schedules no scoring
    assert [asset.name for asset in approval.get_task("approve_version").outlets] == ["churn_champion_approvals"]
    training = load(monkeypatch, PROJECT / "dags" / "customer_churn_pipeline.py", "customer_churn_pipeline")
    assert [asset.name for asset in training.get_task("register_model").outlets] == ["churn_model_version"]


def test_each_registered_version_is_reviewed_in_its_own_dag_with_the_settings_timeout_and_approvers(
        monkeypatch) -> None:
    from airflow.providers.standard.operators.hitl import HITLOperator

    review = load(monkeypatch, REVIEW_FILE, "customer_churn_review", CHURN_REVIEW_APPROVERS="ana, ben",
                  CHURN_REVIEW_TIMEOUT_DAYS="0.5")
    assert [asset.name for asset in review.timetable.asset_condition.objects] == ["churn_model_version"]
    assert [task.task_id for task in review.topological_sort()] == ["prepare_review", "review_version",
                                                                    "record_reviews"]
    question = review.get_task("review_version")
    assert question.operator_class is HITLOperator or issubclass(question.operator_class, HITLOperator)
    partial = question.partial_kwargs
    assert partial["options"] == ["Approve", "Reject"] and partial["defaults"] == ["Reject"]
    assert partial["response_timeout"].total_seconds() == 12 * 3600
    assert partial["assigned_users"] == [{"id": "ana", "name": "ana"}, {"id": "ben", "name": "ben"}]
    assert partial["retries"] >= 1, "a retry for Airflow's stale-success race (apache/airflow#71580)"
    assert [alias.name for alias in review.get_task("record_reviews").outlets] == ["churn_champion_approvals"]
    unassigned = load(monkeypatch, REVIEW_FILE, "customer_churn_review", CHURN_REVIEW_APPROVERS="")
    assert unassigned.get_task("review_version").partial_kwargs["assigned_users"] is None


def test_before_airflow_3_1_the_review_file_defines_no_dag() -> None:
    """MWAA's Airflow 3.0.6 has no human-in-the-loop operators: the standard provider's module raises
    on import there, as it does here when told the Airflow is older."""
    probe = (
        "import importlib.util, json;"
        "import airflow.providers.standard.version_compat as installed; installed.AIRFLOW_V_3_1_PLUS = False;"
        "from airflow.sdk import DAG;"
        f"spec = importlib.util.spec_from_file_location('dag_module', {str(REVIEW_FILE)!r});"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module);"
        "print(json.dumps([name for name, value in vars(module).items() if isinstance(value, DAG)]))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("backend", ["local", "sagemaker"])
def test_outcomes_run_daily_after_scoring_and_only_their_last_task_asks_for_retraining(monkeypatch, backend) -> None:
    from airflow.sdk import CronTriggerTimetable

    dag = load(monkeypatch, OUTCOMES_FILE, "customer_churn_outcomes", CHURN_BACKEND=backend, CHURN_ROLE_ARN=ROLE)
    assert isinstance(dag.timetable, CronTriggerTimetable) and dag.timetable.expression == "0 7 * * *"
    assert [task.task_id for task in dag.topological_sort()] == ["extract_labels", "measure_outcomes",
                                                                 "judge_outcomes", "request_retraining"]
    assert dag.get_task("measure_outcomes").trigger_rule == "none_failed"  # also when no source was extracted
    assert {task.task_id: [asset.name for asset in task.outlets] for task in dag.tasks} == {
        "extract_labels": [], "measure_outcomes": [], "judge_outcomes": [], "request_retraining": ["churn_retrain"]}
    assert dag.max_active_runs == 1 and set(dag.params) == {"labels_uri", "source_query"}
