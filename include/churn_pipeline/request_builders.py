"""Pure builders of the SageMaker requests the pipeline sends: the bottom layer of the job stack.

Each function takes settings and explicit inputs and returns the exact ``CreateProcessingJob`` /
``CreateTrainingJob`` / ``CreateModelPackage`` request dict: no AWS call, no Airflow import. The
``sagemaker`` backend sends these dicts through the amazon provider's operators; the local backend's
runner executes the very same dicts. Above this layer, ``attempt_planning`` decides which job a
task runs, and ``churn_pipeline.operators`` runs it on a backend.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from churn_pipeline.layout import RUN_KEY_TAG, RunLayout, registration_token
from churn_pipeline.model_defaults import default_hyperparameters, metric_names
from churn_pipeline.payloads import EVALUATE_TASK, PREPROCESS_TASK, TRAIN_TASK, JobResult, StagedInputs
from churn_pipeline.sagemaker_api import JobKind
from churn_pipeline.settings import Settings

PROCESSING_ROOT = "/opt/ml/processing"
CODE_DIR = f"{PROCESSING_ROOT}/input/code"
TRAINING_CODE_CHANNEL_DIR = "/opt/ml/input/data/code"
PREPROCESSING_OUTPUTS = ("train", "validation", "test", "preprocessor", "quality")
TRAINING_CHANNELS = ("train", "validation", "preprocessor")
SCRIPTS = {PREPROCESS_TASK: "preprocessing.py", TRAIN_TASK: "training.py", EVALUATE_TASK: "evaluation.py"}
KIND_OF_STEP = {PREPROCESS_TASK: JobKind.PROCESSING, TRAIN_TASK: JobKind.TRAINING, EVALUATE_TASK: JobKind.PROCESSING}
# The placeholder role of local requests: the local runner needs none, a well-formed ARN keeps them valid.
LOCAL_ROLE_ARN = "arn:aws:iam::000000000000:role/churn-pipeline-local"


def _tags(settings: Settings, layout: RunLayout) -> list[dict[str, str]]:
    tags = dict(settings.tags)
    tags[RUN_KEY_TAG] = layout.key
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def _vpc(settings: Settings) -> dict[str, list[str]] | None:
    if not settings.subnets:
        return None
    return {"SecurityGroupIds": list(settings.security_group_ids), "Subnets": list(settings.subnets)}


def _instances(settings: Settings, step: str) -> dict[str, Any]:
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


def _processing_input(name: str, uri: str, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def _processing_output(name: str, uri: str) -> dict[str, Any]:
    return {
        "OutputName": name,
        "S3Output": {"S3Uri": uri, "LocalPath": f"{PROCESSING_ROOT}/output/{name}", "S3UploadMode": "EndOfJob"},
    }


def processing_request(
    settings: Settings,
    layout: RunLayout,
    *,
    step: str,
    job_name: str,
    image_uri: str,
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
) -> dict[str, Any]:
    """A ``CreateProcessingJob`` request running ``include/scripts/<step script>`` from the run's code."""
    output_config: dict[str, Any] = {
        "Outputs": [_processing_output(name, uri) for name, uri in outputs.items()]}
    if settings.kms_key_id:
        output_config["KmsKeyId"] = settings.kms_key_id
    request: dict[str, Any] = {
        "ProcessingJobName": job_name,
        "ProcessingInputs": [_processing_input("code", layout.code_uri, CODE_DIR)]
        + [_processing_input(name, uri, f"{PROCESSING_ROOT}/input/{name}") for name, uri in inputs.items()],
        "ProcessingOutputConfig": output_config,
        "ProcessingResources": {"ClusterConfig": _instances(settings, step)},
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_seconds},
        "AppSpecification": {
            "ImageUri": image_uri,
            "ContainerEntrypoint": ["python3", f"{CODE_DIR}/{SCRIPTS[step]}"],
        },
        "Environment": {"PYTHONUNBUFFERED": "1"},
        "RoleArn": _role(settings),
        "Tags": _tags(settings, layout),
    }
    network: dict[str, Any] = {}
    if settings.network_isolation:
        network["EnableNetworkIsolation"] = True
    if _vpc(settings):
        network["VpcConfig"] = _vpc(settings)
    if network:
        request["NetworkConfig"] = network
    return request


