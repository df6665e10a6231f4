"""What every SageMaker request of the pipeline shares: tags, network, instances, role, and the steps'
scripts and job kinds. Pure: no AWS call, no Airflow import."""

from __future__ import annotations

from typing import Any

from churn_pipeline.domain.layout import RUN_KEY_TAG, RunLayout, ScoringLayout
from churn_pipeline.domain.settings import Settings
from churn_pipeline.domain.steps import EVALUATE, PREPROCESS, TRAIN

SCRIPTS = {PREPROCESS: "preprocessing.py", TRAIN: "training.py", EVALUATE: "evaluation.py"}
# The placeholder role of local requests: the local runner needs none, a well-formed ARN keeps them valid.
LOCAL_ROLE_ARN = "arn:aws:iam::000000000000:role/churn-pipeline-local"


def tags(settings: Settings, layout: RunLayout | ScoringLayout) -> list[dict[str, str]]:
    tags = dict(settings.tags)
    tags[RUN_KEY_TAG] = layout.key
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def vpc(settings: Settings) -> dict[str, list[str]] | None:
    if not settings.subnets:
        return None
    return {"SecurityGroupIds": list(settings.security_group_ids), "Subnets": list(settings.subnets)}


def container_network(settings: Settings) -> dict[str, Any]:
    """Network isolation and VPC as CreateTrainingJob and CreateModel spell them at the request's top
    level, and CreateProcessingJob inside its ``NetworkConfig``."""
    fields: dict[str, Any] = {"EnableNetworkIsolation": True} if settings.network_isolation else {}
    if vpc(settings):
        fields["VpcConfig"] = vpc(settings)
    return fields


def instances(settings: Settings, step: str) -> dict[str, Any]:
    """Instance type, count, volume (and its KMS key): ClusterConfig and ResourceConfig share these fields."""
    resources = settings.resources_for(step)
    instances: dict[str, Any] = {
        "InstanceCount": resources.instance_count,
        "InstanceType": resources.instance_type,
        "VolumeSizeInGB": settings.volume_size_gb,
    }
    if settings.kms_key_id:
        instances["VolumeKmsKeyId"] = settings.kms_key_id
    return instances


def role(settings: Settings) -> str:
    if settings.role_arn:
        return settings.role_arn
    if settings.backend == "local":
        return LOCAL_ROLE_ARN
    settings.require_sagemaker_resources()  # raises, naming what is missing
    raise AssertionError("unreachable: a sagemaker backend without a role is refused above")
