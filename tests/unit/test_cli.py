"""The command line of the local backend: approving moves the champion to the newest approved version,
rejecting the champion hands the title on, the listing says what each version is, and the report and
summary of a run are found."""

from __future__ import annotations

import json
import re
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from churn_pipeline.domain.layout import RunLayout, ScoringLayout
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.report.summary import FAILED, RunOutcome, write_outcome
from churn_pipeline.services.objectstore import LocalObjectStore
from churn_pipeline.services.registry import MlflowRegistry
from churn_pipeline.tooling import cli
from tests.builders import passing_decision, registration_request

KEYS = ("20261101T020000Z", "20261102T020000Z", "20261103T020000Z")


@pytest.fixture()
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowRegistry:
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    monkeypatch.delenv("CHURN_BACKEND", raising=False)
    settings = load_settings()
    registry = MlflowRegistry(tmp_path)
    for key in KEYS:
        registry.register(registration_request(settings, key))
    return registry


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_newest_approved_version_is_the_champion(registry, capsys) -> None:
    assert run(capsys, "champion")[1].startswith("no approved version of customer-churn yet")
    assert "version 2 is the champion" in run(capsys, "approve", "2")[1]
    assert "version 3 is the champion" in run(capsys, "approve", "3")[1]
    assert "version 3 is the champion" in run(capsys, "approve", "1")[1]  # older: approved, not champion
    assert registry.champion("customer-churn").version == 3
    assert "version 3 (models:/customer-churn/3)" in run(capsys, "champion")[1]


def test_rejecting_the_champion_hands_the_title_to_the_next_newest_approved(registry, capsys) -> None:
    run(capsys, "approve", "1")
    run(capsys, "approve", "2")
    assert "version 1 is the champion" in run(capsys, "reject", "2")[1]
    assert "no champion" in run(capsys, "reject", "1")[1]
    assert registry.champion("customer-churn") is None


def test_an_unknown_version_is_named_with_the_known_ones(registry, capsys) -> None:
    code, _, error = run(capsys, "approve", "9")
    assert code == 1 and "no version 9 of customer-churn; known: [1, 2, 3]" in error


def test_versions_is_a_table_with_header_status_metrics_and_data_source(registry, capsys) -> None:
    run(capsys, "approve", "2")
    lines = run(capsys, "versions")[1].splitlines()
    assert lines[0].startswith("customer-churn in sqlite:///")
    assert lines[1].split() == ["version", "status", "accuracy", "roc_auc", "run", "data", "source"]
    assert lines[3].split()[:3] == ["2", "Approved", "*"] and "s3://b/in.csv" in lines[3]
    assert "0.8100" in lines[2] and "0.8600" in lines[2] and KEYS[0] in lines[2]
    assert lines[-1].startswith("* the champion")


