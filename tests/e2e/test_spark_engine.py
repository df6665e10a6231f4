"""The Spark engine through real Airflow on the local backend: the training DAG on Spark registers a
version tagged ``engine=spark-mllib`` (on the bundled sample, and on Telco with the published
quality); the scoring DAG scores an approved Spark champion with a Spark processing job and
publishes the same scores.csv / summary.json as Batch Transform; a two-instance request runs on two
Spark workers and writes only where its request says; and the champion comparison works across the
engines, a Spark challenger against a scikit-learn champion and back, each champion scoring the
run's held-out customers in its own image (``score_champion``).

One project (one Airflow home, one registry) holds, in this order, the sample's scikit-learn run and
its approval (version 1), the Spark run compared with it (version 2), that version's approval and
scoring runs, and a scikit-learn run compared with the Spark champion; Telco trains once in a
project of its own (its schema is another)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import CONFIG, SAMPLE_CSV
from tests.e2e.conftest import APPROVAL_DAG, SCORING_DAG

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("spark-engine")]

SPARK = {"CHURN_ENGINE": "spark"}
SKLEARN_ON, SKLEARN_KEY = "2026-11-18", "20261118T000000Z"  # version 1, the first champion
TRAINED_ON = "2026-11-19"
TRAINED_KEY = "20261119T000000Z"  # the Spark version, 2
SPARK_VERSION = 2
COMPARED_ON, COMPARED_KEY = "2026-11-22", "20261122T000000Z"  # scikit-learn against the Spark champion
# Registered whatever the champion's figures: these runs are about the comparison, not its verdict
REPORT = {"compare_with_champion": "report"}
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


def evaluation_of(project, key: str) -> dict:
    return json.loads((project.run_prefix(key) / "evaluation" / "evaluation.json").read_text())


def assert_the_champion_was_valued_as_on_its_own_run(challenger: dict, champion_run: dict, version: int) -> None:
    """The champion block of ``challenger``, scored by the champion's own image, holds the figures the
    champion's own evaluation measured: the split is the same in both engines, so both runs hold out
    the same customers."""
    block = challenger["champion"]
    assert block["comparable"] is True and block["reason"] is None and block["version"] == version
    for name in ("accuracy", "precision", "recall", "f1_score", "roc_auc"):
        assert block["metrics"][name] == pytest.approx(champion_run["metrics"][name], abs=1e-9), name
        assert block["delta"][name] == pytest.approx(challenger["metrics"][name] - block["metrics"][name], abs=1e-12)
    assert block["confusion_matrix"] == champion_run["confusion_matrix"]


@pytest.fixture(scope="module")
def sklearn_champion(module_project):
    """The sample trained on scikit-learn and approved: version 1, the champion the Spark run meets."""
    module_project.extra_env["CHURN_ENGINE"] = "sklearn"
    trained = module_project.dags_test(SKLEARN_ON)
    assert trained.returncode == 0, trained.log[-6000:]
    approved = module_project.dags_test("2026-11-18T12:00:00+00:00", {"version": 1}, dag_id=APPROVAL_DAG)
    assert approved.returncode == 0, approved.log[-3000:]
    return module_project


@pytest.fixture(scope="module")
def spark_project(sklearn_champion):
    """The sample trained on Spark once, against the scikit-learn champion, for every test that reads its run."""
    sklearn_champion.extra_env.update(SPARK)
    outcome = sklearn_champion.dags_test(TRAINED_ON, REPORT)
    assert outcome.returncode == 0, outcome.log[-6000:]
    return sklearn_champion, outcome


@pytest.fixture(scope="module")
def spark_champion(spark_project):
    """The sample's Spark version approved through the approval DAG: the champion scoring uses."""
    project, _ = spark_project
    approved = project.dags_test("2026-11-19T12:00:00+00:00", {"version": SPARK_VERSION}, dag_id=APPROVAL_DAG)
    assert approved.returncode == 0, approved.log[-3000:]
    return project


