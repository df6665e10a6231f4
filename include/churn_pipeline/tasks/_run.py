"""What every task callable shares: the task log, reading what upstream tasks handed it, and the layout
of the run it belongs to.

Tasks receive their upstream results as arguments (``op_kwargs`` filled from ``XComArg``s in the DAG
file), so the DAG's edges are written once, in the DAG. What a task reads without being handed it is
derived from the DAG itself: the failures of the tasks upstream of it (``failed_upstream``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from churn_pipeline.domain.layout import RunLayout, run_key
from churn_pipeline.domain.settings import Settings
from churn_pipeline.domain.xcom_keys import FAILURE_KEY

if TYPE_CHECKING:  # imported where used: the DAG file imports this module when the scheduler parses it
    from churn_pipeline.domain.payloads import ExtractedCustomers, P
    from churn_pipeline.report.summary import RunOutcome

T = TypeVar("T")
log = logging.getLogger("churn_pipeline.tasks")  # Airflow 3 routes standard logging into the task log


def received(payload: type[P], value: Any, what: str) -> P:
    """An upstream result this task was handed; its absence is a broken run that no retry fixes."""
    from churn_pipeline.domain.payloads import PayloadError

    if value is None:
        raise AirflowFailException(f"no {what} in this run: run (or clear) the task that makes it first")
    try:
        return payload.from_xcom(value)
    except PayloadError as error:
        raise AirflowFailException(f"the {what} is not usable: {error}") from None


def received_optional(payload: type[P], value: Any) -> P | None:
    """Like ``received``, for a result that may rightly be absent (its task failed or was skipped)."""
    return None if value is None else payload.from_xcom(value)


def run_layout(settings: Settings, staged: Any, dag_run: Any, logical_date: Any = None) -> RunLayout:
    """The layout of the run a task belongs to, also when the staging task never ran (then from the
    run's logical date, as staging would have keyed it)."""
    from churn_pipeline.domain.payloads import StagedInputs

    inputs = received_optional(StagedInputs, staged)
    return RunLayout(settings.base_uri, inputs.run_key if inputs else run_key(logical_date, dag_run.run_after))


def says_why_it_failed(callable_: Callable[..., T]) -> Callable[..., T]:
    """A task callable that, when it fails, first records why (``FAILURE_KEY``, under its own task), so
    that the team's message and the run's summary quote the reason instead of pointing at the log."""

    @functools.wraps(callable_)  # Airflow reads the wrapped signature to pick the context to pass
    def run(*args: Any, **kwargs: Any) -> T:
        try:
            return callable_(*args, **kwargs)
        except Exception as error:
            from churn_pipeline.domain.payloads import JobFailure

            reason = str(error) if isinstance(error, AirflowException) else f"{type(error).__name__}: {error}"
            ti = kwargs["ti"]
            ti.xcom_push(key=FAILURE_KEY, value=JobFailure(job_name=ti.task_id, reason=reason).to_xcom())
            raise

    return run


def failed_upstream(ti: Any, task: Any, dag_run: Any) -> list[tuple[str, str]]:
    """(task id, reason) for every task upstream of ``task`` that failed in this run, in the DAG's order.

    The upstream tasks come from the DAG itself, so a task added before this one is listed without
    this module knowing of it."""
    from churn_pipeline.domain.payloads import JobFailure

    upstream = task.get_flat_relative_ids(upstream=True)
    states = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id]).get(dag_run.run_id, {})
    failed = []
    for task_id in (task_id for task_id in task.dag.task_ids if task_id in upstream):
        if states.get(task_id) == "failed":
            value = ti.xcom_pull(task_ids=task_id, key=FAILURE_KEY)
            detail = received_optional(JobFailure, value)
            failed.append((task_id, detail.reason if detail else "see the task's log"))
    return failed


def data_source(staged: Any, params: dict[str, Any]) -> str:
    """Where this run's customers came from, as the staging task recorded it (the extract's source, or
    ``input_uri``); the ``input_uri`` param when staging never ran."""
    from churn_pipeline.domain.payloads import StagedInputs

    inputs = received_optional(StagedInputs, staged)
    return inputs.data_source if inputs and inputs.data_source else str(params["input_uri"])


def described_source(extracted: ExtractedCustomers | None, params: dict[str, Any]) -> str:
    """The words ``data_source`` gives: the extract's source and prefix, else the ``input_uri`` param."""
    return f"{extracted.source}: {extracted.input_uri}" if extracted else str(params["input_uri"])


def finish_run(settings: Settings, layout: RunLayout, outcome: RunOutcome) -> None:
    """The last task's closing act: record how the run ended and log the run's summary, the lines
    ``make demo`` and ``cli summary`` print, so that every run ends by saying what it did."""
    from botocore.exceptions import ClientError  # an S3 deny on the run's prefix

    from churn_pipeline.report.summary import shown_by, summary_lines, write_outcome
    from churn_pipeline.services import backend
    from churn_pipeline.services.objectstore import ObjectStoreError

    store = backend.object_store(settings)
    outcome = replace(outcome, group=outcome.group or settings.model_package_group)  # every outcome names it
    try:
        write_outcome(store, layout, outcome)
    except (OSError, ObjectStoreError, ClientError) as error:  # a broken run prefix: one line, after the message
        log.info("what this run did:\n%s", "\n".join(summary_lines(store, layout, shown_by(store), outcome)))
        raise AirflowFailException(f"cannot record this run's outcome at {layout.outcome_file_uri}: "
                                   f"{(error.strerror if isinstance(error, OSError) else None) or error} (the run's "
                                   "prefix cannot be written; the team's message says how it ended)") from None
    log.info("what this run did:\n%s", "\n".join(summary_lines(store, layout, shown_by(store), outcome)))