def preprocess_request(settings: Settings, layout: RunLayout, *, job_name: str, image_uri: str,
                       input_uri: str, schema_uri: str) -> dict[str, Any]:
    return processing_request(
        settings, layout, step="preprocess", job_name=job_name, image_uri=image_uri,
        inputs={"data": input_uri, "schema": schema_uri},
        outputs={name: layout.preprocessing_uri(name) for name in PREPROCESSING_OUTPUTS},
    )


def evaluate_request(settings: Settings, layout: RunLayout, *, job_name: str, image_uri: str,
                     model_artifact_uri: str, test_uri: str) -> dict[str, Any]:
    return processing_request(
        settings, layout, step="evaluate", job_name=job_name, image_uri=image_uri,
        inputs={"model": model_artifact_uri, "test": test_uri},
        outputs={"evaluation": layout.evaluation_uri},
    )


def train_request(settings: Settings, layout: RunLayout, *, job_name: str, image_uri: str,
                  channels: Mapping[str, str], hyperparameters: Mapping[str, int] | None = None) -> dict[str, Any]:
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
        "RoleArn": _role(settings),
        "InputDataConfig": [
            {
                "ChannelName": name,
                "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}},
                **({"ContentType": "text/csv"} if name in ("train", "validation") else {}),
                "InputMode": "File",
            }
            for name, uri in input_channels.items()
        ],
        "OutputDataConfig": output_config,
        "ResourceConfig": _instances(settings, "train"),
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_seconds},
        "Environment": {"PYTHONUNBUFFERED": "1"},
        "Tags": _tags(settings, layout),
    }
    if settings.network_isolation:
        request["EnableNetworkIsolation"] = True
    if _vpc(settings):
        request["VpcConfig"] = _vpc(settings)
    return request


def model_package_request(
    settings: Settings,
    layout: RunLayout,
    *,
    image_uri: str,
    model_artifact_uri: str,
    metrics: Mapping[str, float],
    run_id: str,
    logical_date: str,
    data_source: str,
    training_job: str,
) -> dict[str, Any]:
    """A ``CreateModelPackage`` request: a new version awaiting manual approval.

    ``ClientToken`` (per group and run) makes the call idempotent on SageMaker's side as well.
    """
    metadata = {name: f"{metrics[name]:.6f}" for name in metric_names() if name in metrics}
    metadata.update({
        "run_id": run_id[:256],
        RUN_KEY_TAG: layout.key,
        "logical_date": logical_date,
        "data_source": data_source[:256],
        "training_job": training_job,
    })
    return {
        "ModelPackageGroupName": settings.model_package_group,
        "ModelPackageDescription": f"customer churn model trained by run {layout.key}",
        "ModelApprovalStatus": "PendingManualApproval",
        "ClientToken": registration_token(settings.model_package_group, layout.key),
        "InferenceSpecification": {
            "Containers": [{
                "Image": image_uri,
                "ModelDataUrl": model_artifact_uri,
                "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"},
            }],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
            "SupportedRealtimeInferenceInstanceTypes": [settings.resources_for("evaluate").instance_type],
            "SupportedTransformInstanceTypes": [settings.resources_for("evaluate").instance_type],
        },
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": layout.evaluation_file_uri},
            },
        },
        "CustomerMetadataProperties": metadata,
        "Tags": _tags(settings, layout),
    }


def _role(settings: Settings) -> str:
    if settings.role_arn:
        return settings.role_arn
    if settings.backend == "local":
        return LOCAL_ROLE_ARN
    settings.require_sagemaker_resources()  # raises, naming what is missing
    raise AssertionError("unreachable: a sagemaker backend without a role is refused above")


def request_for_step(step: str, settings: Settings, layout: RunLayout, name: str, staged: StagedInputs,
                     upstream: Mapping[str, JobResult]) -> dict[str, Any]:
    """The request for ``step``, from the staged inputs and the upstream tasks' real results."""
    if step == PREPROCESS_TASK:
        return preprocess_request(settings, layout, job_name=name, image_uri=staged.image_uri,
                                  input_uri=staged.input_uri, schema_uri=staged.schema_uri)
    preprocessing = upstream[PREPROCESS_TASK]
    if step == TRAIN_TASK:
        channels = {channel: preprocessing.output(channel) for channel in TRAINING_CHANNELS}
        return train_request(settings, layout, job_name=name, image_uri=staged.image_uri, channels=channels)
    if step == EVALUATE_TASK:
        return evaluate_request(settings, layout, job_name=name, image_uri=staged.image_uri,
                                model_artifact_uri=upstream[TRAIN_TASK].output("model"),
                                test_uri=preprocessing.output("test"))
    raise ValueError(f"unknown step {step!r}")
