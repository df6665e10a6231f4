"""The backend-independent body of a job task, and the interface each backend implements.

A job task plans its attempt (``churn_pipeline.domain.attempt_planning``): it reuses this run's
``Completed`` job, awaits a running one, or starts the next attempt with the request built from the
upstream tasks' real results. Then it judges the end: a job that did not complete fails the task; if
its reason says the input broke the data contract, without retrying (the same input fails the same
way), otherwise with a retry (capacity, throttling, a lost instance may pass).

The kind of job a task runs follows its run's engine (``domain.engine.job_kind``): on Spark the
train task runs a Processing job. The task learns it from the staged payload, so every attempt of
the run, and a retry, plans and reuses jobs of the kind its run began with.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from churn_pipeline.domain.sagemaker_api import COMPLETED, JobKind
from churn_pipeline.domain.settings import Settings, load_settings
from churn_pipeline.domain.steps import KIND_OF_STEP, check_inputs

if TYPE_CHECKING:
    from churn_pipeline.domain.attempt_planning import Action

# The job task's arguments that the DAG fills from upstream tasks (XComArgs, resolved as templates).
JOB_INPUT_FIELDS = ("staged", "inputs")


class JobFailed(AirflowException):
    """A job ended Failed or Stopped for a reason that a retry may cure."""


class JobStillRunning(AirflowException):
    """Waiting for a job gave up while it still runs; the next attempt awaits it instead of starting another."""


class ResumableJobMixin(ABC):
    """Mixed into a backend's operator class before its ``BaseOperator``; the backend supplies the
    three abstract methods, each returning SageMaker's ``Describe*Job`` shape."""

    step: str
    kind: JobKind
    staged: Any  # the staging task's result (an XComArg until rendered)
    inputs: Mapping[str, Any]  # the upstream results the request is built from, by role
    log: Any  # the operator's logger, from BaseOperator

    def _wire(self, step: str, staged: Any, inputs: Mapping[str, Any] | None) -> None:
        """Take the step and what the DAG hands it; a task wired to the wrong inputs fails at parse time."""
        check_inputs(step, inputs or {})
        self.step, self.staged, self.inputs = step, staged, dict(inputs or {})
        self.kind = KIND_OF_STEP[step]  # the scikit-learn engine's; execute takes the run's (_follow_engine)

    def _follow_engine(self, staged: Any) -> None:
        """Run the kind of job the staged run's engine runs for this step (a staged scoring run, which
        names no engine, keeps the step's own kind)."""
        from churn_pipeline.domain.engine import Engine, job_kind

        self.kind = job_kind(self.step, getattr(staged, "engine", Engine.SKLEARN))

    @abstractmethod
    def describe_job(self, name: str, settings: Settings) -> Mapping[str, Any] | None:
        """The job's description, or None when no such job exists."""

    @abstractmethod
    def await_job(self, name: str, settings: Settings, context: Any) -> Mapping[str, Any]:
        """Wait for a running job of this run; its description once it stops running (or waiting gives up)."""

    @abstractmethod
    def run_job(self, request: dict[str, Any], settings: Settings, context: Any) -> Mapping[str, Any]:
        """Start a job from ``request`` and wait; its final description."""

    def replace_running_job(self, name: str, request: dict[str, Any], description: Mapping[str, Any],
                            settings: Settings) -> bool:
        """Whether the running job ``name`` was stopped because it runs another request than this
        attempt's, so that the next attempt starts instead of awaiting it. By default never: a
        SageMaker job of this run is awaited, whatever it runs."""
        return False

    def execute(self, context: Any) -> dict[str, Any]:
        # imported when the task runs, not when the scheduler parses the DAG that holds the task
        from churn_pipeline.domain.attempt_planning import Action, plan_attempt
        from churn_pipeline.domain.payloads import PayloadError
        from churn_pipeline.requests.steps import read_inputs, request_for_step, skip_reason

        settings = load_settings()  # once per task, passed down
        ti = context["ti"]
        try:
            staged, inputs = read_inputs(self.step, self.staged, self.inputs)
        except PayloadError as error:  # an upstream result is missing or malformed: no retry mends it
            raise AirflowFailException(f"the {self.step} job cannot be built from its upstream results: {error}; "
                                       "run (or clear) the upstream tasks first") from None
        unneeded = skip_reason(self.step, staged, inputs, context.get("params") or {})
        if unneeded:
            raise AirflowSkipException(f"no {self.step} job on this run: {unneeded}")
        self._follow_engine(staged)
        key = staged.run_key  # type: ignore[attr-defined]  # every staged payload names its run
        plan = plan_attempt(self.kind, settings.job_prefix, self.step, key,
                            lambda name: self.describe_job(name, settings))
        if plan.action is Action.AWAIT and plan.description is not None:
            request = request_for_step(self.step, settings, plan.job_name, staged, inputs, context.get("params") or {})
            if self.replace_running_job(plan.job_name, request, plan.description, settings):
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
            request = request_for_step(self.step, settings, plan.job_name, staged, inputs,
                                       context.get("params") or {})
            self._check_cost(request, settings, context.get("params") or {})
            self.log.info("starting %s job %s (attempt %d):\n%s", self.kind.value.lower(), plan.job_name,
                          plan.attempt, json.dumps(request, indent=2, sort_keys=True))
            description = self.run_job(request, settings, context)
        if description is None:
            raise AirflowException(f"{plan.job_name} has no description after it ran")
        return self._judge(plan.job_name, plan.action, plan.attempt, description, ti, settings.instance_prices)

    def _check_cost(self, request: Mapping[str, Any], settings: Settings, params: Mapping[str, Any]) -> None:
        """Refuse to start a job whose worst case exceeds the run's ``max_run_cost`` (no retry mends it)."""
        from churn_pipeline.domain.costs import check_cost_limit

        job = request.get("Transform", request)  # the score step's request is the pair {Model, Transform}
        try:
            estimate = check_cost_limit(self.kind, job, settings.instance_prices, settings.max_runtime_seconds, params)
        except ValueError as error:  # over the limit, or max_run_cost itself is not a limit
            raise AirflowFailException(str(error)) from None
        if estimate is not None:
            self.log.info("this job may cost up to %.4f (its longest allowed run)", estimate)

    def _judge(self, name: str, action: Action, attempt: int, description: Mapping[str, Any],
               ti: Any, prices: Mapping[str, float]) -> dict[str, Any]:
        from churn_pipeline.domain.attempt_planning import Action, failure_reason, is_bad_input, is_running
        from churn_pipeline.domain.payloads import JobFailure, JobResult
        from churn_pipeline.domain.text import shown_lines
        from churn_pipeline.domain.xcom_keys import FAILURE_KEY

        status = description[self.kind.status_field]
        if is_running(self.kind, description):
            raise JobStillRunning(f"{name} is still {status} after waiting; the next attempt of this task awaits it "
                                  "instead of starting another")
        if status != COMPLETED:
            reason = shown_lines(failure_reason(self.kind, description))  # the job's words may quote data
            ti.xcom_push(key=FAILURE_KEY, value=JobFailure(job_name=name, reason=reason).to_xcom())
            self.log.error("%s", reason)
            if is_bad_input(reason):
                raise AirflowFailException(reason)  # the same input fails the same way: do not pay again
            raise JobFailed(reason)
        result = JobResult.from_description(self.kind, description, reused=action is Action.REUSE, attempt=attempt,
                                            prices=prices)
        self.log.info("%s: %s", name, json.dumps(result.to_xcom(), sort_keys=True))
        return result.to_xcom()
