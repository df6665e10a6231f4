"""The services under the DAG, chosen by ``CHURN_BACKEND``: object store, registry, notification
channel and container image. Imports of boto3-backed hooks, MLflow and sagemaker happen here, at
task run time, never when the scheduler parses the DAG file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from churn_pipeline.settings import Settings

if TYPE_CHECKING:  # the services are imported when a task asks for one: parsing the DAG stays light
    from churn_pipeline.notifications import NotificationChannel
    from churn_pipeline.objectstore import ObjectStore
    from churn_pipeline.registry import ModelRegistry


def object_store(settings: Settings) -> ObjectStore:
    from churn_pipeline.objectstore import LocalObjectStore, S3ObjectStore

    if settings.backend == "local":
        return LocalObjectStore(settings.local_root)
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3ObjectStore(S3Hook(aws_conn_id=settings.aws_conn_id, region_name=settings.region).get_conn())


def sagemaker_client(settings: Settings) -> Any:
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    return SageMakerHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region).conn


def model_registry(settings: Settings) -> ModelRegistry:
    from churn_pipeline.registry import MlflowRegistry, SageMakerRegistry

    if settings.backend == "local":
        return MlflowRegistry(settings.local_root)
    return SageMakerRegistry(sagemaker_client(settings), object_store(settings), settings.base_uri)


def notification_channel(settings: Settings) -> NotificationChannel:
    from churn_pipeline.notifications import LocalOutbox, SnsChannel

    if settings.backend == "local":
        return LocalOutbox(settings.local_root / "notifications.jsonl")
    settings.require_sagemaker_resources()
    assert settings.sns_topic_arn is not None  # required just above
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    return SnsChannel(SnsHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region).get_conn(),
                      settings.sns_topic_arn)


def container_image(settings: Settings) -> str:
    """The scikit-learn framework image for the region and version, or the configured override.

    Resolved by sagemaker-core (offline, from its bundled image table; importing it takes about
    1.5 s) at task run time, never at DAG parse. MWAA cannot install sagemaker-core under Airflow's
    constraints, so there the image comes from CHURN_IMAGE_URI (see ``churn_pipeline.bundle``).
    """
    if settings.image_uri:
        return settings.image_uri
    from sagemaker.core import image_uris

    return image_uris.retrieve("sklearn", region=settings.region, version=settings.framework_version,
                               py_version="py3", instance_type=settings.resources_for("train").instance_type)
