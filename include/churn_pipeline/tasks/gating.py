"""``check_accuracy``: the quality gate reads the run's evaluation (and drift), decides under the
run's rules, records the decision and chooses the branch."""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline import backend, gate
from churn_pipeline.layout import RunLayout
from churn_pipeline.objectstore import ObjectStore, ObjectStoreError
from churn_pipeline.payloads import DECISION_KEY, EVALUATE_TASK, STAGE_TASK, JobResult, StagedInputs, pull
from churn_pipeline.settings import load_settings
from churn_pipeline.tasks._run import log


def _read_if_there(store: ObjectStore, uri: str) -> bytes | None:
    try:
        return store.read_bytes(uri)
    except ObjectStoreError:
        return None


def choose_branch(*, params: dict[str, Any], ti: Any, **_: Any) -> str:
    """BranchPythonOperator callable: ``register_model`` on a pass, ``notify_failure`` otherwise."""
    settings = load_settings()
    try:
        rules = gate.GateRules.from_params(params)
    except ValueError as error:
        raise AirflowFailException(str(error)) from None
    evaluation_prefix = pull(ti, EVALUATE_TASK, JobResult).output("evaluation")
    store = backend.object_store(settings)
    evaluation_uri = f"{evaluation_prefix}/evaluation.json"
    decision = gate.decide(_read_if_there(store, evaluation_uri), rules, evaluation_uri,
                           drift=_read_if_there(store, f"{evaluation_prefix}/drift.json"))
    layout = RunLayout(settings.base_uri, pull(ti, STAGE_TASK, StagedInputs).run_key)
    store.write_bytes(layout.decision_file_uri, json.dumps(decision.to_xcom(), indent=2, sort_keys=True).encode())
    ti.xcom_push(key=DECISION_KEY, value=decision.to_xcom())
    log.info("gate: %s -> %s", "passed" if decision.passed else f"not passed ({', '.join(decision.reasons)})",
             decision.next_task)
    for sentence in decision.details:
        log.info("gate:   %s", sentence)
    return decision.next_task
