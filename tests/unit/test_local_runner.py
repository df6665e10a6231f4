"""The local runner's bookkeeping, which needs no job process: how a recorded job reads when the
process running it is gone, and which attempt a job task runs, reuses or awaits. The jobs themselves
run in processes: tests/scripts/test_local_jobs.py and test_local_jobs_in_the_twin.py."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from churn_pipeline.domain.attempt_planning import plan_attempt
from churn_pipeline.domain.sagemaker_api import JobKind
from churn_pipeline.local.runner import LocalJobRunner
from churn_pipeline.services.objectstore import LocalObjectStore

KEY = "20261126T020000Z"
NO_SUCH_PID = 2 ** 22 + 12345  # above Linux's highest pid (pid_max is at most 2**22)


def test_a_job_whose_process_died_reads_as_failed(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "root")
    runner = LocalJobRunner(store, log=lambda line: None)
    name = "churn-train-" + KEY
    path = store.root / "jobs" / name / "description.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"TrainingJobName": name, "TrainingJobStatus": "InProgress",
                                "LocalProcess": {"pid": NO_SUCH_PID, "host": socket.gethostname()}}))

    description = runner.describe(JobKind.TRAINING, name)

    assert description["TrainingJobStatus"] == "Failed"
    assert "ended before the job did" in description["FailureReason"]


def test_attempts_reuse_completed_await_running_and_retry_after_failed() -> None:
    jobs: dict[str, dict] = {}

    def describe(name: str):
        return jobs.get(name)

    plan = plan_attempt(JobKind.PROCESSING, "churn", "preprocess", KEY, describe)
    assert (plan.action, plan.job_name) == ("start", "churn-preprocess-" + KEY)
    jobs[plan.job_name] = {"ProcessingJobStatus": "InProgress"}
    assert plan_attempt(JobKind.PROCESSING, "churn", "preprocess", KEY, describe).action == "await"
    jobs[plan.job_name] = {"ProcessingJobStatus": "Failed"}
    retry = plan_attempt(JobKind.PROCESSING, "churn", "preprocess", KEY, describe)
    assert (retry.action, retry.job_name, retry.attempt) == ("start", f"churn-preprocess-{KEY}-r2", 2)
    jobs[retry.job_name] = {"ProcessingJobStatus": "Stopped"}
    jobs[f"churn-preprocess-{KEY}-r3"] = {"ProcessingJobStatus": "Completed"}
    reuse = plan_attempt(JobKind.PROCESSING, "churn", "preprocess", KEY, describe)
    assert (reuse.action, reuse.attempt) == ("reuse", 3)


def test_a_running_jobs_request_counts_as_changed_only_in_the_fields_its_description_records() -> None:
    from churn_pipeline.domain.attempt_planning import changed_fields

    request = {"ProcessingJobName": "j", "AppSpecification": {"ContainerArguments": ("--a", "1")}, "Tags": []}
    assert changed_fields(request, {"ProcessingJobName": "j", "AppSpecification": {"ContainerArguments": ["--a", "1"]},
                                    "ProcessingJobStatus": "InProgress"}) == []
    assert changed_fields(request, {"ProcessingJobName": "j", "AppSpecification": {"ContainerArguments": ["--b"]},
                                    "Tags": [{"Key": "k", "Value": "v"}]}) == ["AppSpecification", "Tags"]
