"""The Airflow Assets that tie the training DAG, approval and the scoring DAG together.

``churn_model_version``: a version was registered (the training DAG's ``register_model`` emits it).
``churn_champion``: a version was approved, so the champion may have changed; it schedules
``customer_churn_scoring`` (besides its daily 06:00). The review DAG ``customer_churn_review`` and the
approval DAG ``customer_churn_approval`` emit it through the ``churn_champion_approvals`` alias, and
only when they approve. On AWS, approval happens in SageMaker: an EventBridge rule on the group's
"Model Package State Change" to ``Approved`` feeds an SQS queue (``CHURN_APPROVAL_QUEUE_URL``), which
the asset watches, so that the approval itself schedules scoring (``deploy/eventbridge/``).
``churn_retrain``: the outcome DAG found the champion's predictions failing (2 of the last 5 cohorts,
with ``CHURN_OUTCOME_RETRAIN`` on); it starts the training DAG besides its nightly 02:00.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias, AssetWatcher

from churn_pipeline.domain.asset_names import CHAMPION_APPROVALS_ALIAS, CHAMPION_ASSET, MODEL_VERSION_ASSET
from churn_pipeline.domain.settings import Settings

__all__ = ["CHAMPION_ASSET", "MODEL_VERSION_ASSET", "RETRAIN_ASSET", "champion_approvals", "champion_asset",
           "model_version_asset", "retrain_asset"]

RETRAIN_ASSET = "churn_retrain"
APPROVAL_WATCHER = "sagemaker_model_approvals"
APPROVAL_POLL_SECONDS = 60


def model_version_asset() -> Asset:
    return Asset(name=MODEL_VERSION_ASSET)


def champion_approvals() -> AssetAlias:
    """The outlet of a task that decides on a version: it adds a ``churn_champion`` event to this
    alias only for an approval, once (``tasks.review.emit_champion``)."""
    return AssetAlias(name=CHAMPION_APPROVALS_ALIAS)


def retrain_asset() -> Asset:
    return Asset(name=RETRAIN_ASSET)


def champion_asset(settings: Settings) -> Asset:
    """The champion asset; watching the approvals queue where one is configured (the trigger's module
    is imported only then, so a local deployment parses without it)."""
    if not settings.approval_queue_url:
        return Asset(name=CHAMPION_ASSET)
    from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

    trigger = SqsSensorTrigger(sqs_queue=settings.approval_queue_url, aws_conn_id=settings.aws_conn_id,
                               region_name=settings.region, waiter_delay=APPROVAL_POLL_SECONDS)
    return Asset(name=CHAMPION_ASSET, watchers=[AssetWatcher(name=APPROVAL_WATCHER, trigger=trigger)])
