"""The Spark engine through real Airflow on the local backend: the training DAG on Spark registers a
version tagged ``engine=spark-mllib`` (on the bundled sample, and on Telco with the published
quality); the scoring DAG scores an approved Spark champion with a Spark processing job and
publishes the same scores.csv / summary.json as Batch Transform; a two-instance request runs on two
Spark workers and writes only where its request says.

One project (one Airflow home, one registry) holds the sample's Spark run, its approval and its
scoring runs, in that order; Telco trains once in a project of its own (its schema is another)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import CONFIG, SAMPLE_CSV
from tests.e2e.conftest import APPROVAL_DAG, SCORING_DAG

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("spark-engine")]

SPARK = {"CHURN_ENGINE": "spark"}
TRAINED_ON = "2026-11-19"
TRAINED_KEY = "20261119T000000Z"
SPARK_IMAGE_REPOSITORY = "sagemaker-spark-processing"
TRAINING_JOBS = ("preprocess", "train", "evaluate")


def job_description(project, job: str) -> dict:
    return json.loads((project.local_root / "jobs" / job / "description.json").read_text())


def is_spark_processing_job(description: dict) -> bool:
    app = description["AppSpecification"]
    return (SPARK_IMAGE_REPOSITORY in app["ImageUri"] and app["ContainerEntrypoint"][0] == "smspark-submit"
            and "ProcessingJobStatus" in description)


def store_files(root: Path) -> dict[Path, int]:
    """Every file under ``root`` and when it last changed (nanoseconds)."""
    return {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def spark_project(module_project):
    """The sample trained on Spark once, in the module's project, for every test that reads its run."""
    module_project.extra_env.update(SPARK)
    outcome = module_project.dags_test(TRAINED_ON)
    assert outcome.returncode == 0, outcome.log[-6000:]
    return module_project, outcome


@pytest.fixture(scope="module")
def spark_champion(spark_project):
    """The sample's Spark version approved through the approval DAG: the champion scoring uses."""
    project, _ = spark_project
    approved = project.dags_test("2026-11-19T12:00:00+00:00", {"version": 1}, dag_id=APPROVAL_DAG)
    assert approved.returncode == 0, approved.log[-3000:]
    return project


def test_the_training_dag_on_spark_runs_its_three_jobs_in_the_spark_image_and_registers_a_spark_version(
        spark_project) -> None:
    project, outcome = spark_project

    assert outcome.states == {"extract_customers": "skipped", "stage_inputs": "success", "find_champion": "success",
                              "preprocess": "success", "train": "success", "evaluate": "success",
                              "check_accuracy": "success", "register_model": "success", "notify_failure": "skipped"}
    for step in TRAINING_JOBS:  # train too: on Spark it is a processing job, not a training job
        description = job_description(project, f"churn-{step}-{TRAINED_KEY}")
        assert is_spark_processing_job(description), step
        assert description["ProcessingJobStatus"] == "Completed"
        assert description["AppSpecification"]["ContainerEntrypoint"][-1].endswith(f"/{step}_spark.py")
    assert project.xcom(TRAINED_ON, "stage_inputs")["engine"] == "spark"
    (version,) = project.versions()
    assert version["tags"]["engine"] == "spark-mllib"
    assert version["tags"]["approval_status"] == "PendingManualApproval"
    assert version["source"].endswith("/output/model.tar.gz")
    summary = outcome.log[outcome.log.index("what this run did:"):]
    assert "  engine        Spark, SageMaker's Spark processing image: engine=spark was asked for" in summary
    assert "registered    customer-churn version 1 (PendingManualApproval)" in summary


