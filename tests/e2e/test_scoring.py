"""Scoring every customer with the champion, through real Airflow on the local backend: the approval
emits the asset that schedules scoring; every unique customer is scored once with the approved
version, through the model's own serving handlers in the image twin, with the probabilities the
model itself gives; a rerun reuses the transform; without an approved model, or without a column
the champion needs, the run fails before any job and says why."""

from __future__ import annotations

import csv
import json
import subprocess

import pytest

from tests.conftest import HEADER, SAMPLE_CSV, container_python, make_rows, write_csv
from tests.e2e.conftest import APPROVAL_DAG, SCORING_DAG

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("scoring-champion")]

SCORE_WITH_THE_MODEL_ITSELF = r"""
import json, sys, tarfile, tempfile
import pandas as pd
scratch = tempfile.mkdtemp()
tarfile.open(sys.argv[1]).extractall(scratch, filter="data")
sys.path.insert(0, scratch + "/code")
import inference
model = inference.model_fn(scratch)
records = pd.DataFrame.from_records([json.loads(line) for line in open(sys.argv[2])])
features = inference.data_contract.prepare_features(records, model["schema"])
probabilities = inference.business.served_scores(model["model"], features, model["decision"])
print(json.dumps(dict(zip(records["CustomerID"], map(float, probabilities)))))
"""


@pytest.fixture(scope="module")
def champion_project(module_project):
    """A project whose version 1 was trained and then approved through the approval DAG, shared by the
    scoring tests that need a champion (training it costs half a minute)."""
    trained = module_project.dags_test("2026-11-19")
    assert trained.returncode == 0, trained.log[-5000:]
    approved = module_project.dags_test("2026-11-19T12:00:00+00:00", {"version": 1}, dag_id=APPROVAL_DAG)
    assert approved.returncode == 0, approved.log[-3000:]
    return module_project


def scores(airflow_project, key: str) -> list[dict[str, str]]:
    with (airflow_project.scoring_prefix(key) / "scores.csv").open() as table:
        return list(csv.DictReader(table))


def test_without_an_approved_model_scoring_fails_before_any_job_and_says_how_to_approve(airflow_project) -> None:
    outcome = airflow_project.dags_test("2026-11-20", dag_id=SCORING_DAG)

    assert outcome.returncode == 1 and outcome.run_state == "failed"
    assert outcome.states["stage_customers"] == "failed" and outcome.states["score_customers"] == "upstream_failed"
    assert not (airflow_project.local_root / "jobs").exists()
    (message,) = airflow_project.notifications()
    assert message["reason"] == "scoring_failed" and message["failed_tasks"] == ["stage_customers"]
    assert "no approved model of customer-churn; approve one with" in message["message"]
    assert ".venv/bin/churn approve N" in message["message"]


