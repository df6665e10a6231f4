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
from dataclasses import dataclass
from typing import Any

from churn_pipeline.domain.gate import CompareMode, DriftMode
from churn_pipeline.domain.layout import RUN_KEY_TAG, RunLayout, ScoringLayout, model_name, registration_token
from churn_pipeline.domain.model_defaults import default_hyperparameters, metric_names
from churn_pipeline.domain.payloads import (
    EVALUATE_TASK,
    FIND_CHAMPION_TASK,
    PREPROCESS_TASK,
    TRAIN_TASK,
    ChampionLookup,
    GateDecision,
    JobResult,
    ModelVersionRef,
    Payload,
    StagedInputs,
    StagedScoring,
)
from churn_pipeline.domain.sagemaker_api import JobKind
from churn_pipeline.domain.settings import Settings

PROCESSING_ROOT = "/opt/ml/processing"
CODE_DIR = f"{PROCESSING_ROOT}/input/code"
TRAINING_CODE_CHANNEL_DIR = "/opt/ml/input/data/code"
PREPROCESSING_OUTPUTS = ("train", "validation", "test", "preprocessor", "quality", "holdout", "profile")
TRAINING_CHANNELS = ("train", "validation", "preprocessor")
SCRIPTS = {PREPROCESS_TASK: "preprocessing.py", TRAIN_TASK: "training.py", EVALUATE_TASK: "evaluation.py"}
SCORE_STEP = "score"  # the scoring DAG's Batch Transform (task score_customers)
KIND_OF_STEP = {PREPROCESS_TASK: JobKind.PROCESSING, TRAIN_TASK: JobKind.TRAINING, EVALUATE_TASK: JobKind.PROCESSING,
                SCORE_STEP: JobKind.TRANSFORM}
# Batch Transform: the customers travel as JSON lines (one customer per line, named fields, so no
# header and no column order to agree on), in batches of lines of at most this many MB.
JSON_LINES = "application/jsonlines"
TRANSFORM_PAYLOAD_MB = 6
# How the serving container finds the model's inference code inside model.tar.gz.
INFERENCE_ENVIRONMENT = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
# What the joined output keeps of each line: the customer's id and the model's answer, which
# SageMaker puts under this key when JoinSource is Input.
TRANSFORM_OUTPUT_KEY = "SageMakerOutput"
# The placeholder role of local requests: the local runner needs none, a well-formed ARN keeps them valid.
LOCAL_ROLE_ARN = "arn:aws:iam::000000000000:role/churn-pipeline-local"


def _tags(settings: Settings, layout: RunLayout | ScoringLayout) -> list[dict[str, str]]:
    tags = dict(settings.tags)
    tags[RUN_KEY_TAG] = layout.key
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def _vpc(settings: Settings) -> dict[str, list[str]] | None:
    if not settings.subnets:
        return None
    return {"SecurityGroupIds": list(settings.security_group_ids), "Subnets": list(settings.subnets)}


def _container_network(settings: Settings) -> dict[str, Any]:
    """Network isolation and VPC as CreateTrainingJob and CreateModel spell them (processing jobs have
    their own ``NetworkConfig``)."""
    fields: dict[str, Any] = {"EnableNetworkIsolation": True} if settings.network_isolation else {}
    if _vpc(settings):
        fields["VpcConfig"] = _vpc(settings)
    return fields


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


@dataclass(frozen=True)
class EvaluationInputs:
    """What the evaluation job compares the new model with: the champion (to score on the same
    customers) and the baseline profile (to measure drift against), or why it has none."""

    champion: ModelVersionRef | None = None
    champion_problem: str | None = None
    baseline: ModelVersionRef | None = None
    baseline_problem: str | None = None
    measure_drift: bool = True

    @classmethod
    def choose(cls, lookup: ChampionLookup, compare: CompareMode, drift: DriftMode) -> EvaluationInputs:
        """Off means off: no champion is sent when the comparison is off, no baseline when drift is."""
        compared = compare is not CompareMode.OFF
        measured = drift is not DriftMode.OFF
        return cls(champion=lookup.champion if compared else None,
                   champion_problem=lookup.champion_problem if compared else None,
                   baseline=lookup.baseline if measured else None,
                   baseline_problem=lookup.baseline_problem if measured else None,
                   measure_drift=measured)


