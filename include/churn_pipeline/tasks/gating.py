"""``check_accuracy``: the quality gate reads the run's evaluation and chooses the branch."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline import backend, gate
from churn_pipeline.objectstore import ObjectStoreError
from churn_pipeline.payloads import DECISION_KEY, EVALUATE_TASK, JobResult, pull
from churn_pipeline.settings import load_settings
from churn_pipeline.tasks._run import log


def choose_branch(*, params: dict[str, Any], ti: Any, **_: Any) -> str:
    """BranchPythonOperator callable: ``register_model`` on a pass, ``notify_failure`` otherwise."""
    settings = load_settings()
    evaluation_uri = f"{pull(ti, EVALUATE_TASK, JobResult).output('evaluation')}/evaluation.json"
    try:
        raw: bytes | None = backend.object_store(settings).read_bytes(evaluation_uri)
    except ObjectStoreError:
        raw = None
    try:
        decision = gate.decide(raw, params["accuracy_threshold"], evaluation_uri)
    except ValueError as error:
        raise AirflowFailException(str(error)) from None
    ti.xcom_push(key=DECISION_KEY, value=decision.to_xcom())
    log.info("gate: %s -> %s", decision.detail, decision.next_task)
    return decision.next_task
