"""``CreateTrainingJob`` requests: the forest, in the scikit-learn container's script mode. Pure: no AWS
call, no Airflow import."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from churn_pipeline.domain import contract
from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.model_defaults import default_hyperparameters, metric_names
from churn_pipeline.domain.settings import Settings
from churn_pipeline.requests.common import SCRIPTS, container_network, instances, role, tags

TRAINING_CODE_CHANNEL_DIR = "/opt/ml/input/data/code"
TRAINING_CHANNELS = contract.TRAINING_CHANNELS  # preprocessing's outputs that the training script reads


def train_request(settings: Settings, layout: RunLayout, *, job_name: str, image_uri: str,
                  channels: Mapping[str, str], hyperparameters: Mapping[str, float] | None = None) -> dict[str, Any]:
    """A ``CreateTrainingJob`` request in the scikit-learn container's script mode.

    Hyperparameter values are JSON-encoded, as the SageMaker Python SDK sends them and the
    container's training toolkit decodes them. With network isolation the container cannot fetch its
    code from S3, so the code travels as a ``code`` channel, as the SDK does.
    """
    input_channels = dict(channels)
    if settings.network_isolation:
        input_channels["code"] = layout.sourcedir_uri
        submit_directory = f"{TRAINING_CODE_CHANNEL_DIR}/sourcedir.tar.gz"
    else:
        submit_directory = layout.sourcedir_uri
    chosen = default_hyperparameters() if hyperparameters is None else hyperparameters
    encoded = {name: json.dumps(value) for name, value in chosen.items()}
    encoded.update({
        "sagemaker_program": json.dumps(SCRIPTS["train"]),
        "sagemaker_submit_directory": json.dumps(submit_directory),
        "sagemaker_region": json.dumps(settings.region),
        "sagemaker_container_log_level": json.dumps(20),
    })
    output_config: dict[str, Any] = {"S3OutputPath": layout.model_uri}
    if settings.kms_key_id:
        output_config["KmsKeyId"] = settings.kms_key_id
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "HyperParameters": encoded,
        "AlgorithmSpecification": {
            "TrainingImage": image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": [
                {"Name": f"validation:{name}", "Regex": rf"validation:{name}=([0-9.]+);"}
                for name in metric_names()
            ],
        },
        "RoleArn": role(settings),
        "InputDataConfig": [
            {
                "ChannelName": name,
                "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}},
                **({"ContentType": contract.CSV} if name in contract.CSV_CHANNELS else {}),
                "InputMode": "File",
            }
            for name, uri in input_channels.items()
        ],
        "OutputDataConfig": output_config,
        "ResourceConfig": instances(settings, "train"),
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_seconds},
        "Environment": {"PYTHONUNBUFFERED": "1"},
        "Tags": tags(settings, layout),
        **container_network(settings),
    }
    return request
