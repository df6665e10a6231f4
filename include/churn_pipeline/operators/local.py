"""The job tasks (``preprocess``, ``train``, ``evaluate``): resumable on both backends.

A job task first looks for this run's jobs of its step: a ``Completed`` one is reused (no new job,
nothing paid twice), a running one is awaited, and after a ``Failed`` or ``Stopped`` one the next
attempt starts under a new, still deterministic name (``...-r2``). A job whose failure reason says
the input broke the data contract fails the task without retrying; any other failure is retried.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from churn_pipeline.jobs import KIND_OF_STEP, failure_reason, is_bad_input, job_result, plan_attempt, step_request
from churn_pipeline.layout import RunLayout
from churn_pipeline.settings import Settings, load_settings
from churn_pipeline.tasks import FAILURE_KEY, STAGE_TASK, pull_result

UPSTREAM_RESULTS = {"preprocess": (), "train": ("preprocess",), "evaluate": ("preprocess", "train")}
LOCAL_POLL_SECONDS = 1.0


class JobFailed(AirflowException):
    """A job ended Failed or Stopped for a reason that a retry may cure."""


class ChurnJobMixin:
    """Backend-independent body of a job task; subclasses supply describe / await / run."""

    step: str
    kind: str
    # Supplied by each backend's operator class:
    describe_job: Callable[[str], Mapping[str, Any] | None]  # None when no such job exists
    await_job: Callable[[str, Any], Mapping[str, Any]]  # (job name, context) -> final description
    run_job: Callable[[dict[str, Any], Any], Mapping[str, Any]]  # (request, context) -> final description

    def execute(self, context: Any) -> dict[str, Any]:
        settings = load_settings()
        ti = context["ti"]
        staged = pull_result(ti, STAGE_TASK)
        layout = RunLayout(settings.base_uri, staged["run_key"])
        plan = plan_attempt(self.kind, settings.job_prefix, self.step, layout.key, self.describe_job)
        if plan.action == "reuse":
            self.log.info("reusing %s, which already completed for this run: no new job", plan.job_name)
            description = plan.description
        elif plan.action == "await":
            self.log.info("%s is still running for this run; waiting for it instead of starting another",
                          plan.job_name)
            description = self.await_job(plan.job_name, context)
        else:
            upstream = {task_id: pull_result(ti, task_id) for task_id in UPSTREAM_RESULTS[self.step]}
            request = step_request(self.step, settings, layout, plan.job_name, staged, upstream)
            self.log.info("starting %s job %s (attempt %d):\n%s", self.kind.lower(), plan.job_name, plan.attempt,
                          json.dumps(request, indent=2, sort_keys=True))
            description = self.run_job(request, context)
        assert description is not None
        if description[f"{self.kind}JobStatus"] != "Completed":
            reason = failure_reason(self.kind, description)
            ti.xcom_push(key=FAILURE_KEY, value={"job_name": plan.job_name, "reason": reason})
            self.log.error("%s", reason)
            if is_bad_input(reason):
                raise AirflowFailException(reason)  # the same input fails the same way: do not pay again
            raise JobFailed(reason)
        result = job_result(self.kind, description, reused=plan.action == "reuse", attempt=plan.attempt)
        self.log.info("%s: %s", plan.job_name, json.dumps(result, sort_keys=True))
        return result


class LocalJobOperator(ChurnJobMixin, BaseOperator):
    """The local twin of the SageMaker job operators: the same requests, run by ``LocalJobRunner``."""

    ui_color = "#e8f4ea"

    def __init__(self, *, step: str, settings: Settings, **kwargs: Any):  # noqa: ARG002 - same signature on both backends
        super().__init__(**kwargs)
        self.step = step
        self.kind = KIND_OF_STEP[step]
        self._runner: Any = None  # built at run time from the worker's settings

    @property
    def runner(self) -> Any:
        if self._runner is None:
            from churn_pipeline.local_runner import LocalJobRunner
            from churn_pipeline.objectstore import LocalObjectStore

            self._runner = LocalJobRunner(LocalObjectStore(load_settings().local_root), log=self.log.info)
        return self._runner

    def describe_job(self, name: str) -> Mapping[str, Any] | None:
        return self.runner.describe(self.kind, name)

    def await_job(self, name: str, context: Any) -> Mapping[str, Any]:
        while True:
            description = self.runner.describe(self.kind, name)
            if description[f"{self.kind}JobStatus"] not in ("InProgress", "Stopping"):
                return description
            time.sleep(LOCAL_POLL_SECONDS)

    def run_job(self, request: dict[str, Any], context: Any) -> Mapping[str, Any]:
        if self.kind == "Processing":
            return self.runner.run_processing(request)
        return self.runner.run_training(request)

    def on_kill(self) -> None:
        if self._runner is not None:
            self._runner.kill()


def job_task(step: str, settings: Settings, **kwargs: Any) -> BaseOperator:
    """The job task for ``step`` on the configured backend; same task id and graph on both."""
    if settings.backend == "local":
        return LocalJobOperator(task_id=step, step=step, settings=settings, **kwargs)
    from churn_pipeline.sagemaker_operators import SAGEMAKER_OPERATORS

    return SAGEMAKER_OPERATORS[KIND_OF_STEP[step]](task_id=step, step=step, settings=settings, **kwargs)
