"""``CreateModel`` and ``CreateTransformJob`` requests: the champion scoring every customer in Batch
Transform. Pure: no AWS call, no Airflow import."""

from __future__ import annotations

from typing import Any

from churn_pipeline.domain.contract import JSON_LINES, TRANSFORM_JOINED_OUTPUT_KEY
from churn_pipeline.domain.layout import ScoringLayout
from churn_pipeline.domain.payloads import ModelVersionRef
from churn_pipeline.domain.settings import Settings
from churn_pipeline.domain.steps import SCORE
from churn_pipeline.requests.common import container_network, role, tags

# Batch Transform: the customers travel as JSON lines (JSON_LINES: one customer per line, named
# fields, so no header and no column order to agree on), in batches of lines of at most this many MB.
TRANSFORM_PAYLOAD_MB = 6
# How the serving container finds the model's inference code inside model.tar.gz.
INFERENCE_ENVIRONMENT = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
# What the joined output keeps of each line: the customer's id and the model's answer, which
# SageMaker puts under this key when JoinSource is Input (the local transform joins under it too).
TRANSFORM_OUTPUT_KEY = TRANSFORM_JOINED_OUTPUT_KEY


def create_model_request(settings: Settings, layout: ScoringLayout, *, name: str,
                         champion: ModelVersionRef) -> dict[str, Any]:
    """A ``CreateModel`` request for the champion: its approved package is the container, so the model
    serves exactly what was approved (image, model data, inference code)."""
    request: dict[str, Any] = {
        "ModelName": name,
        "PrimaryContainer": {"ModelPackageName": champion.identifier},
        "ExecutionRoleArn": role(settings),
        "Tags": tags(settings, layout),
        **container_network(settings),
    }
    return request


def transform_request(settings: Settings, layout: ScoringLayout, *, job_name: str, model: str,
                      id_column: str | None) -> dict[str, Any]:
    """A ``CreateTransformJob`` request that scores every customer line and keeps, per line, the
    customer's id beside the model's answer (JoinSource Input, then an output filter)."""
    kept = f"$['{id_column}','{TRANSFORM_OUTPUT_KEY}']" if id_column else f"$['{TRANSFORM_OUTPUT_KEY}']"
    resources = settings.resources_for(SCORE)
    output: dict[str, Any] = {"S3OutputPath": layout.transform_output_uri, "Accept": JSON_LINES, "AssembleWith": "Line"}
    compute: dict[str, Any] = {"InstanceType": resources.instance_type, "InstanceCount": resources.instance_count}
    if settings.kms_key_id:
        output["KmsKeyId"] = settings.kms_key_id
        compute["VolumeKmsKeyId"] = settings.kms_key_id
    return {
        "TransformJobName": job_name,
        "ModelName": model,
        "MaxConcurrentTransforms": 1,
        "MaxPayloadInMB": TRANSFORM_PAYLOAD_MB,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": layout.input_uri}},
            "ContentType": JSON_LINES,
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": output,
        "TransformResources": compute,
        "DataProcessing": {"InputFilter": "$", "JoinSource": "Input", "OutputFilter": kept},
        "Environment": {"PYTHONUNBUFFERED": "1"},
        "Tags": tags(settings, layout),
    }