def evaluate_request(settings: Settings, layout: RunLayout, *, job_name: str, image_uri: str,
                     model_artifact_uri: str, holdout_uri: str,
                     compared: EvaluationInputs | None = None) -> dict[str, Any]:
    """The evaluation job: the new model on this run's held-out customers, with the champion's model
    and the baseline profile as optional inputs (and who they are as arguments, for the records)."""
    compared = compared or EvaluationInputs()
    inputs = {"model": model_artifact_uri, "holdout": holdout_uri}
    arguments: list[str] = []
    champion, baseline = compared.champion, compared.baseline
    if champion is not None:
        arguments += ["--champion-identifier", champion.identifier, "--champion-version", str(champion.version)]
        if compared.champion_problem:
            arguments += ["--champion-unavailable", compared.champion_problem]
        else:
            inputs["champion"] = champion.model_uri
    if baseline is not None:
        arguments += ["--baseline-identifier", baseline.identifier, "--baseline-version", str(baseline.version)]
        if baseline.statistics_uri:
            arguments += ["--baseline-uri", baseline.statistics_uri]
        if compared.baseline_problem or not baseline.statistics_uri:
            arguments += ["--baseline-unavailable", compared.baseline_problem or "it has no data profile"]
        else:
            inputs["baseline"] = baseline.statistics_uri
    if not compared.measure_drift:
        arguments.append("--no-drift")
    request = processing_request(
        settings, layout, step="evaluate", job_name=job_name, image_uri=image_uri,
        inputs=inputs, outputs={"evaluation": layout.evaluation_uri},
    )
    if arguments:
        request["AppSpecification"]["ContainerArguments"] = arguments
    return request


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
        **_container_network(settings),
    }
    return request


MAX_METADATA_VALUE = 256  # CustomerMetadataProperties: at most 50 keys, values of at most 256 characters


def _lineage(decision: GateDecision) -> dict[str, str]:
    """What the new version was compared with and how it fared, for CustomerMetadataProperties."""
    lineage = {"compare_with_champion": decision.compare_with_champion, "compared_on": decision.champion_metric,
               "min_improvement": f"{decision.min_improvement:.6f}", "drift_mode": decision.drift_mode,
               "drifted_features": ",".join(decision.drifted_features) or "none"}
    champion = decision.champion
    if not champion:
        lineage["compared_with"] = "none"
        return lineage
    lineage["compared_with"] = str(champion.get("identifier"))
    lineage["champion_version"] = str(champion.get("version"))
    lineage["champion_comparable"] = "true" if champion.get("comparable") else "false"
    if not champion.get("comparable"):
        lineage["champion_reason"] = str(champion.get("reason"))
    for name in metric_names():
        if name in champion.get("metrics", {}):
            lineage[f"champion_{name}"] = f"{champion['metrics'][name]:.6f}"
        if name in champion.get("delta", {}):
            lineage[f"delta_{name}"] = f"{champion['delta'][name]:+.6f}"
    return lineage


def _model_card(layout: RunLayout, decision: GateDecision, training_job: str) -> dict[str, str]:
    """A Draft model card holding the evaluation: what a reviewer reads before approving."""
    groups = [{"name": "challenger (this run's model)", "metric_data": [
        {"name": name, "type": "number", "value": value} for name, value in sorted(decision.metrics.items())]}]
    champion = decision.champion
    if champion and champion.get("comparable"):
        groups.append({"name": f"champion version {champion.get('version')}", "metric_data": [
            {"name": name, "type": "number", "value": value} for name, value in sorted(champion["metrics"].items())]})
    content = {
        "model_overview": {"model_description": f"Customer churn RandomForest trained by run {layout.key} "
                                                f"(training job {training_job})"},
        "evaluation_details": [{
            "name": f"held-out customers of run {layout.key}",
            "evaluation_observation": " ".join(f"{sentence}." for sentence in decision.details)[:2096],
            "metric_groups": groups,
        }],
    }
    return {"ModelCardContent": json.dumps(content, sort_keys=True), "ModelCardStatus": "Draft"}