def test_an_approved_champion_scores_every_customer_once(champion_project) -> None:
    airflow_project = champion_project
    (event,) = airflow_project.asset_events("churn_champion")  # what schedules scoring after an approval
    assert (event["dag_id"], event["task_id"]) == (APPROVAL_DAG, "approve_version")

    outcome = airflow_project.dags_test("2026-11-21", dag_id=SCORING_DAG)

    assert outcome.returncode == 0, outcome.log[-5000:]
    assert outcome.states["notify_failure"] == "skipped"
    scored = scores(airflow_project, "20261121T000000Z")
    customers = {row.split(",")[0] for row in SAMPLE_CSV.read_text().splitlines()[1:]}
    assert len(scored) == len(customers) == 10_000  # the 100 duplicate rows are scored once
    assert {row["CustomerID"] for row in scored} == customers
    assert all(0.0 <= float(row["churn_probability"]) <= 1.0 for row in scored)
    assert {row["model_version"] for row in scored} == {"1"}
    assert {row["risk_band"] for row in scored} == {"high", "medium", "low"}
    summary = json.loads((airflow_project.scoring_prefix("20261121T000000Z") / "summary.json").read_text())
    assert sum(summary["per_band"].values()) == 10_000 and len(summary["top"]) == 20
    assert summary["dropped_duplicates"] == 100 and summary["model"]["version"] == 1
    assert "10000 customers scored with version 1" in outcome.log  # the last task says what the run did

    # every customer's action at the stored threshold, value at risk and reasons, which add up
    decision = json.loads(next(airflow_project.run_prefix("20261119T000000Z").glob(
        "evaluation/evaluation.json")).read_text())["economics"]
    features = set(HEADER.split(",")) - {"CustomerID", "Churn"}
    for row in scored:
        probability = float(row["churn_probability"])
        # the run's holdout is left alone whatever its score: outcomes are measured on it unbiased
        contact = probability > decision["threshold"] and row["holdout"] != "yes"
        assert row["action"] == ("contact" if contact else "do not contact")
        assert {row["driver_1"], row["driver_2"], row["driver_3"]} <= features
        parts = ("base_value", "contribution_1", "contribution_2", "contribution_3", "other_contributions")
        assert abs(sum(float(row[name]) for name in parts) - probability) < 5e-6
        assert row["value_at_risk"] == "" or float(row["value_at_risk"]) >= 0
    held_out = [row for row in scored if row["holdout"] == "yes"]
    assert abs(len(held_out) / len(scored) - 0.05) < 0.01 and summary["holdout"]["customers"] == len(held_out)
    assert {"model_uri", "run_key", "metrics"} <= set(summary["model"])  # what outcomes compare with, later
    contacted = [row for row in scored if row["action"] == "contact"]
    assert summary["campaign"]["contact"] == len(contacted) > 0
    assert summary["cost"]["billable_seconds"] > 0 and summary["cost"]["cost"] > 0
    assert "campaign      contact" in outcome.log

    # the transform's probabilities are the model's own predict_proba on the same records
    model = next(airflow_project.run_prefix("20261119T000000Z").glob("model/*/output/model.tar.gz"))
    customers_file = airflow_project.scoring_prefix("20261121T000000Z") / "input" / "customers.jsonl"
    direct = subprocess.run([container_python(), "-c", SCORE_WITH_THE_MODEL_ITSELF, str(model), str(customers_file)],
                            capture_output=True, text=True, timeout=300)
    assert direct.returncode == 0, direct.stderr[-3000:]
    expected = json.loads(direct.stdout)
    assert {row["CustomerID"]: round(expected[row["CustomerID"]], 6) for row in scored} == \
        {row["CustomerID"]: float(row["churn_probability"]) for row in scored}

    # customers with blank cells are scored (the model imputes), not dropped
    blank = next(line.split(",")[0] for line in SAMPLE_CSV.read_text().splitlines()[1:] if ",," in line)
    assert blank in {row["CustomerID"] for row in scored}

    # scoring the same date again reuses the completed transform: nothing runs twice
    again = airflow_project.dags_test("2026-11-21", dag_id=SCORING_DAG)
    assert again.returncode == 0
    assert airflow_project.xcom("2026-11-21", "score_customers", dag_id=SCORING_DAG)["reused"] is True


def test_a_customer_table_lacking_a_column_the_champion_needs_fails_before_the_transform(champion_project,
                                                                                        tmp_path) -> None:
    airflow_project = champion_project
    columns = HEADER.split(",")
    keep = [index for index, name in enumerate(columns) if name != "Tenure"]
    narrower = write_csv(tmp_path / "customers.csv", [",".join(columns[i] for i in keep)] + [
        ",".join(row.split(",")[i] for i in keep) for row in make_rows(30)])

    outcome = airflow_project.dags_test("2026-11-22", {"input_uri": str(narrower)}, dag_id=SCORING_DAG)

    assert outcome.states["stage_customers"] == "failed" and outcome.states["score_customers"] == "upstream_failed"
    assert not list((airflow_project.local_root / "jobs").glob("churn-score-20261122*"))
    message = airflow_project.notifications()[-1]["message"]
    assert "lacks column(s) the champion (version 1) needs: Tenure" in message
