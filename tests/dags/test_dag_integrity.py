"""The DAG file parses cleanly, cheaply and identically on both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT

DAG_FILE = PROJECT / "dags" / "customer_churn_pipeline.py"
HEAVY = ("pandas", "sklearn", "sagemaker", "mlflow", "numpy", "scipy", "matplotlib")
EDGES = {
    ("extract_customers", "stage_inputs"), ("stage_inputs", "preprocess"), ("stage_inputs", "find_champion"),
    ("find_champion", "evaluate"), ("preprocess", "train"), ("train", "evaluate"), ("evaluate", "check_accuracy"),
    ("check_accuracy", "register_model"), ("check_accuracy", "notify_failure"),
}
ROLE = "arn:aws:iam::123456789012:role/churn"


def load_dag(monkeypatch: pytest.MonkeyPatch, **environment: str):
    from airflow.dag_processing.dagbag import DagBag

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.dags["customer_churn_pipeline"]


@pytest.fixture(params=["local", "sagemaker"])
def dag(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    return load_dag(monkeypatch, CHURN_BACKEND=request.param, CHURN_ROLE_ARN=ROLE)


def test_importing_the_dag_file_in_a_fresh_interpreter_loads_nothing_heavy() -> None:
    probe = (
        "import importlib.util, json, sys;"
        f"spec = importlib.util.spec_from_file_location('dag_module', {str(DAG_FILE)!r});"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module);"
        f"print(json.dumps([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]))"
    )
    for backend in ("local", "sagemaker"):
        env = {**os.environ, "CHURN_BACKEND": backend, "CHURN_ROLE_ARN": ROLE}
        completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                                   timeout=120)
        assert completed.returncode == 0, completed.stderr
        assert json.loads(completed.stdout.strip().splitlines()[-1]) == [], backend


def test_identity_schedule_and_documentation(dag) -> None:
    from airflow.sdk import CronTriggerTimetable

    assert dag.dag_id == "customer_churn_pipeline" == DAG_FILE.stem
    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert dag.timetable.expression == "0 2 * * *"
    assert str(dag.timetable.timezone) == "UTC"
    assert dag.catchup is False
    assert "register_model" in dag.doc_md and dag.tags


def test_tasks_and_edges_are_the_designed_flow(dag) -> None:
    assert set(dag.task_ids) == {"extract_customers", "stage_inputs", "find_champion", "preprocess", "train",
                                 "evaluate", "check_accuracy", "register_model", "notify_failure"}
    edges = {(task.task_id, downstream) for task in dag.tasks for downstream in task.downstream_task_ids}
    assert edges == EDGES


def test_gate_is_a_branch_and_the_failure_path_always_runs(dag) -> None:
    from airflow.providers.standard.operators.python import BranchPythonOperator

    assert isinstance(dag.get_task("check_accuracy"), BranchPythonOperator)
    assert dag.get_task("notify_failure").trigger_rule == "all_done"
    assert dag.get_task("register_model").trigger_rule == "all_success"


def test_the_extract_runs_first_and_staging_runs_also_when_it_is_skipped(dag) -> None:
    from churn_pipeline.operators.extraction import ExtractCustomersOperator

    assert isinstance(dag.get_task("extract_customers"), ExtractCustomersOperator)
    assert dag.get_task("extract_customers").upstream_task_ids == set()
    assert dag.get_task("stage_inputs").trigger_rule == "none_failed"  # skipped: no source; failed: stop


def test_every_task_retries(dag) -> None:
    assert dag.default_args["retries"] >= 1
    assert all(task.retries >= 1 for task in dag.tasks)


def test_nothing_can_hang_forever(dag) -> None:
    assert dag.start_date.tzinfo is not None
    assert dag.dagrun_timeout is not None and dag.dagrun_timeout.total_seconds() < 24 * 3600
    for task in dag.tasks:
        assert task.execution_timeout is not None, task.task_id
    # a job task's timeout lies beyond the wait for its job, so that the wait's own message comes first
    settings_wait = 3600 + 1800
    for task_id in ("preprocess", "train", "evaluate"):
        assert dag.get_task(task_id).execution_timeout.total_seconds() > settings_wait


def test_a_failure_of_registration_itself_reaches_the_team(dag) -> None:
    from churn_pipeline.tasks.registration import notify_registration_failed

    assert notify_registration_failed in dag.get_task("register_model").on_failure_callback


def test_params_have_defaults_and_validation(dag) -> None:
    params = dag.params
    assert params["accuracy_threshold"] == 0.75
    assert params["input_uri"].endswith("/input-data/customer_data.csv")
    # empty (null): CHURN_SOURCE_QUERY; null, not "", so that the UI's trigger form accepts it unset
    assert params["source_query"] is None and "null" in dag.params.get_param("source_query").schema["type"]
    assert params["schema_uri"] == str(PROJECT / "include" / "config" / "schema.json")
    spec = dag.params.get_param("accuracy_threshold").schema
    assert (spec["minimum"], spec["maximum"]) == (0, 1)


def test_sagemaker_backend_uses_the_provider_operators(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerProcessingOperator, SageMakerTrainingOperator

    dag = load_dag(monkeypatch, CHURN_BACKEND="sagemaker", CHURN_ROLE_ARN=ROLE)
    assert isinstance(dag.get_task("preprocess"), SageMakerProcessingOperator)
    assert isinstance(dag.get_task("train"), SageMakerTrainingOperator)
    assert isinstance(dag.get_task("evaluate"), SageMakerProcessingOperator)


def test_bad_settings_fail_the_import_with_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("CHURN_BACKEND", "cloud")
    bag = DagBag(dag_folder=str(DAG_FILE))
    (error,) = bag.import_errors.values()
    assert "CHURN_BACKEND must be one of local, sagemaker" in error