def test_the_training_dag_on_spark_runs_its_three_jobs_in_the_spark_image_and_registers_a_spark_version(
        spark_project) -> None:
    project, outcome = spark_project

    assert outcome.states == {"extract_customers": "skipped", "stage_inputs": "success", "find_champion": "success",
                              "preprocess": "success", "train": "success", "score_champion": "success",
                              "evaluate": "success", "check_accuracy": "success", "register_model": "success",
                              "notify_failure": "skipped"}
    for step in TRAINING_JOBS:  # train too: on Spark it is a processing job, not a training job
        description = job_description(project, f"churn-{step}-{TRAINED_KEY}")
        assert is_spark_processing_job(description), step
        assert description["ProcessingJobStatus"] == "Completed"
        assert description["AppSpecification"]["ContainerEntrypoint"][-1].endswith(f"/{step}_spark.py")
    assert project.xcom(TRAINED_ON, "stage_inputs")["engine"] == "spark"
    version = next(item for item in project.versions() if item["version"] == SPARK_VERSION)
    assert version["tags"]["engine"] == "spark-mllib"
    assert version["tags"]["approval_status"] == "PendingManualApproval"
    assert version["source"].endswith("/output/model.tar.gz")
    summary = outcome.log[outcome.log.index("what this run did:"):]
    assert "  engine        Spark, SageMaker's Spark processing image: engine=spark was asked for" in summary
    assert f"registered    customer-churn version {SPARK_VERSION} (PendingManualApproval)" in summary
    assert "for the four jobs" in summary  # score_champion's job is the run's too


def test_a_spark_challenger_is_compared_with_a_scikit_learn_champion_scored_in_its_own_image(spark_project) -> None:
    project, _ = spark_project
    description = job_description(project, f"churn-score-champion-{TRAINED_KEY}")

    assert description["ProcessingJobStatus"] == "Completed" and not is_spark_processing_job(description)
    assert description["AppSpecification"]["ContainerEntrypoint"][-1].endswith("/evaluation.py")
    assert description["AppSpecification"]["ContainerArguments"][0] == "--write-scores"
    assert_the_champion_was_valued_as_on_its_own_run(evaluation_of(project, TRAINED_KEY),
                                                     evaluation_of(project, SKLEARN_KEY), version=1)


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
    assert {row["model_version"] for row in scored} == {str(SPARK_VERSION)}
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
    assert f"10000 customers scored with version {SPARK_VERSION}" in outcome.log

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
    scored_record = next((project.local_root / "s3").rglob(f"scored-champions/customer-churn/v{SPARK_VERSION}.json"))
    changed = {path for path, stamp in store_files(project.local_root).items() if before.get(path) != stamp}
    outside = {path for path in changed if not path.is_relative_to(run_prefix) and not path.is_relative_to(workspace)
               and path != scored_record}
    assert not outside, sorted(map(str, outside))
    written_by_spark = {path.relative_to(run_prefix).parts[0] for path in changed if path.is_relative_to(run_prefix)}
    assert {"spark-scores", "spark-work", "spark-events"} <= written_by_spark  # what its request names


def test_a_scikit_learn_challenger_is_compared_with_the_spark_champion_scored_by_a_spark_job(spark_champion) -> None:
    project = spark_champion
    project.extra_env["CHURN_ENGINE"] = "sklearn"
    try:
        outcome = project.dags_test(COMPARED_ON, REPORT)
    finally:
        project.extra_env.update(SPARK)

    assert outcome.returncode == 0, outcome.log[-6000:]
    assert outcome.states["score_champion"] == "success" and outcome.states["register_model"] == "success"
    description = job_description(project, f"churn-score-champion-{COMPARED_KEY}")
    assert is_spark_processing_job(description) and description["ProcessingJobStatus"] == "Completed"
    assert description["AppSpecification"]["ContainerEntrypoint"][-1].endswith("/evaluate_spark.py")
    arguments = description["AppSpecification"]["ContainerArguments"]
    assert "--write-scores" in arguments and arguments[arguments.index("--holdout") + 1].endswith(
        f"/runs/{COMPARED_KEY}/preprocessing/holdout")
    assert_the_champion_was_valued_as_on_its_own_run(evaluation_of(project, COMPARED_KEY),
                                                     evaluation_of(project, TRAINED_KEY), version=SPARK_VERSION)


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
