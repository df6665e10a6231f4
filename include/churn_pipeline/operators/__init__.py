"""Airflow's operators: the job tasks (``preprocess``, ``train``, ``evaluate``, ``score_customers``), the
top layer of the job stack; and the extract that may precede them.

    resumable.py    ResumableJobMixin: the backend-independent body of a job task (plan, run or reuse,
                    judge the end) and the interface each backend implements
    local.py        LocalJobOperator: the local backend, running requests with LocalJobRunner
    sagemaker.py    the amazon provider's SageMaker operators, made resumable

Below them: ``churn_pipeline.domain.attempt_planning`` (which job to run) and
``churn_pipeline.requests`` (the requests, pure).

Ahead of the jobs, ``extraction.py`` holds ``extract_customers`` (ExtractCustomersOperator), which
reads the source through the providers' public hooks (``transfers.py``). ``assets.py`` and
``links.py`` are the Assets that tie the DAGs together and the job tasks' console links.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator

from churn_pipeline.domain.settings import Settings
from churn_pipeline.domain.steps import KIND_OF_STEP


def job_task(task_id: str, step: str, settings: Settings, *, staged: Any, inputs: Mapping[str, Any] | None = None,
             **kwargs: Any) -> BaseOperator:
    """The job task ``task_id`` running ``step`` on the configured backend, same graph on both.

    ``staged`` is the staging task's result and ``inputs`` the upstream results the step's request is
    built from, by role (``churn_pipeline.domain.steps.INPUT_ROLES``): both usually ``XComArg``s, so
    Airflow draws the edges from them and a task given the wrong inputs fails when the DAG is parsed.
    """
    if settings.backend == "local":
        from churn_pipeline.operators.local import LocalJobOperator

        return LocalJobOperator(task_id=task_id, step=step, staged=staged, inputs=inputs, **kwargs)
    from churn_pipeline.operators.sagemaker import SAGEMAKER_OPERATORS

    return SAGEMAKER_OPERATORS[KIND_OF_STEP[step]](task_id=task_id, step=step, settings=settings, staged=staged,
                                                   inputs=inputs, **kwargs)