def model_package_request(
    settings: Settings,
    layout: RunLayout,
    *,
    image_uri: str,
    model_artifact_uri: str,
    decision: GateDecision,
    profile_uri: str,
    run_id: str,
    dag_id: str,
    logical_date: str,
    data_source: str,
    training_job: str,
) -> dict[str, Any]:
    """A ``CreateModelPackage`` request: a new version awaiting manual approval, carrying its lineage:
    what it was compared with and the deltas, the run that made it, its data profile (the baseline
    later runs measure drift against) and its report.

    ``ClientToken`` (per group and run) makes the call idempotent on SageMaker's side as well. Model
    package versions cannot carry Tags, so lineage goes in CustomerMetadataProperties,
    MetadataProperties and the model card.
    """
    metadata = {name: f"{decision.metrics[name]:.6f}" for name in metric_names() if name in decision.metrics}
    metadata.update({
        "run_id": run_id,
        RUN_KEY_TAG: layout.key,
        "logical_date": logical_date,
        "data_source": data_source,
        "training_job": training_job,
        "report_uri": layout.report_file_uri,
        **_lineage(decision),
    })
    metadata = {key: value[:MAX_METADATA_VALUE] for key, value in metadata.items()}
    statistics = {"ContentType": "application/json", "S3Uri": f"{profile_uri}/statistics.json"}
    constraints = {"ContentType": "application/json", "S3Uri": f"{profile_uri}/constraints.json"}
    champion = decision.champion
    compared = (f"compared with version {champion.get('version')} on {decision.champion_metric}"
                if champion else "first of its group: nothing to compare with")
    return {
        "ModelPackageGroupName": settings.model_package_group,
        "ModelPackageDescription": f"customer churn model trained by run {layout.key}; {compared}"[:1024],
        "ModelApprovalStatus": "PendingManualApproval",
        "ClientToken": registration_token(settings.model_package_group, layout.key),
        "InferenceSpecification": {
            "Containers": [{
                "Image": image_uri,
                "ModelDataUrl": model_artifact_uri,
                "Environment": dict(INFERENCE_ENVIRONMENT),
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
            "ModelDataQuality": {"Statistics": statistics, "Constraints": constraints},
        },
        "DriftCheckBaselines": {"ModelDataQuality": {"Statistics": statistics, "Constraints": constraints}},
        "MetadataProperties": {"GeneratedBy": f"airflow:{dag_id}/{run_id}"[:1024]},
        "ModelCard": _model_card(layout, decision, training_job),
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


def create_model_request(settings: Settings, layout: ScoringLayout, *, name: str,
                         champion: ModelVersionRef) -> dict[str, Any]:
    """A ``CreateModel`` request for the champion: its approved package is the container, so the model
    serves exactly what was approved (image, model data, inference code)."""
    request: dict[str, Any] = {
        "ModelName": name,
        "PrimaryContainer": {"ModelPackageName": champion.identifier},
        "ExecutionRoleArn": _role(settings),
        "Tags": _tags(settings, layout),
        **_container_network(settings),
    }
    return request


def transform_request(settings: Settings, layout: ScoringLayout, *, job_name: str, model: str,
                      id_column: str | None) -> dict[str, Any]:
    """A ``CreateTransformJob`` request that scores every customer line and keeps, per line, the
    customer's id beside the model's answer (JoinSource Input, then an output filter)."""
    kept = f"$['{id_column}','{TRANSFORM_OUTPUT_KEY}']" if id_column else f"$['{TRANSFORM_OUTPUT_KEY}']"
    resources = settings.resources_for(SCORE_STEP)
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
        "Tags": _tags(settings, layout),
    }


def request_for_step(step: str, settings: Settings, name: str, staged: Payload, upstream: Mapping[str, Payload],
                     params: Mapping[str, Any]) -> dict[str, Any]:
    """The request for ``step``, from the staged inputs, the upstream tasks' real results and the
    run's params. The score step's request is the pair the provider's transform operator takes:
    ``{"Model": CreateModel, "Transform": CreateTransformJob}``."""
    if step == SCORE_STEP:
        assert isinstance(staged, StagedScoring)
        scoring = ScoringLayout(settings.base_uri, staged.run_key)
        model = model_name(settings.job_prefix, staged.run_key)
        return {"Model": create_model_request(settings, scoring, name=model, champion=staged.champion),
                "Transform": transform_request(settings, scoring, job_name=name, model=model,
                                               id_column=staged.id_column)}
    assert isinstance(staged, StagedInputs)
    layout = RunLayout(settings.base_uri, staged.run_key)
    if step == PREPROCESS_TASK:
        return preprocess_request(settings, layout, job_name=name, image_uri=staged.image_uri,
                                  input_uri=staged.input_uri, schema_uri=staged.schema_uri)
    preprocessing = upstream[PREPROCESS_TASK]
    assert isinstance(preprocessing, JobResult)
    if step == TRAIN_TASK:
        channels = {channel: preprocessing.output(channel) for channel in TRAINING_CHANNELS}
        return train_request(settings, layout, job_name=name, image_uri=staged.image_uri, channels=channels)
    if step == EVALUATE_TASK:
        trained, lookup = upstream[TRAIN_TASK], upstream[FIND_CHAMPION_TASK]
        assert isinstance(trained, JobResult) and isinstance(lookup, ChampionLookup)
        compared = EvaluationInputs.choose(lookup, CompareMode(params.get("compare_with_champion", "enforce")),
                                           DriftMode(params.get("drift_mode", "warn")))
        return evaluate_request(settings, layout, job_name=name, image_uri=staged.image_uri,
                                model_artifact_uri=trained.output("model"),
                                holdout_uri=preprocessing.output("holdout"), compared=compared)
    raise ValueError(f"unknown step {step!r}")
