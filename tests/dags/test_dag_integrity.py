"""The DAG file parses cleanly, cheaply and identically on both backends."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import PROJECT

DAG_FILE = PROJECT / "dags" / "customer_churn_pipeline.py"
HEAVY = ("pandas", "sklearn", "sagemaker", "mlflow", "numpy", "scipy", "matplotlib")
# The design's flow (docs/design.md): the six task ids people and checks refer to, the tasks around
# them, and the order the mission runs them in.
FIXED_TASK_IDS = {"preprocess", "train", "evaluate", "check_accuracy", "register_model", "notify_failure"}
DESIGNED_TASK_IDS = FIXED_TASK_IDS | {"extract_customers", "stage_inputs", "find_champion", "score_champion"}
MISSION_ORDER = ("extract_customers", "stage_inputs", "preprocess", "train", "evaluate", "check_accuracy")
OUTCOMES = ("register_model", "notify_failure")
JOB_TASKS = ("preprocess", "train", "score_champion", "evaluate")
DOC_TABLE_ROW = re.compile(r"^\| `(?P<task_id>[a-z_]+)` \|", re.M)
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
    from airflow.sdk import AssetOrTimeSchedule

    assert dag.dag_id == "customer_churn_pipeline" == DAG_FILE.stem
    # nightly at 02:00, or when the outcome DAG asks for retraining
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert dag.timetable.timetable.expression == "0 2 * * *"
    assert str(dag.timetable.timetable.timezone) == "UTC"
    assert [asset.name for asset in dag.timetable.asset_condition.objects] == ["churn_retrain"]
    assert dag.catchup is False
    assert "register_model" in dag.doc_md and dag.tags


def downstream_of(dag, task_id: str) -> set[str]:
    """Every task a path in the graph leads to from ``task_id``."""
    return set(dag.get_task(task_id).get_flat_relative_ids(upstream=False))


def test_the_tasks_are_those_of_the_dags_own_table_and_of_the_design(dag) -> None:
    documented = DOC_TABLE_ROW.findall(dag.doc_md)
    assert len(documented) == len(set(documented)), "a task is listed twice in the DAG's doc"
    assert set(dag.task_ids) - set(documented) == set(), "tasks missing from the table in the DAG's doc"
    assert set(documented) - set(dag.task_ids) == set(), "the DAG's doc lists tasks the DAG does not have"
    assert set(dag.task_ids) >= FIXED_TASK_IDS, "the design's fixed task ids"
    assert set(dag.task_ids) == DESIGNED_TASK_IDS


def test_the_tasks_run_in_the_missions_order(dag) -> None:
    for earlier, later in itertools.pairwise(MISSION_ORDER):
        assert later in downstream_of(dag, earlier), f"{later} must run after {earlier}"
    for outcome in OUTCOMES:
        assert outcome in downstream_of(dag, "check_accuracy")
    for job in JOB_TASKS:  # nothing is paid for before the inputs are checked
        assert job in downstream_of(dag, "stage_inputs"), job
    # the champion is looked up once the run is staged, and scored beside the new model
    assert "find_champion" in downstream_of(dag, "stage_inputs")
    assert "evaluate" in downstream_of(dag, "find_champion")
    # a champion of the other engine is scored in its own image first, on the run's held-out customers
    assert {"find_champion", "preprocess"} <= dag.get_task("score_champion").upstream_task_ids
    assert "score_champion" in dag.get_task("evaluate").upstream_task_ids
    assert dag.get_task("evaluate").trigger_rule == "none_failed", "evaluate runs when score_champion is skipped"


def test_the_gate_decides_between_two_ends_of_the_run(dag) -> None:
    # a branch can only choose among the tasks directly after it, and skips the other
    assert set(OUTCOMES) <= dag.get_task("check_accuracy").downstream_task_ids
    assert downstream_of(dag, "register_model") == downstream_of(dag, "notify_failure") == set(), \
        "the outcomes end the run: neither waits on the other"
    assert {task.task_id for task in dag.tasks if not task.upstream_task_ids} == {"extract_customers"}
    assert {task.task_id for task in dag.tasks if not task.downstream_task_ids} == set(OUTCOMES)


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
