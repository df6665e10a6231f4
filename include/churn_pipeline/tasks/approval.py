"""``customer_churn_approval``: approve (or reject) a registered version from Airflow, locally. The
decision goes through ``tasks.review.record_decision``, as every other way of deciding does; only an
approval emits the ``churn_champion`` asset event that schedules scoring at once.

On the ``sagemaker`` backend a person approves in Airflow's review (``customer_churn_review``) or in
SageMaker (Studio's model registry or the AWS CLI); EventBridge carries a SageMaker approval to the
SQS queue the champion asset watches (``CHURN_APPROVAL_QUEUE_URL``), which schedules scoring the same way.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.domain.settings import load_settings
from churn_pipeline.tasks.review import emit_champion, record_decision


def approve_version(*, params: dict[str, Any], outlet_events: Any = None, dag_run: Any = None,
                    **_: Any) -> dict[str, Any]:
    from churn_pipeline.services.registry import APPROVAL_STATUSES, MlflowRegistry

    settings = load_settings()
    if settings.backend != "local":
        raise AirflowFailException("on the sagemaker backend approve in Airflow's customer_churn_review or in "
                                   "SageMaker (Studio's model registry or `aws sagemaker update-model-package ... "
                                   "--model-approval-status Approved`); EventBridge and CHURN_APPROVAL_QUEUE_URL bring "
                                   "a SageMaker approval to scoring")
    version, status = int(params["version"]), str(params["status"])
    if status not in APPROVAL_STATUSES:
        raise AirflowFailException(f"status must be one of {', '.join(APPROVAL_STATUSES)}, got {status!r}")
    registry = MlflowRegistry(settings.local_root)
    known = {item["version"] for item in registry.versions(settings.model_package_group)} \
        if (settings.local_root / "mlflow.db").is_file() else set()
    if version not in known:
        raise AirflowFailException(f"no version {version} of {settings.model_package_group}; "
                                   f"known: {sorted(known) or 'none'}")
    who = getattr(dag_run, "triggering_user_name", None) or "the user who triggered the run"  # Airflow 3.1+ keeps it
    decision = record_decision(settings, version=version, status=status, decided_by=who,
                               via=f"customer_churn_approval (run {getattr(dag_run, 'run_id', 'unknown')})",
                               reason="set through the approval DAG's form",
                               identifier=f"models:/{settings.model_package_group}/{version}")
    emit_champion(outlet_events, decision)
    return {"version": version, "status": status, "champion": decision["champion"]}
