"""The services under the DAG, chosen by ``CHURN_BACKEND``: object store, registry, notification
channel and container image. Imports of boto3-backed hooks and MLflow happen here, at
task run time, never when the scheduler parses the DAG file.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from churn_pipeline.domain.settings import Settings

if TYPE_CHECKING:  # the services are imported when a task asks for one: parsing the DAG stays light
    from churn_pipeline.services.notifications import NotificationChannel
    from churn_pipeline.services.objectstore import ObjectStore
    from churn_pipeline.services.registry import ModelRegistry


def object_store(settings: Settings) -> ObjectStore:
    from churn_pipeline.services.objectstore import LocalObjectStore, S3ObjectStore

    if settings.backend == "local":
        return LocalObjectStore(settings.local_root)
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3ObjectStore(S3Hook(aws_conn_id=settings.aws_conn_id, region_name=settings.region).get_conn())


def sagemaker_client(settings: Settings) -> Any:
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    return SageMakerHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region).conn


def model_registry(settings: Settings) -> ModelRegistry:
    from churn_pipeline.services.registry import MlflowRegistry, SageMakerRegistry

    if settings.backend == "local":
        return MlflowRegistry(settings.local_root)
    return SageMakerRegistry(sagemaker_client(settings), object_store(settings), settings.base_uri)


def notification_channel(settings: Settings) -> NotificationChannel:
    from churn_pipeline.services.notifications import LocalOutbox, SnsChannel

    if settings.backend == "local":
        return LocalOutbox(settings.local_root / "notifications.jsonl")
    settings.require_sagemaker_resources()
    assert settings.sns_topic_arn is not None  # required just above
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    return SnsChannel(SnsHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region).get_conn(),
                      settings.sns_topic_arn)


def container_image(settings: Settings) -> str:
    """The scikit-learn framework image for the region and version, or the configured override.

    Resolved at task run time, never at DAG parse. MWAA cannot install the SageMaker SDK under
    Airflow's constraints, so there the image comes from CHURN_IMAGE_URI (see ``churn_pipeline.tooling.bundle``).
    """
    if settings.image_uri:
        return settings.image_uri
    instance_type = settings.resources_for("train").instance_type
    if PLAIN_CPU_INSTANCE.match(instance_type):
        return sklearn_image_uri(settings.region, settings.framework_version)
    from sagemaker.core import image_uris  # GPU, Graviton and the rest: the SDK's own rules and refusals

    return image_uris.retrieve("sklearn", region=settings.region, version=settings.framework_version,
                               py_version="py3", instance_type=instance_type)


# x86 CPU instance families (m5, c5n, r6i, t3, ...; no Graviton "g" after the generation), for which
# image_uris.retrieve gives the table's "cpu" image; GPU (g, p), Graviton, Inferentia and Trainium
# families go through the SDK itself.
PLAIN_CPU_INSTANCE = re.compile(r"^ml\.[mcrtxz]\d+[a-fh-z]*\.[a-z0-9]+$")


# The SDK's image table for the scikit-learn framework, and the scope image_uris.retrieve uses for it
# (training and inference images are the same for scikit-learn; the SDK defaults to "training").
SKLEARN_IMAGE_TABLE = ("core", "image_uri_config", "sklearn.json")
SKLEARN_IMAGE_SCOPE = "training"


def sklearn_image_uri(region: str, version: str) -> str:
    """What ``sagemaker.core.image_uris.retrieve("sklearn", region, version, py_version="py3")`` returns
    for a CPU instance, read from the same table the SDK ships, without importing the SDK.

    Importing ``sagemaker.core`` costs about 2.5 s of CPU and 0.4 s more at exit in every run that
    stages its inputs; reading its JSON table costs milliseconds. The hostname comes from botocore's
    endpoint data, as in the SDK. A test holds this equal to ``retrieve`` for every version of the table
    and a region of every partition.
    """
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.find_spec("sagemaker")  # locates the package without running its __init__
    folders = list(spec.submodule_search_locations or ()) if spec else []
    table_file = Path(folders[0] if folders else "sagemaker").joinpath(*SKLEARN_IMAGE_TABLE)
    if not table_file.is_file():  # where importing sagemaker.core would fail: MWAA has no SDK
        raise ImportError(f"no SageMaker SDK image table at {table_file}", name="sagemaker")
    table = json.loads(table_file.read_text())[SKLEARN_IMAGE_SCOPE]
    versions = table["versions"]
    aliases = table.get("version_aliases", {})
    if version not in versions and version not in aliases:
        raise ValueError(f"Unsupported sklearn version: {version}. Supported sklearn version(s): "
                         f"{', '.join([*versions, *aliases])} (the SageMaker SDK's table, {table_file})")
    entry = versions[aliases.get(version, version)]
    if region not in entry["registries"]:
        raise ValueError(f"Unsupported region: {region}. The scikit-learn image {version} is published in "
                         f"{', '.join(entry['registries'])}")
    from botocore.loaders import create_loader
    from botocore.regions import EndpointResolver

    endpoint = EndpointResolver(create_loader().load_data("endpoints")).construct_endpoint("ecr", region)
    hostname = endpoint["hostname"] if endpoint else f"ecr.{region}.amazonaws.com"
    tag = "-".join((entry.get("tag_prefix", version), "cpu", "py3"))
    return f"{entry['registries'][region]}.dkr.{hostname}/{entry['repository']}:{tag}"
