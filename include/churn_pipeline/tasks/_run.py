"""What every task callable shares: the task log, and the layout of the run it belongs to."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from churn_pipeline.domain.layout import RunLayout, run_key
from churn_pipeline.domain.payloads import (
    EXTRACT_TASK,
    FAILURE_KEY,
    RETURN_KEY,
    STAGE_TASK,
    ExtractedCustomers,
    JobFailure,
    P,
    PayloadError,
    StagedInputs,
)
from churn_pipeline.domain.settings import Settings

if TYPE_CHECKING:
    from churn_pipeline.report.summary import RunOutcome

T = TypeVar("T")
log = logging.getLogger("churn_pipeline.tasks")  # Airflow 3 routes standard logging into the task log


def run_layout(settings: Settings, ti: Any, dag_run: Any, logical_date: Any = None) -> RunLayout:
    """The layout of the run a task belongs to, also when stage_inputs never ran (then from the run's
    logical date, as stage_inputs would have keyed it)."""
    staged = pull_optional(ti, STAGE_TASK, StagedInputs)
    return RunLayout(settings.base_uri, staged.run_key if staged else run_key(logical_date, dag_run.run_after))


def says_why_it_failed(task_id: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A task callable that, when it fails, first records why (``FAILURE_KEY``), so that the team's
    message and the run's summary quote the reason instead of pointing at the task's log."""

    def decorate(callable_: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(callable_)  # Airflow reads the wrapped signature to pick the context to pass
        def run(*args: Any, **kwargs: Any) -> T:
            try:
                return callable_(*args, **kwargs)
            except Exception as error:
                reason = str(error) if isinstance(error, AirflowException) else f"{type(error).__name__}: {error}"
                kwargs["ti"].xcom_push(key=FAILURE_KEY, value=JobFailure(job_name=task_id, reason=reason).to_xcom())
                raise

        return run

    return decorate


def data_source(ti: Any, params: dict[str, Any]) -> str:
    """Where this run's customers came from: the extract's source, else the ``input_uri`` param."""
    extracted = pull_optional(ti, EXTRACT_TASK, ExtractedCustomers)
    return f"{extracted.source}: {extracted.input_uri}" if extracted else str(params["input_uri"])


def finish_run(settings: Settings, layout: RunLayout, outcome: RunOutcome) -> None:
    """The last task's closing act: record how the run ended and log the run's summary, the lines
    ``make demo`` and ``cli summary`` print, so that every run ends by saying what it did."""
    from churn_pipeline.report.summary import shown_by, summary_lines, write_outcome
    from churn_pipeline.services import backend

    store = backend.object_store(settings)
    write_outcome(store, layout, outcome)
    log.info("what this run did:\n%s", "\n".join(summary_lines(store, layout, shown_by(store), outcome)))


def pull(ti: Any, task_id: str, payload: type[P], key: str = RETURN_KEY) -> P:
    """An upstream task's payload; its absence is a broken run that no retry fixes."""
    value = ti.xcom_pull(task_ids=task_id, key=key)
    if value is None:
        raise AirflowFailException(f"no result from task '{task_id}' in this run; run it (or clear it) first")
    try:
        return payload.from_xcom(value)
    except PayloadError as error:
        raise AirflowFailException(f"the result of task '{task_id}' is not usable: {error}") from None


def pull_optional(ti: Any, task_id: str, payload: type[P], key: str = RETURN_KEY) -> P | None:
    """Like ``pull``, for a result that may rightly be absent (the task failed or was skipped)."""
    value = ti.xcom_pull(task_ids=task_id, key=key)
    return None if value is None else payload.from_xcom(value)
