"""Champion / challenger and drift through real Airflow on the local backend: only a model at least
as good as the approved champion, on the same customers, is put forward; a champion that cannot score
the new data is recorded as not comparable; drift is measured against the champion's (or, before any
approval, the newest version's) training data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from churn_pipeline.tooling.browser import visit
from tests.conftest import CONFIG, SAMPLE_CSV

pytestmark = pytest.mark.e2e


def cli(airflow_project, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "churn_pipeline.tooling.cli", *args], env=airflow_project.env,
                          capture_output=True, text=True, timeout=300)


def evaluation(airflow_project, key: str) -> dict:
    return json.loads((airflow_project.run_prefix(key) / "evaluation" / "evaluation.json").read_text())


def test_only_a_model_that_beats_the_approved_champion_is_registered(airflow_project, tmp_path) -> None:
    first = airflow_project.dags_test("2026-11-01")
    assert first.returncode == 0, first.log[-5000:]
    assert evaluation(airflow_project, "20261101T000000Z")["champion"] is None  # a new deployment: no champion
    approved = cli(airflow_project, "approve", "1")
    assert approved.returncode == 0 and "version 1 is the champion" in approved.stdout, approved.stderr
    assert "version 1 (models:/customer-churn/1)" in cli(airflow_project, "champion").stdout

    # the same data again, with a margin the same model cannot clear: nothing registered, one notification
    held_back = airflow_project.dags_test("2026-11-02", {"min_improvement": 0.05})
    assert held_back.states["register_model"] == "skipped" and held_back.states["notify_failure"] == "failed"
    assert held_back.states["score_champion"] == "skipped", "a champion of the run's own engine is scored by evaluate"
    champion = evaluation(airflow_project, "20261102T000000Z")["champion"]
    assert champion["comparable"] and champion["identifier"] == "models:/customer-churn/1"
    assert champion["delta"]["roc_auc"] == pytest.approx(0.0, abs=1e-12)  # same data, same seed, same model
    (message,) = airflow_project.notifications()
    assert message["reason"] == "not_better_than_champion" and message["champion"] == "models:/customer-churn/1"
    assert "roc_auc" in message["message"] and "+0.0500" in message["message"]
    assert "churn-train-20261102T000000Z" in message["message"]  # the challenger, by name
    assert [v["version"] for v in airflow_project.versions()] == [1]

    # compare and record only: registered, with the comparison on the version
    reported = airflow_project.dags_test("2026-11-03", {"min_improvement": 0.05, "compare_with_champion": "report"})
    assert reported.returncode == 0, reported.log[-5000:]
    version = airflow_project.versions()[-1]
    assert version["version"] == 2
    assert version["tags"]["compared_with"] == "models:/customer-churn/1"
    assert version["tags"]["compared_on"] == "roc_auc" and version["tags"]["delta_roc_auc"] == "+0.000000"

    # the champion needs a column this run's customers no longer have: still decided, not comparable
    schema = json.loads((CONFIG / "schema.json").read_text())
    schema["categorical"].remove("StreamingTV")
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    columns = SAMPLE_CSV.read_text().splitlines()
    dropped = columns[0].split(",").index("StreamingTV")
    (tmp_path / "customers.csv").write_text("\n".join(",".join(cell for index, cell in enumerate(line.split(","))
                                                                if index != dropped) for line in columns) + "\n")
    narrower = airflow_project.dags_test("2026-11-04", {"input_uri": str(tmp_path / "customers.csv"),
                                                        "schema_uri": str(tmp_path / "schema.json")})
    assert narrower.states["check_accuracy"] == "success", narrower.log[-5000:]
    champion = evaluation(airflow_project, "20261104T000000Z")["champion"]
    assert champion["comparable"] is False and "missing column 'StreamingTV'" in champion["reason"]
    assert narrower.returncode == 0 and airflow_project.versions()[-1]["tags"]["champion_comparable"] == "false"


def assert_a_person_can_read_it(report, chromium: str) -> None:
    """The real run's report opened in headless Chromium: drawn, with the drifted row highlighted, and
    fetching nothing."""
    from tests.e2e.test_report_in_browser import DRIFT_ROW, assert_drawn, count_of

    seen = visit(report, chromium=chromium)
    assert seen.page_requests == ()
    image = assert_drawn(seen.screenshot)
    assert count_of(image, DRIFT_ROW) > 5000
    text = report.read_text()
    text = text[text.index("<body"):]  # what a person reads, not the head's title and style
    # the decision, and that the data drifted, come before everything else
    assert text.index("Passed, registered for approval") < text.index("Data drift: 1 feature(s) drifted") \
        < text.index("Metrics on the test customers") < text.index("Did the customers' data move?")
    drift_table = text[text.index("Did the customers' data move?"):]
    assert "MonthlyCharges" in drift_table[:drift_table.index("</table>")]


def test_drift_is_measured_against_the_baseline_and_reported(airflow_project, tmp_path, chromium) -> None:
    assert airflow_project.dags_test("2026-11-05").returncode == 0
    drifted = tmp_path / "drifted" / "customers.csv"
    made = subprocess.run([sys.executable, "-m", "churn_pipeline.tooling.sample_data", "--shift", "MonthlyCharges=1.5",
                           "--output", str(drifted)], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr

    outcome = airflow_project.dags_test("2026-11-06", {"input_uri": str(drifted)})

    assert outcome.returncode == 0, outcome.log[-5000:]  # warn, the default: reported, never blocking
    drift = json.loads((airflow_project.run_prefix("20261106T000000Z") / "evaluation" / "drift.json").read_text())
    levels = {item["name"]: item["level"] for item in drift["features"]}
    assert drift["status"] == "compared" and drift["baseline"]["version"] == 1  # the newest version: nothing approved
    assert levels["MonthlyCharges"] == "drift" and levels["Gender"] == "ok"
    (warning,) = airflow_project.notifications()
    assert warning["reason"] == "data_drift_warning" and warning["drifted_features"] == ["MonthlyCharges"]
    report = airflow_project.run_prefix("20261106T000000Z") / "report" / "report.html"
    assert warning["report_uri"].endswith("/runs/20261106T000000Z/report/report.html") and report.is_file()
    assert airflow_project.versions()[-1]["tags"]["drifted_features"] == "MonthlyCharges"
    assert_a_person_can_read_it(report, chromium)

    # once version 1 is approved it is the baseline, even though version 2 is newer; block mode holds back
    assert cli(airflow_project, "approve", "1").returncode == 0
    blocked = airflow_project.dags_test("2026-11-07", {"input_uri": str(drifted), "drift_mode": "block"})
    assert blocked.states["register_model"] == "skipped"
    drift = json.loads((airflow_project.run_prefix("20261107T000000Z") / "evaluation" / "drift.json").read_text())
    assert drift["baseline"]["version"] == 1
    assert airflow_project.notifications()[-1]["reason"] == "data_drift"
