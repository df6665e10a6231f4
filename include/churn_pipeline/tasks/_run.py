"""What every task callable shares: the task log, and the layout of the run it belongs to."""

from __future__ import annotations

import logging
from typing import Any

from churn_pipeline.layout import RunLayout, run_key
from churn_pipeline.payloads import STAGE_TASK, StagedInputs, pull_optional
from churn_pipeline.settings import Settings

log = logging.getLogger("churn_pipeline.tasks")  # Airflow 3 routes standard logging into the task log


def run_layout(settings: Settings, ti: Any, dag_run: Any, logical_date: Any = None) -> RunLayout:
    """The layout of the run a task belongs to, also when stage_inputs never ran (then from the run's
    logical date, as stage_inputs would have keyed it)."""
    staged = pull_optional(ti, STAGE_TASK, StagedInputs)
    return RunLayout(settings.base_uri, staged.run_key if staged else run_key(logical_date, dag_run.run_after))
