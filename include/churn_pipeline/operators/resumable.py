"""The backend-independent body of a job task, and the interface each backend implements.

A job task plans its attempt (``churn_pipeline.domain.attempt_planning``): it reuses this run's
``Completed`` job, awaits a running one, or starts the next attempt with the request built from the
upstream tasks' real results. Then it judges the end: a job that did not complete fails the task; if
its reason says the input broke the data contract, without retrying (the same input fails the same
way), otherwise with a retry (capacity, throttling, a lost instance may pass).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from churn_pipeline.domain.attempt_planning import Action, failure_reason, is_bad_input, is_running, plan_attempt
from churn_pipeline.domain.payloads import (
    EVALUATE_TASK,
    FAILURE_KEY,
    FIND_CHAMPION_TASK,
    PREPROCESS_TASK,
    STAGE_CUSTOMERS_TASK,
    STAGE_TASK,
    TRAIN_TASK,
    ChampionLookup,
    JobFailure,
    JobResult,
    Payload,
    StagedInputs,
    StagedScoring,
)
from churn_pipeline.domain.sagemaker_api import COMPLETED, JobKind
from churn_pipeline.domain.settings import Settings, load_settings
from churn_pipeline.requests.common import SCORE_STEP
from churn_pipeline.requests.steps import request_for_step
from churn_pipeline.tasks._run import pull

# Which task staged a step's run (its key, image and inputs), and its payload.
STAGED_BY: dict[str, tuple[str, type[Payload]]] = {
    PREPROCESS_TASK: (STAGE_TASK, StagedInputs),
    TRAIN_TASK: (STAGE_TASK, StagedInputs),
    EVALUATE_TASK: (STAGE_TASK, StagedInputs),
    SCORE_STEP: (STAGE_CUSTOMERS_TASK, StagedScoring),
}
# What each job's request is built from, besides the staged inputs: upstream task -> its payload.
UPSTREAM_RESULTS: dict[str, dict[str, type[Payload]]] = {
    PREPROCESS_TASK: {},
    TRAIN_TASK: {PREPROCESS_TASK: JobResult},
    EVALUATE_TASK: {PREPROCESS_TASK: JobResult, TRAIN_TASK: JobResult, FIND_CHAMPION_TASK: ChampionLookup},
    SCORE_STEP: {},
}


class JobFailed(AirflowException):
    """A job ended Failed or Stopped for a reason that a retry may cure."""


class JobStillRunning(AirflowException):
    """Waiting for a job gave up while it still runs; the next attempt awaits it instead of starting another."""


class ResumableJobMixin(ABC):
    """Mixed into a backend's operator class before its ``BaseOperator``; the backend supplies the
    three abstract methods, each returning SageMaker's ``Describe*Job`` shape."""

    step: str
    kind: JobKind
    log: Any  # the operator's logger, from BaseOperator

    @abstractmethod
    def describe_job(self, name: str, settings: Settings) -> Mapping[str, Any] | None:
        """The job's description, or None when no such job exists."""

    @abstractmethod
    def await_job(self, name: str, settings: Settings, context: Any) -> Mapping[str, Any]:
        """Wait for a running job of this run; its description once it stops running (or waiting gives up)."""

    @abstractmethod
    def run_job(self, request: dict[str, Any], settings: Settings, context: Any) -> Mapping[str, Any]:
        """Start a job from ``request`` and wait; its final description."""

    def execute(self, context: Any) -> dict[str, Any]:
        settings = load_settings()  # once per task, passed down
        ti = context["ti"]
        stage_task, staged_payload = STAGED_BY[self.step]
        staged = pull(ti, stage_task, staged_payload)
        key = staged.run_key  # type: ignore[attr-defined]  # every staged payload names its run
        plan = plan_attempt(self.kind, settings.job_prefix, self.step, key,
                            lambda name: self.describe_job(name, settings))
        if plan.action is Action.REUSE:
            self.log.info("reusing %s, which already completed for this run: no new job", plan.job_name)
            description = plan.description
        elif plan.action is Action.AWAIT:
            self.log.info("%s is still running for this run; waiting for it instead of starting another",
                          plan.job_name)
            description = self.await_job(plan.job_name, settings, context)
        else:
            upstream = {task_id: pull(ti, task_id, payload) for task_id, payload in UPSTREAM_RESULTS[self.step].items()}
            request = request_for_step(self.step, settings, plan.job_name, staged, upstream,
                                       context.get("params") or {})
            self.log.info("starting %s job %s (attempt %d):\n%s", self.kind.value.lower(), plan.job_name,
                          plan.attempt, json.dumps(request, indent=2, sort_keys=True))
            description = self.run_job(request, settings, context)
        if description is None:
            raise AirflowException(f"{plan.job_name} has no description after it ran")
        return self._judge(plan.job_name, plan.action, plan.attempt, description, ti)

    def _judge(self, name: str, action: Action, attempt: int, description: Mapping[str, Any],
               ti: Any) -> dict[str, Any]:
        status = description[self.kind.status_field]
        if is_running(self.kind, description):
            raise JobStillRunning(f"{name} is still {status} after waiting; the next attempt of this task awaits it "
                                  "instead of starting another")
        if status != COMPLETED:
            reason = failure_reason(self.kind, description)
            ti.xcom_push(key=FAILURE_KEY, value=JobFailure(job_name=name, reason=reason).to_xcom())
            self.log.error("%s", reason)
            if is_bad_input(reason):
                raise AirflowFailException(reason)  # the same input fails the same way: do not pay again
            raise JobFailed(reason)
        result = JobResult.from_description(self.kind, description, reused=action is Action.REUSE, attempt=attempt)
        self.log.info("%s: %s", name, json.dumps(result.to_xcom(), sort_keys=True))
        return result.to_xcom()
