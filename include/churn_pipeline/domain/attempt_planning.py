"""Attempt planning: which job a job task runs, reuses or awaits, and how its end reads. The middle
layer of the job stack, between the pure request builders and the operators; pure functions, no AWS
or Airflow call (the caller passes in how to describe a job).

A job task first looks for this run's jobs of its step, in attempt order: a ``Completed`` one is
reused (nothing runs or is paid twice), a running one is awaited, and after a ``Failed`` or
``Stopped`` one the next attempt starts under the next deterministic name (``...-r2``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from churn_pipeline.domain.contract import bad_input_step
from churn_pipeline.domain.layout import job_name
from churn_pipeline.domain.sagemaker_api import COMPLETED, RUNNING_STATES, JobKind

MAX_ATTEMPTS = 20
NO_REASON = "no reason given"
# failure_reason's sentence before the job's own reason: "<kind> job <name> ended <status>: "
_SENTENCE_OPENING = re.compile(r"^[a-z]+ job [a-zA-Z0-9-]+ ended [A-Za-z]+: ")

Describe = Callable[[str], Mapping[str, Any] | None]  # job name -> its description, None when no such job


class Action(StrEnum):
    REUSE = "reuse"  # a Completed job of this run: hand its result on
    AWAIT = "await"  # a job of this run still running: wait for it rather than start another
    START = "start"  # nothing usable yet: start the next attempt


@dataclass(frozen=True)
class AttemptPlan:
    action: Action
    job_name: str
    attempt: int
    description: Mapping[str, Any] | None = None


def plan_attempt(kind: JobKind, job_prefix: str, step: str, run_key: str, describe: Describe) -> AttemptPlan:
    """Walk this run's attempts of a step in order and decide; never renames unpredictably."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        name = job_name(job_prefix, step, run_key, attempt)
        description = describe(name)
        if description is None:
            return AttemptPlan(Action.START, name, attempt)
        status = description[kind.status_field]
        if status == COMPLETED:
            return AttemptPlan(Action.REUSE, name, attempt, description)
        if status in RUNNING_STATES:
            return AttemptPlan(Action.AWAIT, name, attempt, description)
    raise RuntimeError(f"{step} failed {MAX_ATTEMPTS} times for run {run_key}; clear the run's jobs before retrying")


def changed_fields(request: Mapping[str, Any], description: Mapping[str, Any]) -> list[str]:
    """The request's fields that a running job's description records with another value: the job runs
    something else than this attempt would send (a description repeats its request's fields). Values
    are compared as JSON, as descriptions are stored; a field the description does not record is not
    counted, since what it holds is unknown."""
    import json

    sent = json.loads(json.dumps(request))
    return sorted(field for field, value in sent.items() if field in description and description[field] != value)


def is_running(kind: JobKind, description: Mapping[str, Any]) -> bool:
    return description[kind.status_field] in RUNNING_STATES


def job_reason(description: Mapping[str, Any]) -> str:
    """The job's own reason: what the script wrote (a processing job's ``ExitMessage``), else
    SageMaker's ``FailureReason``."""
    return str(description.get("ExitMessage") or description.get("FailureReason") or NO_REASON)


def failure_reason(kind: JobKind, description: Mapping[str, Any]) -> str:
    """One sentence for the log and the notification: which job, how it ended, and SageMaker's reason."""
    status = description.get(kind.status_field, "unknown")
    return f"{kind.value.lower()} job {description.get(kind.name_field)} ended {status}: {job_reason(description)}"


def is_bad_input(reason: str) -> bool:
    """Whether a failed job rejected its input (the data breaks the contract), so that a retry would
    only pay for the same failure again. ``reason`` is ``failure_reason``'s sentence or the job's own
    reason; the scripts' signal is read where the shared contract puts it, at the start of the
    job's reason (``churn_pipeline.domain.contract.bad_input_step``), never found elsewhere in it.
    """
    return bad_input_step(_SENTENCE_OPENING.sub("", reason, count=1)) is not None
