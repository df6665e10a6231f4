"""``customer_churn_approval``: approve (or reject) a registered version from Airflow, locally, so
that the approval emits the ``churn_champion`` asset event that schedules scoring at once.

On the ``sagemaker`` backend a person approves in SageMaker (Studio's model registry or the AWS
CLI); EventBridge carries that approval to the SQS queue the champion asset watches
(``CHURN_APPROVAL_QUEUE_URL``), which schedules scoring the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.domain.settings import load_settings
from churn_pipeline.tasks._run import log

if TYPE_CHECKING:  # imported where used: the DAG file imports this module when the scheduler parses it
    pass


def approve_version(*, params: dict[str, Any], outlet_events: Any = None, **_: Any) -> dict[str, Any]:
    from churn_pipeline.services.registry import APPROVAL_STATUSES, MlflowRegistry

    settings = load_settings()
    if settings.backend != "local":
        raise AirflowFailException("on the sagemaker backend approve in SageMaker (Studio's model registry or "
                                   "`aws sagemaker update-model-package ... --model-approval-status Approved`); "
                                   "EventBridge and CHURN_APPROVAL_QUEUE_URL bring the approval to scoring")
    version, status = int(params["version"]), str(params["status"])
    if status not in APPROVAL_STATUSES:
        raise AirflowFailException(f"status must be one of {', '.join(APPROVAL_STATUSES)}, got {status!r}")
    registry = MlflowRegistry(settings.local_root)
    known = {item["version"] for item in registry.versions(settings.model_package_group)} \
        if (settings.local_root / "mlflow.db").is_file() else set()
    if version not in known:
        raise AirflowFailException(f"no version {version} of {settings.model_package_group}; "
                                   f"known: {sorted(known) or 'none'}")
    champion = registry.set_approval(settings.model_package_group, version, status)
    log.info("%s version %s is now %s; the champion is %s", settings.model_package_group, version, status,
             f"version {champion}" if champion else "none")
    return {"version": version, "status": status, "champion": champion}
