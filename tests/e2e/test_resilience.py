"""Retries, reruns, crashes and faults on the local backend through real Airflow: nothing done twice,
nothing paid twice, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import AIRFLOW, AirflowProject

pytestmark = pytest.mark.e2e
# the tests that share the finished run: one worker runs them, so that it is made once
SHARES_THE_FINISHED_RUN = pytest.mark.xdist_group("resilience-finished-run")
KEY = "20261110T000000Z"


def job_descriptions(project: AirflowProject) -> dict[str, dict]:
    jobs = project.local_root / "jobs"
    return {path.parent.name: json.loads(path.read_text()) for path in sorted(jobs.glob("*/description.json"))}


def run_outputs(project: AirflowProject, key: str) -> dict[str, bytes]:
    run = project.run_prefix(key)
    keep = ("preprocessing", "evaluation")
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.relative_to(run).parts[0] in keep}


@pytest.fixture(scope="module")
def finished_run(module_project) -> AirflowProject:
    """A project with one undisturbed, finished run of 2026-11-10 (version 1), shared by the tests that
    rerun it, compare a disturbed run with it, or break or kill a later run beside it; none of them
    changes that run, and each compares the registry with what it held before, so they pass in any
    order."""
    finished = module_project.dags_test("2026-11-10")
    assert finished.returncode == 0, finished.log[-5000:]
    return module_project


@SHARES_THE_FINISHED_RUN
def test_rerunning_a_finished_run_reuses_its_jobs_and_its_version(finished_run) -> None:
    airflow_project = finished_run
    before = job_descriptions(airflow_project)
    outputs = run_outputs(airflow_project, KEY)
    versions = [v["version"] for v in airflow_project.versions()]

    again = airflow_project.dags_test("2026-11-10")  # every task of the run runs again, as after a clear

    assert again.returncode == 0, again.log[-4000:]
    assert job_descriptions(airflow_project) == before, "no new job, no job touched"
    assert again.log.count("which already completed for this run: no new job") == 3
    assert run_outputs(airflow_project, KEY) == outputs
    assert [v["version"] for v in airflow_project.versions()] == versions and versions[0] == 1
    assert "found this run's version 1" in again.log


@SHARES_THE_FINISHED_RUN
def test_a_job_killed_mid_way_is_retried_and_gives_the_undisturbed_outputs(airflow_project, finished_run) -> None:
    """Kill the whole worker (the `airflow dags test` process group) while training runs; the next
    attempt finds the job abandoned, starts `-r2` and ends with the same bytes as a clean run."""
    process = subprocess.Popen([AIRFLOW, "dags", "test", "customer_churn_pipeline", "2026-11-10"],
                               env=airflow_project.env, cwd=airflow_project.home, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    training = airflow_project.local_root / "jobs" / f"churn-train-{KEY}" / "ml" / "input" / "data" / "train"
    deadline = time.time() + 300
    while not training.is_dir() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert training.is_dir(), "training never started"
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert job_descriptions(airflow_project)[f"churn-train-{KEY}"]["TrainingJobStatus"] == "InProgress"

    retried = airflow_project.dags_test("2026-11-10")

    assert retried.returncode == 0, retried.log[-4000:]
    descriptions = job_descriptions(airflow_project)
    assert descriptions[f"churn-train-{KEY}"]["TrainingJobStatus"] == "Failed"
    assert "ended before the job did" in descriptions[f"churn-train-{KEY}"]["FailureReason"]
    assert descriptions[f"churn-train-{KEY}-r2"]["TrainingJobStatus"] == "Completed"
    assert descriptions[f"churn-preprocess-{KEY}"]["ProcessingJobStatus"] == "Completed"  # reused, not rerun

    undisturbed = finished_run  # the same date run once without a kill
    assert run_outputs(airflow_project, KEY) == run_outputs(undisturbed, KEY)

    def model(project, job: str) -> bytes:
        return (project.run_prefix(KEY) / "model" / job / "output" / "model.tar.gz").read_bytes()

    assert model(airflow_project, f"churn-train-{KEY}-r2") == model(undisturbed, f"churn-train-{KEY}")


@SHARES_THE_FINISHED_RUN
def test_a_task_process_killed_alone_leaves_its_job_running_and_the_rerun_awaits_it(finished_run) -> None:
    """SIGKILL to the `airflow` process alone (not its group) while training runs: the job runs on, as a
    SageMaker job would; the rerun awaits it instead of starting `-r2`, and the model is the one an
    undisturbed run trains."""
    airflow_project, key = finished_run, "20261116T000000Z"
    process = subprocess.Popen([AIRFLOW, "dags", "test", "customer_churn_pipeline", "2026-11-16"],
                               env=airflow_project.env, cwd=airflow_project.home, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    description = airflow_project.local_root / "jobs" / f"churn-train-{key}" / "description.json"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and "job_pid" not in (
            json.loads(description.read_text()).get("LocalProcess", {}) if description.is_file() else {}):
        time.sleep(0.05)
    assert description.is_file(), "training never started"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    rerun = airflow_project.dags_test("2026-11-16")

    assert rerun.returncode == 0, rerun.log[-4000:]
    assert "is still running for this run; waiting for it instead of starting another" in rerun.log \
        or "ended after the task that started it was lost" in rerun.log
    trained = [name for name in job_descriptions(airflow_project) if name.startswith(f"churn-train-{key}")]
    assert trained == [f"churn-train-{key}"], "one training job, no -r2"
    assert job_descriptions(airflow_project)[f"churn-train-{key}"]["TrainingJobStatus"] == "Completed"
    assert len([v for v in airflow_project.versions() if v["tags"]["run_key"] == key]) == 1
    assert json.loads((airflow_project.run_prefix(key) / "outcome.json").read_text())["status"] == "registered"


def test_two_runs_in_parallel_stay_apart(airflow_project, tmp_path, migrated_db) -> None:
    """Two workers share one local store and one MLflow registry, as two runs in flight do."""
    other = AirflowProject(home=tmp_path / "other-home", local_root=airflow_project.local_root)
    other.home.mkdir()
    other.home.joinpath("airflow.db").write_bytes(migrated_db.read_bytes())
    processes = [subprocess.Popen([AIRFLOW, "dags", "test", "customer_churn_pipeline", date], env=project.env,
                                  cwd=project.home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for project, date in ((airflow_project, "2026-11-11"), (other, "2026-11-12"))]
    assert [process.wait(timeout=900) for process in processes] == [0, 0]

    versions = airflow_project.versions()
    assert sorted(v["tags"]["run_key"] for v in versions) == ["20261111T000000Z", "20261112T000000Z"]
    assert sorted(v["version"] for v in versions) == [1, 2]
    for key in ("20261111T000000Z", "20261112T000000Z"):
        version = next(v for v in versions if v["tags"]["run_key"] == key)
        assert key in version["source"]
        assert version["tags"]["evaluation_uri"].endswith(f"{key}/evaluation/evaluation.json")
        assert (airflow_project.run_prefix(key) / "evaluation" / "evaluation.json").is_file()
    jobs = sorted(job_descriptions(airflow_project))
    assert len(jobs) == 6 and all(job.endswith(("20261111T000000Z", "20261112T000000Z")) for job in jobs)


def test_an_input_uri_that_escapes_the_store_is_refused_before_any_job(airflow_project) -> None:
    """Through Airflow, one of the URIs the store refuses (tests/unit/test_objectstore.py has them all)."""
    outcome = airflow_project.dags_test("2026-11-13", {"input_uri": "s3://customer-churn-pipeline/../../etc/passwd"})
    assert outcome.states["stage_inputs"] == "failed"
    assert "input_uri: unsafe key in 's3://customer-churn-pipeline/../../etc/passwd'" in outcome.log
    assert not (airflow_project.local_root / "jobs").exists()


@SHARES_THE_FINISHED_RUN
def test_an_unusable_local_root_gives_a_clear_error_and_leaves_earlier_runs_intact(finished_run) -> None:
    airflow_project = finished_run
    earlier, versions = run_outputs(airflow_project, KEY), [v["version"] for v in airflow_project.versions()]
    blocker = airflow_project.run_prefix("20261115T000000Z")
    blocker.write_text("a file where the run's folder must go")  # mkdir fails as on a read-only or broken root

    outcome = airflow_project.dags_test("2026-11-15")

    assert outcome.states["stage_inputs"] == "failed"
    assert "cannot stage the run's inputs under" in outcome.log
    assert run_outputs(airflow_project, KEY) == earlier
    assert [v["version"] for v in airflow_project.versions()] == versions, "no version registered"
    # the team is still told, once, why: the marker lives beside the run's prefix, not in it
    told = [item for item in airflow_project.notifications() if item["run_key"] == "20261115T000000Z"]
    assert [(item["reason"], item["subject"]) for item in told] == [
        ("pipeline_failed", "Churn pipeline failed at stage_inputs")]
    assert "cannot stage the run's inputs under" in told[0]["message"]
    assert "cannot record this run's outcome at" in outcome.log  # one line, no traceback of NotADirectoryError
    assert "NotADirectoryError" not in outcome.log
    assert blocker.read_text() == "a file where the run's folder must go"
    # and the run is found by the message it sent, not answered with "no run found"
    summary = subprocess.run([str(Path(AIRFLOW).with_name("churn")), "summary", "--run-key", "20261115T000000Z"],
                             env=airflow_project.env, capture_output=True, text=True, timeout=120)
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout.startswith("run 20261115T000000Z\n") and \
        "  notified      pipeline_failed: Churn pipeline failed at stage_inputs" in summary.stdout
