"""What every task callable shares: the task log, and the layout of the run it belongs to."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from churn_pipeline.layout import RunLayout, run_key
from churn_pipeline.payloads import EXTRACT_TASK, STAGE_TASK, ExtractedCustomers, StagedInputs, pull_optional
from churn_pipeline.settings import Settings

if TYPE_CHECKING:
    from churn_pipeline.run_summary import RunOutcome

log = logging.getLogger("churn_pipeline.tasks")  # Airflow 3 routes standard logging into the task log


def run_layout(settings: Settings, ti: Any, dag_run: Any, logical_date: Any = None) -> RunLayout:
    """The layout of the run a task belongs to, also when stage_inputs never ran (then from the run's
    logical date, as stage_inputs would have keyed it)."""
    staged = pull_optional(ti, STAGE_TASK, StagedInputs)
    return RunLayout(settings.base_uri, staged.run_key if staged else run_key(logical_date, dag_run.run_after))


def data_source(ti: Any, params: dict[str, Any]) -> str:
    """Where this run's customers came from: the extract's source, else the ``input_uri`` param."""
    extracted = pull_optional(ti, EXTRACT_TASK, ExtractedCustomers)
    return f"{extracted.source}: {extracted.input_uri}" if extracted else str(params["input_uri"])


def finish_run(settings: Settings, layout: RunLayout, outcome: RunOutcome) -> None:
    """The last task's closing act: record how the run ended and log the run's summary, the lines
    ``make demo`` and ``cli summary`` print, so that every run ends by saying what it did."""
    from churn_pipeline import backend
    from churn_pipeline.run_summary import shown_by, summary_lines, write_outcome

    store = backend.object_store(settings)
    write_outcome(store, layout, outcome)
    log.info("what this run did:\n%s", "\n".join(summary_lines(store, layout, shown_by(store), outcome)))
