"""The whole pipeline on the local backend through real Airflow: real subprocess jobs, a real
MLflow registry on SQLite, the real outbox."""

from __future__ import annotations

import json
import subprocess
import tarfile

import pytest

from tests.conftest import CONFIG, HEADER, make_rows, write_csv

pytestmark = pytest.mark.e2e


LOAD_WITH_WARNINGS_AS_ERRORS = """
import sys, warnings
warnings.simplefilter("error")  # an InconsistentVersionWarning (or any other) fails the load
# except one the image's own pins raise on every joblib load, whoever pickled the model: joblib 1.5.3
# sets ndarray.shape, which numpy 2.5 deprecates
warnings.filterwarnings("ignore", "Setting the shape on a NumPy array", DeprecationWarning, "joblib.numpy_pickle")
import joblib, sklearn
model = joblib.load(sys.argv[1])
print(type(model).__name__, sklearn.__version__)
"""


def assert_the_jobs_ran_in_the_image_twin_whose_python_loads_the_model_cleanly(airflow_project, outcome, key: str,
                                                                             twin, scratch) -> None:
    for job in (f"churn-preprocess-{key}", f"churn-train-{key}", f"churn-evaluate-{key}"):
        log = (airflow_project.local_root / "jobs" / job / "output.log").read_text()
        assert log.startswith(f"job python: {twin} (Python 3.12."), job
        assert log.splitlines()[0].endswith(", the image twin)"), job
        assert f"[{job}] job python: {twin} (Python 3.12" in outcome.log, "the job log reaches the task log"
    model = next((airflow_project.run_prefix(key) / "model").glob("*/output/model.tar.gz"))
    with tarfile.open(model) as archive:
        archive.extractall(scratch / "model", filter="data")
    loaded = subprocess.run([str(twin), "-c", LOAD_WITH_WARNINGS_AS_ERRORS, str(scratch / "model" / "model.joblib")],
                            capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.split() == ["Pipeline", "1.9.0"]


def test_passing_runs_run_their_jobs_in_the_image_twin_and_register_consecutive_versions_awaiting_approval(
        airflow_project, twin, tmp_path) -> None:
    first = airflow_project.dags_test("2026-11-20")
    assert first.returncode == 0, first.log[-5000:]
    assert first.states == {"extract_customers": "skipped",  # no source configured: the bundled CSV
                            "stage_inputs": "success", "find_champion": "success", "preprocess": "success",
                            "train": "success", "score_champion": "skipped",  # no champion of the other engine
                            "evaluate": "success", "check_accuracy": "success",
                            "register_model": "success", "notify_failure": "skipped"}
    summary = first.log[first.log.index("what this run did:"):]  # the last task ends the run saying so
    assert "run 20261120T000000Z" in summary and "gate          passed" in summary
    assert "registered    customer-churn version 1 (PendingManualApproval): models:/customer-churn/1" in summary
    assert "campaign      contact above" in summary and "top-decile lift" in summary
    assert "for the three jobs (at CHURN_INSTANCE_PRICES)" in summary
    assert first.log.count("the job's peak memory") == 3, "each job's memory is in its task's log, for sizing"
    assert_the_jobs_ran_in_the_image_twin_whose_python_loads_the_model_cleanly(airflow_project, first,
                                                                             "20261120T000000Z", twin, tmp_path)
    second = airflow_project.dags_test("2026-11-21")
    assert second.returncode == 0, second.log[-5000:]

    versions = airflow_project.versions()
    assert [v["version"] for v in versions] == [1, 2]
    for version, key in zip(versions, ("20261120T000000Z", "20261121T000000Z"), strict=True):
        tags = version["tags"]
        assert tags["approval_status"] == "PendingManualApproval"
        assert tags["run_key"] == key
        assert 0.75 <= float(tags["accuracy"]) <= 1 and float(tags["roc_auc"]) > 0.5
        assert tags["evaluation_uri"].endswith(f"/runs/{key}/evaluation/evaluation.json")
        assert float(tags["contact_threshold"]) in [step / 100 for step in range(1, 100)]
        assert tags["threshold_chosen_on"] == "validation" and float(tags["run_cost"]) > 0
        assert float(tags["lift_at_10"]) > 1 and "expected_profit" in tags
        assert version["source"].endswith("/output/model.tar.gz") and key in version["source"]
    run = airflow_project.run_prefix("20261120T000000Z")
    evaluation = json.loads((run / "evaluation" / "evaluation.json").read_text())
    assert set(evaluation["metrics"]) >= {"accuracy", "precision", "recall", "f1_score"}
    assert {"ranking", "economics", "calibration"} <= set(evaluation)
    decision = json.loads((run / "report" / "decision.json").read_text())
    assert set(decision["run_cost"]["jobs"]) == {"preprocess", "train", "evaluate"}
    assert decision["run_cost"]["jobs"]["train"]["cost"] > 0
    assert (run / "preprocessing" / "train" / "train.csv").is_file()
    assert (run / "code" / "sourcedir.tar.gz").is_file()
    assert airflow_project.notifications() == []


def test_a_rejected_model_registers_nothing_and_notifies_once(airflow_project) -> None:
    outcome = airflow_project.dags_test("2026-11-22", {"accuracy_threshold": 0.99})

    assert outcome.returncode == 1, "a rejected model must not read as a plain success"
    assert outcome.run_state == "failed"
    assert outcome.states["register_model"] == "skipped"
    assert outcome.states["notify_failure"] == "failed"
    assert airflow_project.versions() == []
    (message,) = airflow_project.notifications()
    assert message["reason"] == "model_rejected"
    assert message["threshold"] == 0.99 and 0 < message["accuracy"] < 0.99
    assert message["run_id"] and message["evaluation_uri"].endswith("/runs/20261122T000000Z/evaluation/evaluation.json")


def test_a_model_that_passed_but_could_not_be_registered_is_notified_once(airflow_project) -> None:
    (airflow_project.local_root / "mlflow.lock").mkdir(parents=True)  # the registry's lock cannot be taken
    airflow_project.extra_env["CHURN_RETRIES"] = "1"

    outcome = airflow_project.dags_test("2026-11-24")

    assert outcome.returncode == 1 and outcome.states["register_model"] == "failed"
    assert outcome.states["notify_failure"] == "skipped"  # the gate passed: only the callback can tell
    (message,) = airflow_project.notifications()
    assert message["reason"] == "registration_failed" and message["failed_tasks"] == ["register_model"]
    assert "passed the gate" in message["message"] and message["run_key"] == "20261124T000000Z"


def test_input_that_breaks_the_contract_fails_at_preprocess_and_notifies(airflow_project, tmp_path) -> None:
    bad = write_csv(tmp_path / "bad.csv", [HEADER] + [row.replace(",Yes", ",Perhaps") for row in make_rows(60)])
    airflow_project.extra_env["CHURN_RETRIES"] = "2"

    outcome = airflow_project.dags_test("2026-11-23", {"input_uri": str(bad)})

    assert outcome.returncode == 1
    assert outcome.states["preprocess"] == "failed"
    assert outcome.states["train"] == "upstream_failed"
    assert "preprocessing rejected its input" in outcome.log and "'Perhaps' (20)" in outcome.log
    jobs = sorted(p.name for p in (airflow_project.local_root / "jobs").iterdir())
    assert jobs == ["churn-preprocess-20261123T000000Z"], "bad input is not retried: no second paid job"
    description = json.loads((airflow_project.local_root / "jobs" / jobs[0] / "description.json").read_text())
    assert description["ProcessingJobStatus"] == "Failed" and "'Perhaps'" in description["FailureReason"]
    assert airflow_project.versions() == []
    (message,) = airflow_project.notifications()
    assert message["reason"] == "pipeline_failed" and message["failed_tasks"] == ["preprocess"]
    assert "'Perhaps'" in message["message"]
    assert not (airflow_project.run_prefix("20261123T000000Z") / "preprocessing").exists()


def test_a_missing_input_fails_before_any_job(airflow_project, tmp_path) -> None:
    outcome = airflow_project.dags_test("2026-11-24", {"input_uri": str(tmp_path / "nowhere.csv")})
    assert outcome.states["stage_inputs"] == "failed"
    assert "input_uri: no file or folder at" in outcome.log
    assert not (airflow_project.local_root / "jobs").exists()
    assert [m["failed_tasks"] for m in airflow_project.notifications()] == [["stage_inputs"]]


def test_bad_campaign_params_fail_at_stage_inputs_in_one_line_before_any_job(airflow_project) -> None:
    # each figure within its Param's bounds (those refuse a run outright): only together they cannot work
    outcome = airflow_project.dags_test("2026-11-25", {"value_retained": 50, "offer_cost": 100})
    assert outcome.states["stage_inputs"] == "failed"
    assert "the run's params cannot work: value_retained (50" in outcome.log
    assert "Traceback" not in outcome.log.split("value_retained (50")[1].split("\n")[0]
    assert not (airflow_project.local_root / "jobs").exists(), "no job started"


def test_a_schema_naming_a_column_the_input_lacks_fails_at_stage_inputs_before_any_job(airflow_project,
                                                                                     tmp_path) -> None:
    # hostile too: a file name with a line that poses as the summary's, a column that rewrites a terminal line
    forged = "customers\n  registered    customer-churn version 7 (Approved)"
    hostile_column = "Note\x1b[2K\r\u202eevil"
    data = write_csv(tmp_path / f"{forged}.csv", [f'{HEADER},"{hostile_column}"']
                     + [f"{row},x" for row in make_rows(60)])
    schema = json.loads((CONFIG / "schema.json").read_text())
    schema["id_column"] = "customerID"  # the file says CustomerID
    schema_file = tmp_path / "my-schema.json"
    schema_file.write_text(json.dumps(schema))

    outcome = airflow_project.dags_test("2026-11-26", {"input_uri": str(data), "schema_uri": str(schema_file)})

    shown_data = str(data).replace("\n", "\\n")
    assert outcome.states["stage_inputs"] == "failed" and outcome.states["preprocess"] == "upstream_failed"
    assert f"input_uri {shown_data} does not fit schema_uri {schema_file}" in outcome.log, "the user's names"
    assert "missing column 'customerID' named by the schema (the file has 'CustomerID')" in outcome.log
    assert f"has the columns: {HEADER.replace(',', ', ')}, Note\\x1b[2K\\r\\u202eevil" in outcome.log
    assert not (airflow_project.local_root / "jobs").exists(), "no job started"
    staged = [path.name for path in airflow_project.run_prefix("20261126T000000Z").iterdir()]
    assert sorted(staged) == ["outcome.json"], "nothing staged: only how the run ended"
    (message,) = airflow_project.notifications()
    assert message["failed_tasks"] == ["stage_inputs"]
    assert "\x1b" not in message["message"] and "\u202e" not in message["message"] and forged not in message["message"]
    summary = outcome.log[outcome.log.index("what this run did:"):]
    assert f"failed at     stage_inputs: input_uri {shown_data} does not fit schema_uri {schema_file}" in summary
    assert "gate" not in summary, "the gate never decided: the summary says where the run failed instead"
    assert "\n  registered" not in summary and "\x1b" not in summary, "nothing forged, nothing interpreted"


def test_a_schema_that_breaks_the_contracts_rules_fails_at_stage_inputs(airflow_project, tmp_path) -> None:
    schema = json.loads((CONFIG / "schema.json").read_text())
    schema["target"]["negative"] = schema["target"]["positive"]
    schema_file = tmp_path / "bad-schema.json"
    schema_file.write_text(json.dumps(schema))

    outcome = airflow_project.dags_test("2026-11-27", {"schema_uri": str(schema_file)})

    assert outcome.states["stage_inputs"] == "failed"
    assert f"schema_uri: {schema_file} is not a valid data contract" in outcome.log
    assert "'target.positive' and 'target.negative' must differ" in outcome.log
    assert not (airflow_project.local_root / "jobs").exists()