def test_report_and_summary_find_a_runs_files(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    settings = load_settings()
    store, layout = LocalObjectStore(tmp_path), RunLayout(settings.base_uri, KEYS[0])
    store.write_bytes(layout.evaluation_file_uri, json.dumps({
        "metrics": {"accuracy": 0.81}, "baseline": {"majority_class_accuracy": 0.72}, "champion": None}).encode())
    decision = passing_decision(details=("accuracy 0.8100 >= threshold 0.7500", "no approved champion yet"))
    store.write_bytes(layout.decision_file_uri, json.dumps(decision.to_xcom()).encode())
    store.write_bytes(layout.report_file_uri, b"<!DOCTYPE html>")

    assert run(capsys, "report")[1].strip() == str(store.path_for(layout.report_file_uri))
    summary = run(capsys, "summary", "--run-key", KEYS[0])[1]
    assert "gate          passed" in summary and "- no approved champion yet" in summary
    assert "champion      none approved yet" in summary and "report" in summary
    assert re.search(r"registry UI   \.venv/bin/mlflow ui --backend-store-uri sqlite:///\S+ --host 127\.0\.0\.1 "
                     r"--port \d+$", summary, re.M), "the hint names a port: MLflow's default one is taken on macOS"
    assert "  versions      make versions GROUP=customer-churn" in summary.splitlines()


def test_the_versions_hint_names_the_group_the_run_registered_in(tmp_path: Path, monkeypatch, capsys) -> None:
    """After `make run GROUP=telco-churn`, the summary's hint lists the Telco versions, also from a shell
    that never set the group."""
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    monkeypatch.delenv("CHURN_MODEL_PACKAGE_GROUP", raising=False)
    settings = load_settings()
    layout = RunLayout(settings.base_uri, KEYS[2])
    write_outcome(LocalObjectStore(tmp_path), layout, RunOutcome(FAILED, group="telco-churn",
                                                                 failed={"stage_inputs": "bad input"}))
    lines = run(capsys, "summary")[1].splitlines()
    assert "  group         telco-churn" in lines
    assert "  versions      make versions GROUP=telco-churn" in lines


def test_a_run_that_stopped_before_the_gate_has_no_report(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    settings = load_settings()
    LocalObjectStore(tmp_path).write_bytes(f"{RunLayout(settings.base_uri, KEYS[1]).run_uri}/code/x.py", b"")
    code, _, error = run(capsys, "report")
    assert code == 1 and "stopped before the gate" in error
    assert f"(see `.venv/bin/churn summary --run-key {KEYS[1]}`)" in error


def test_the_command_is_the_churn_console_script_of_the_installed_project(capsys) -> None:
    """`churn` in .venv/bin is what the README and make call; the editable install makes it."""
    (script,) = entry_points(group="console_scripts", name="churn")
    assert script.value == "churn_pipeline.tooling.cli:main" and script.load() is cli.main
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: churn ")


# the end of `airflow dags test`'s log when a task refused its input (abridged), and when Airflow itself failed
TASK_REFUSED_LOG = """[2026-12-02T07:10:01] INFO - Task started
Traceback (most recent call last):
  File "/project/include/churn_pipeline/tasks/scoring.py", line 122, in stage_scoring_inputs
    raise _fail(ti, f"no approved model of {settings.model_package_group}; {APPROVE_HINT}")
AirflowFailException: no approved model of customer-churn; approve one with `make approve VERSION=N`
[2026-12-02T07:10:02] ERROR - Task failed with exception
Traceback (most recent call last):
AirflowFailException: no approved model of customer-churn; approve one with `make approve VERSION=N`
"""
AIRFLOW_FAILED_LOG = """Traceback (most recent call last):
  File "/venv/bin/airflow", line 10, in <module>
    sys.exit(main())
  File "/venv/lib/python3.11/site-packages/airflow/cli/commands/dag_command.py", line 600, in dag_test
    raise ValueError(f"Dag {dag_id!r} could not be found")
airflow.exceptions.AirflowException: Dag 'customer_churn_pipeline' could not be found; either it does not exist
"""


def test_the_one_line_of_a_failed_runs_log_is_the_tasks_own_refusal_else_the_tracebacks_end() -> None:
    assert cli.failure_in_log(TASK_REFUSED_LOG) == (
        "no approved model of customer-churn; approve one with `make approve VERSION=N`")
    assert cli.failure_in_log(AIRFLOW_FAILED_LOG) == (
        "AirflowException: Dag 'customer_churn_pipeline' could not be found; either it does not exist")
    assert cli.failure_in_log("INFO - all fine\n") is None


def test_a_scoring_run_without_scores_says_why_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    """`make score` with no champion: the scoring run wrote only its notification; the line says how to
    approve one, and where the Airflow log is."""
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    settings = load_settings()
    started = time.time() - 1
    # the run could only tell the team: its one write is the sent-once marker beside its prefix
    LocalObjectStore(tmp_path).write_bytes(
        ScoringLayout(settings.base_uri, KEYS[0]).notification_marker_uri("no-champion"), b"{}")
    log = tmp_path / "run.log"
    log.write_text(TASK_REFUSED_LOG)
    code, out, error = run(capsys, "scores", "--started-after", str(started), "--log", str(log))
    assert code == 1 and out == ""
    assert error == (f"error: scoring run {KEYS[0]} produced no scores: no approved model of customer-churn; "
                     f"approve one with `make approve VERSION=N` (its Airflow log: {log})\n")


def test_a_run_whose_prefix_was_never_written_is_found_by_the_message_it_sent(tmp_path: Path, monkeypatch,
                                                                             capsys) -> None:
    """A run that could not write its own prefix still told the team, beside it: ``summary --run-key``
    finds that run and shows what it sent, instead of saying there is no such run."""
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    settings = load_settings()
    layout = RunLayout(settings.base_uri, KEYS[1])
    LocalObjectStore(tmp_path).write_bytes(layout.notification_marker_uri("failed"), json.dumps(
        {"reason": "failed", "subject": "Churn pipeline failed (stage_inputs)"}).encode())
    code, out, _ = run(capsys, "summary", "--run-key", KEYS[1])
    assert code == 0 and out.startswith(f"run {KEYS[1]}\n")
    assert "  notified      failed: Churn pipeline failed (stage_inputs)" in out
    assert run(capsys, "summary", "--run-key", KEYS[2])[2].startswith(f"error: no run {KEYS[2]}; known: {KEYS[1]}")


def test_a_run_that_wrote_nothing_says_why_not_that_there_was_no_run(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    log = tmp_path / "run.log"
    log.write_text(AIRFLOW_FAILED_LOG)
    code, _, error = run(capsys, "summary", "--started-after", str(time.time()), "--log", str(log))
    assert code == 1 and "make demo" not in error and error.count("\n") == 1
    assert error.startswith("error: the run wrote nothing: it stopped before its first task: AirflowException: "
                            "Dag 'customer_churn_pipeline' could not be found")


@pytest.mark.parametrize(("argv", "line"), [
    (["--conf", '{"accuracy_threshold": 7}'], "accuracy_threshold must be a number between 0 and 1, not 7"),
    (["--conf", '{"acuracy_threshold": 0.9}'], "customer_churn_pipeline has no param 'acuracy_threshold' "
                                               "(did you mean accuracy_threshold?); its params: input_uri,"),
    (["--conf", '{"accuracy_threshold": NaN}'], "accuracy_threshold must be a number between 0 and 1, not NaN"),
    (["--conf", '{"drift_mode": "blocked"}'], "drift_mode must be one of warn, block, off, not 'blocked'"),
    (["--conf", "[0.8]"], "CONF must be a JSON object of params"),
    (["--conf", "{accuracy_threshold: 0.8}"], "CONF is not JSON"),
    (["--dag", "customer_churn_scoring", "--schema", "s.json"], "customer_churn_scoring has no param 'schema_uri'"),
    (["--dag", "customer_churn_approval", "--version", "two"], "VERSION must be a version number"),
    (["--dag", "customer_churn_approval", "--version", "0"], "version must be an integer at least 1, not 0"),
], ids=lambda value: str(value))
def test_make_runs_params_are_refused_in_one_line_before_airflow_starts(argv, line, monkeypatch, capsys) -> None:
    for name in ("INPUT", "SCHEMA", "CONF", "VERSION"):
        monkeypatch.delenv(name, raising=False)
    code, out, error = run(capsys, "conf", *argv)
    assert code == 1 and out == "", "nothing for `airflow dags test` to start"
    assert error.startswith(f"error: {line}") and error.count("\n") == 1, error


def test_make_runs_params_become_the_runs_conf(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONF", '{"accuracy_threshold": 0.8}')
    monkeypatch.setenv("INPUT", "data/customers.csv")
    code, out, _ = run(capsys, "conf")
    assert code == 0
    assert json.loads(out) == {"accuracy_threshold": 0.8, "input_uri": str(tmp_path / "data" / "customers.csv")}
    approval = run(capsys, "conf", "--dag", "customer_churn_approval", "--version", "3", "--conf", "", "--input", "")
    assert json.loads(approval[1]) == {"version": 3}


def test_outcomes_lists_the_measured_cohorts_and_the_verdict(tmp_path: Path, monkeypatch, capsys) -> None:
    from churn_pipeline.domain.layout import OutcomeLayout

    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path))
    code, _, error = run(capsys, "outcomes")
    assert code == 1 and "no cohort measured yet" in error and "CHURN_LABEL_HORIZON_DAYS" in error
    store, layout = LocalObjectStore(tmp_path), OutcomeLayout(load_settings().base_uri)
    for day, failed in (("21", False), ("22", True), ("23", True)):
        figures = {"customers": 3000, "roc_auc": 0.6 if failed else 0.87, "lift_at_10": 1.1 if failed else 2.9}
        store.write_bytes(layout.cohort_file_uri(f"202611{day}T000000Z"), json.dumps({
            "cohort": f"202611{day}T000000Z", "model": {"version": 1}, "coverage": 1.0, "judged_on": "everyone",
            "everyone": figures, "holdout": {"customers": 150}, "promised": {"roc_auc": 0.875, "lift_at_10": 2.96},
            "failed": failed, "reasons": ["lift_at_10 1.1000 < 2.5160"] if failed else []}).encode())

    code, shown, _ = run(capsys, "outcomes")

    assert code == 0
    assert "20261121T000000Z" in shown and "passed" in shown and "failed: lift_at_10 1.1000 < 2.5160" in shown
    assert "verdict  retrain: 2 of the last 3 cohort(s) failed" in shown
