"""Did the predictions come true? Through real Airflow on the local backend: a champion scores the sample
(three cohorts); a month on, the outcome DAG measures each cohort once its horizon has passed, against
next month's table from ``sample_data --next-month``: every customer labelled, the realised figures
within sampling error of the promised ones. On the drifted month two cohorts fail, the team is told
once, and with ``CHURN_OUTCOME_RETRAIN`` the ``churn_retrain`` event makes Airflow's own scheduler
start one training run. A labels table without the id or the target column fails in one line, and
nothing is written."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_CSV
from tests.e2e.conftest import AIRFLOW, APPROVAL_DAG, SCORING_DAG, TRAINING_DAG

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("outcomes")]

OUTCOME_DAG = "customer_churn_outcomes"
COHORTS = ("20261121T000000Z", "20261122T000000Z", "20261123T000000Z")
SMALLER_COHORT_ROWS = 3000  # the later cohorts score part of the sample: as telling, and quicker
SCHEDULER_WAIT_SECONDS = 180


def write_month(folder: Path, *flags: str) -> Path:
    path = folder / ("drifted.csv" if "--drifted" in flags else "next-month.csv")
    completed = subprocess.run([sys.executable, "-m", "churn_pipeline.tooling.sample_data", "--next-month", *flags,
                                "--output", str(path)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return path


@pytest.fixture(scope="module")
def scored(module_project, tmp_path_factory):
    """Version 1 trained and approved; the sample scored on 21 November, part of it on the 22nd and 23rd."""
    project = module_project
    trained = project.dags_test("2026-11-19")
    assert trained.returncode == 0, trained.log[-5000:]
    approved = project.dags_test("2026-11-19T12:00:00+00:00", {"version": 1}, dag_id=APPROVAL_DAG)
    assert approved.returncode == 0, approved.log[-3000:]
    smaller = tmp_path_factory.mktemp("cohorts") / "part.csv"
    smaller.write_text("\n".join(SAMPLE_CSV.read_text().splitlines()[:SMALLER_COHORT_ROWS + 1]) + "\n")
    for day, table in (("2026-11-21", None), ("2026-11-22", smaller), ("2026-11-23", smaller)):
        outcome = project.dags_test(day, {"input_uri": str(table)} if table else None, dag_id=SCORING_DAG)
        assert outcome.returncode == 0, outcome.log[-5000:]
    return project


def outcome_root(project) -> Path:
    return project.local_root / "s3" / "customer-churn-pipeline" / "churn-pipeline" / "outcomes"


def cohort_record(project, key: str) -> dict | None:
    path = outcome_root(project) / key / "outcome.json"
    return json.loads(path.read_text()) if path.is_file() else None


def test_next_months_table_measures_the_due_cohort_and_its_predictions_come_true(scored, tmp_path) -> None:
    project = scored
    # the holdout of a scoring run: its share within a point of the setting, the same for a rerun
    with (project.scoring_prefix(COHORTS[0]) / "scores.csv").open() as table:
        rows = list(csv.DictReader(table))
    held_out = {row["CustomerID"] for row in rows if row["holdout"] == "yes"}
    assert abs(len(held_out) / len(rows) - 0.05) < 0.01
    assert all(row["action"] == "do not contact" for row in rows if row["CustomerID"] in held_out)
    again = project.dags_test("2026-11-21", dag_id=SCORING_DAG)
    assert again.returncode == 0, again.log[-3000:]
    with (project.scoring_prefix(COHORTS[0]) / "scores.csv").open() as table:
        assert {row["CustomerID"] for row in csv.DictReader(table) if row["holdout"] == "yes"} == held_out

    labels = write_month(tmp_path)
    # 30 days after the 21st, not yet after the 22nd: only the first cohort is due
    outcome = project.dags_test("2026-12-21T07:00:00+00:00", {"labels_uri": str(labels)}, dag_id=OUTCOME_DAG)

    assert outcome.returncode == 0, outcome.log[-5000:]
    assert outcome.states == {"extract_labels": "skipped", "measure_outcomes": "success", "judge_outcomes": "success",
                              "request_retraining": "skipped"}  # no source: labels_uri is read
    assert cohort_record(project, COHORTS[1]) is None and cohort_record(project, COHORTS[2]) is None
    assert f"cohort {COHORTS[1]} not measured: its labels are due 30 days after scoring" in outcome.log
    record = cohort_record(project, COHORTS[0])
    assert (record["scored"], record["labelled"], record["coverage"]) == (10_000, 10_000, 1.0)
    assert record["holdout"]["customers"] == len(held_out)
    promised, realised = record["promised"], record["everyone"]
    for name in ("roc_auc", "accuracy"):
        # the promise was measured on the test split; both it and this cohort carry sampling error
        error = promised["standard_deviations"][name] * (1 + promised["test_customers"] / 10_000) ** 0.5
        assert abs(realised[name] - promised[name]) < 3 * error, (name, realised[name], promised[name], error)
    assert realised["lift_at_10"] == pytest.approx(promised["lift_at_10"], rel=0.1)
    assert realised["profit_per_customer"] == pytest.approx(promised["profit_per_customer"], rel=0.25)
    assert record["failed"] is False and record["reasons"] == []
    assert not [note for note in project.notifications() if note["reason"] == "outcomes_failed"]
    assert project.asset_events("churn_retrain") == []
    page = outcome_root(project) / "outcomes.html"
    assert COHORTS[0] in page.read_text()
    (version,) = project.versions()
    assert version["tags"]["outcomes_uri"].endswith("/outcomes/outcomes.html")  # the registry links the page


@pytest.mark.parametrize("dropped", ["Churn", "CustomerID"])
def test_labels_lacking_the_id_or_the_target_fail_in_one_line_and_write_nothing(scored, tmp_path, dropped) -> None:
    project = scored
    with SAMPLE_CSV.open() as source:
        rows = list(csv.DictReader(source))
    kept = [name for name in rows[0] if name != dropped]
    narrower = tmp_path / "labels.csv"
    with narrower.open("w", newline="") as table:
        writer = csv.DictWriter(table, kept, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows[:50])
    before = sorted(path.relative_to(outcome_root(project)) for path in outcome_root(project).rglob("*"))

    outcome = project.dags_test("2026-12-24T07:00:00+00:00", {"labels_uri": str(narrower)}, dag_id=OUTCOME_DAG)

    assert outcome.returncode == 1 and outcome.states["measure_outcomes"] == "failed"
    role = "target" if dropped == "Churn" else "id"
    expected = (f"the labels table at {narrower} lacks the {role} column '{dropped}' that cohort {COHORTS[1]} "
                "needs; it has: ")
    (line,) = {line[line.index("the labels table"):] for line in outcome.log.splitlines() if expected in line}
    assert ", ".join(kept) in line
    assert sorted(path.relative_to(outcome_root(project)) for path in outcome_root(project).rglob("*")) == before


def test_labels_of_other_customers_fail_in_one_line_and_write_nothing(scored, tmp_path) -> None:
    project = scored
    others = tmp_path / "others.csv"
    others.write_text("CustomerID,Churn\nX-1,Yes\nX-2,No\n")  # the wrong table: a cohort measured on nobody
    before = sorted(path.relative_to(outcome_root(project)) for path in outcome_root(project).rglob("*"))

    outcome = project.dags_test("2026-12-24T07:00:00+00:00", {"labels_uri": str(others)}, dag_id=OUTCOME_DAG)

    assert outcome.returncode == 1 and outcome.states["measure_outcomes"] == "failed"
    assert (f"none of the customers of cohort(s) {COHORTS[1]}, {COHORTS[2]} has a label in {others}"
            in outcome.log)
    assert sorted(path.relative_to(outcome_root(project)) for path in outcome_root(project).rglob("*")) == before


def test_labels_from_the_training_source_are_checked_the_same_way(scored, tmp_path) -> None:
    from churn_pipeline.tooling.sample_data import SAMPLE_ROWS, SAMPLE_SEED, write_sample

    project = scored
    database = write_sample(tmp_path / "customers.sqlite", SAMPLE_ROWS, SAMPLE_SEED)
    source = {"AIRFLOW_CONN_CHURN_LABELS_DB": json.dumps({"conn_type": "sqlite", "host": str(database)}),
              "CHURN_SOURCE_CONN_ID": "churn_labels_db", "CHURN_SOURCE_QUERY": "SELECT * FROM customers"}
    project.extra_env.update(source)
    try:
        outcome = project.dags_test("2026-12-24T07:00:00+00:00", {"source_query": "SELECT CustomerID FROM customers"},
                                    dag_id=OUTCOME_DAG)
    finally:
        for name in source:
            project.extra_env.pop(name)

    assert outcome.states["extract_labels"] == "success" and outcome.states["measure_outcomes"] == "failed"
    extracted = project.local_root / "s3" / "customer-churn-pipeline" / "churn-pipeline" / "outcomes" / "labels"
    assert [path.name for path in extracted.iterdir()] == ["20261224T070000Z"]  # apart from the training runs
    assert (f"lacks the target column 'Churn' that cohort {COHORTS[1]} needs; it has: CustomerID"
            in outcome.log)
    assert cohort_record(project, COHORTS[1]) is None


def asset_triggered_runs(project) -> list[tuple[str, str]]:
    with sqlite3.connect(project.home / "airflow.db", timeout=30) as db:
        return db.execute("SELECT run_id, state FROM dag_run WHERE dag_id = ? AND run_type = 'asset_triggered'",
                          (TRAINING_DAG,)).fetchall()


def test_a_drifted_month_notifies_once_and_starts_one_training_run(scored, tmp_path) -> None:
    project = scored
    # An asset event queues only DAGs that are unpaused then, with the asset in their serialised schedule
    # (airflow/assets/manager.py): so both happen before the outcome run emits it.
    for command in (["dags", "reserialize"], ["dags", "unpause", TRAINING_DAG]):
        completed = subprocess.run([AIRFLOW, *command], env=project.env, capture_output=True, text=True, timeout=300)
        assert completed.returncode == 0, completed.stderr[-3000:]
    project.extra_env["CHURN_OUTCOME_RETRAIN"] = "true"
    labels = write_month(tmp_path, "--drifted")

    outcome = project.dags_test("2026-12-24T07:00:00+00:00", {"labels_uri": str(labels)}, dag_id=OUTCOME_DAG)

    assert outcome.returncode == 0, outcome.log[-5000:]
    for key in COHORTS[1:]:
        record = cohort_record(project, key)
        assert record["failed"] is True and record["everyone"]["lift_at_10"] < 1.5, record["reasons"]
    (message,) = [note for note in project.notifications() if note["reason"] == "outcomes_failed"]
    assert "2 of the last 3 measured cohort(s) failed" in message["message"]
    assert outcome.states["request_retraining"] == "success"
    (event,) = project.asset_events("churn_retrain")
    assert (event["dag_id"], event["task_id"]) == (OUTCOME_DAG, "request_retraining")

    # the next day nothing new is due: no second message, no second retraining
    quiet = project.dags_test("2026-12-25T07:00:00+00:00", {"labels_uri": str(labels)}, dag_id=OUTCOME_DAG)
    assert quiet.returncode == 0 and quiet.states["request_retraining"] == "skipped"
    assert len([note for note in project.notifications() if note["reason"] == "outcomes_failed"]) == 1
    assert len(project.asset_events("churn_retrain")) == 1

    # Airflow's own scheduler turns the one event into one training run
    log = (tmp_path / "scheduler.log").open("w")
    environment = {**project.env, "AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
    scheduler = subprocess.Popen([AIRFLOW, "scheduler"], env=environment, cwd=project.home, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # a group: stopped with its workers
    try:
        deadline = time.monotonic() + SCHEDULER_WAIT_SECONDS
        while not asset_triggered_runs(project) and time.monotonic() < deadline and scheduler.poll() is None:
            time.sleep(2)
        time.sleep(5)  # long enough for a second run, were the event consumed twice
        runs = asset_triggered_runs(project)
    finally:
        os.killpg(scheduler.pid, signal.SIGTERM)
        try:
            scheduler.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(scheduler.pid, signal.SIGKILL)
            scheduler.wait()
        log.close()
    assert len(runs) == 1, (tmp_path / "scheduler.log").read_text()[-5000:]