def test_an_approved_spark_champion_is_scored_by_a_spark_processing_job_for_every_customer(spark_champion) -> None:
    project = spark_champion
    outcome = project.dags_test("2026-11-21", dag_id=SCORING_DAG)

    assert outcome.returncode == 0, outcome.log[-6000:]
    assert outcome.states["notify_failure"] == "skipped"
    staged = project.xcom("2026-11-21", "stage_customers", dag_id=SCORING_DAG)
    assert staged["engine"] == "spark" and staged["champion"]["engine"] == "spark"
    description = job_description(project, "churn-score-20261121T000000Z")
    assert is_spark_processing_job(description) and description["ProcessingJobStatus"] == "Completed"
    assert description["AppSpecification"]["ContainerEntrypoint"][-1].endswith("/score_spark.py")
    assert not (project.local_root / "jobs" / "churn-score-20261121T000000Z" / "transform").exists()

    prefix = project.scoring_prefix("20261121T000000Z")
    assert (prefix / "input" / "customers.parquet").is_file() and not (prefix / "input" / "customers.jsonl").exists()
    with (prefix / "scores.csv").open() as table:
        scored = list(csv.DictReader(table))
    customers = {row.split(",")[0] for row in SAMPLE_CSV.read_text().splitlines()[1:]}
    assert len(scored) == len(customers) == 10_000  # the 100 duplicate rows are scored once
    assert {row["CustomerID"] for row in scored} == customers
    assert {row["model_version"] for row in scored} == {"1"}
    probabilities = [float(row["churn_probability"]) for row in scored]
    assert all(0.0 <= value <= 1.0 for value in probabilities) and len(set(probabilities)) > 100
    assert probabilities == sorted(probabilities, reverse=True)  # the table is in risk order, as for Batch Transform
    assert {row["risk_band"] for row in scored} == {"high", "medium", "low"}
    summary = json.loads((prefix / "summary.json").read_text())
    assert summary["customers"] == 10_000 and sum(summary["per_band"].values()) == 10_000
    assert summary["dropped_duplicates"] == 100 and len(summary["top"]) == 20
    assert summary["scored_by"] == "a Spark processing job"
    assert summary["campaign"]["contact"] == sum(row["action"] == "contact" for row in scored) > 0
    assert summary["cost"]["billable_seconds"] > 0
    assert "10000 customers scored with version 1" in outcome.log

    # the scores rank the customers as well as the champion's evaluation said they would: its ROC AUC
    # on the held-out customers is a floor for every customer's (most of whom it was trained on)
    from sklearn.metrics import roc_auc_score

    evaluation = json.loads((project.run_prefix(TRAINED_KEY) / "evaluation" / "evaluation.json").read_text())
    labels = {row["CustomerID"]: row["Churn"] == "Yes" for row in csv.DictReader(SAMPLE_CSV.open())}
    assert roc_auc_score([labels[row["CustomerID"]] for row in scored], probabilities) >= \
        evaluation["metrics"]["roc_auc"] - 0.01

    # scoring the same date again reuses the completed Spark job: nothing runs twice
    again = project.dags_test("2026-11-21", dag_id=SCORING_DAG)
    assert again.returncode == 0, again.log[-3000:]
    assert project.xcom("2026-11-21", "score_customers", dag_id=SCORING_DAG)["reused"] is True


def test_a_two_instance_spark_job_runs_on_two_workers_and_writes_only_where_its_request_says(spark_champion) -> None:
    project = spark_champion
    before = store_files(project.local_root)
    project.extra_env["CHURN_SPARK_SCORE_INSTANCE_COUNT"] = "2"
    try:
        outcome = project.dags_test("2026-11-23", dag_id=SCORING_DAG)
    finally:
        del project.extra_env["CHURN_SPARK_SCORE_INSTANCE_COUNT"]

    assert outcome.returncode == 0, outcome.log[-6000:]
    job = "churn-score-20261123T000000Z"
    description = job_description(project, job)
    assert description["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 2
    job_log = (project.local_root / "jobs" / job / "output.log").read_text()
    assert "loopback Spark cluster: master spark://127.0.0.1:" in job_log and ", 2 workers of " in job_log
    assert "running on spark://127.0.0.1:" in job_log
    assert "Registered executor" in job_log and " with ID 1, " in job_log  # an executor on each worker
    summary = json.loads((project.scoring_prefix("20261123T000000Z") / "summary.json").read_text())
    assert summary["customers"] == 10_000

    # what changed in the store: this scoring run's prefix, the job's workspace, and the one record
    # the publishing task keeps beside them (which champion was scored); nothing else
    run_prefix = project.scoring_prefix("20261123T000000Z")
    workspace = project.local_root / "jobs" / job
    scored_record = next((project.local_root / "s3").rglob("scored-champions/customer-churn/v1.json"))
    changed = {path for path, stamp in store_files(project.local_root).items() if before.get(path) != stamp}
    outside = {path for path in changed if not path.is_relative_to(run_prefix) and not path.is_relative_to(workspace)
               and path != scored_record}
    assert not outside, sorted(map(str, outside))
    written_by_spark = {path.relative_to(run_prefix).parts[0] for path in changed if path.is_relative_to(run_prefix)}
    assert {"spark-scores", "spark-work", "spark-events"} <= written_by_spark  # what its request names


def test_on_telco_the_spark_version_reaches_the_published_quality(airflow_project, telco_csv) -> None:
    airflow_project.extra_env.update(SPARK)
    outcome = airflow_project.dags_test("2026-11-24", {"input_uri": str(telco_csv),
                                                       "schema_uri": str(CONFIG / "telco_schema.json")})

    assert outcome.returncode == 0, outcome.log[-6000:]
    assert outcome.states["register_model"] == "success"
    (version,) = airflow_project.versions()
    assert version["tags"]["engine"] == "spark-mllib"
    evaluation = json.loads((airflow_project.run_prefix("20261124T000000Z") / "evaluation" / "evaluation.json")
                            .read_text())
    assert evaluation["metrics"]["accuracy"] >= 0.78 and evaluation["metrics"]["roc_auc"] >= 0.82
