"""The job tasks (``preprocess``, ``train``, ``evaluate``): the top layer of the job stack; and the
extract that may precede them.

    resumable.py    ResumableJobMixin: the backend-independent body of a job task (plan, run or reuse,
                    judge the end) and the interface each backend implements
    local.py        LocalJobOperator: the local backend, running requests with LocalJobRunner
    sagemaker.py    the amazon provider's SageMaker operators, made resumable

Below them: ``churn_pipeline.domain.attempt_planning`` (which job to run) and
``churn_pipeline.requests`` (the requests, pure).

Ahead of the jobs, ``extraction.py`` holds ``extract_customers`` (ExtractCustomersOperator), which
runs one of the amazon provider's transfer operators as ``transfers.py`` configures it.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from churn_pipeline.domain.settings import Settings
from churn_pipeline.requests.common import KIND_OF_STEP


def job_task(step: str, settings: Settings, **kwargs: Any) -> BaseOperator:
    """The job task for ``step`` on the configured backend (its task id is the step's unless given);
    same task id and graph on both."""
    kwargs.setdefault("task_id", step)
    if settings.backend == "local":
        from churn_pipeline.operators.local import LocalJobOperator

        return LocalJobOperator(step=step, **kwargs)
    from churn_pipeline.operators.sagemaker import SAGEMAKER_OPERATORS

    return SAGEMAKER_OPERATORS[KIND_OF_STEP[step]](step=step, settings=settings, **kwargs)
