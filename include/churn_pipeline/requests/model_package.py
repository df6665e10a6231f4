"""``CreateModelPackage`` requests: a new version of the group, awaiting manual approval, with its
lineage and the engine that trained it. Pure: no AWS call, no Airflow import.

Both engines' versions have the same shape, so the registry, the review and the champion lookup read
them alike; ``CustomerMetadataProperties.engine`` (``scikit-learn`` or ``spark-mllib``) says which
made it, and so how it is scored: a scikit-learn model by Batch Transform in its serving image, a
Spark ``PipelineModel`` by a processing job of the Spark image, which serves no endpoint.
"""

from __future__ import annotations

import json
from typing import Any

from churn_pipeline.domain.contract import CSV, FILES, JSON
from churn_pipeline.domain.engine import Engine
from churn_pipeline.domain.layout import RUN_KEY_TAG, RunLayout, registration_token
from churn_pipeline.domain.model_defaults import comparable_metric_names
from churn_pipeline.domain.payloads import GateDecision
from churn_pipeline.domain.settings import Settings
from churn_pipeline.domain.spark_image import SPARK_VERSION
from churn_pipeline.requests.common import tags
from churn_pipeline.requests.transform import INFERENCE_ENVIRONMENT

MAX_METADATA_VALUE = 256  # CustomerMetadataProperties: at most 50 keys, values of at most 256 characters
SPARK_SCORING = "processing"  # how a Spark model is scored: a processing job of the Spark image
SPARK_SERVING_NOTE = ("a Spark PipelineModel: score it with a processing job of this image; the Spark processing "
                      "image serves no HTTP, so do not deploy this version to an endpoint")


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
    for name in comparable_metric_names():
        if name in champion.get("metrics", {}):
            lineage[f"champion_{name}"] = f"{champion['metrics'][name]:.6f}"
        if name in champion.get("delta", {}):
            lineage[f"delta_{name}"] = f"{champion['delta'][name]:+.6f}"
    return lineage


def _campaign(decision: GateDecision) -> dict[str, str]:
    """The contact threshold (chosen on validation, what scoring applies) and what the campaign earns
    at it on the test split, for CustomerMetadataProperties."""
    campaign = decision.campaign or {}
    economics, calibration = campaign.get("economics") or {}, campaign.get("calibration") or {}
    found: dict[str, str] = {}
    if "threshold" in economics:
        found["contact_threshold"] = f"{economics['threshold']:.4f}"
        found["threshold_chosen_on"] = str(economics.get("chosen_on"))
    for name in ("at_threshold", "at_default"):
        if isinstance(economics.get(name), dict):
            found[f"campaign_profit_{name}"] = f"{economics[name]['profit']:.2f}"
    total = (decision.run_cost or {}).get("total")
    if total is not None:
        found["run_cost"] = f"{total:.6f}"  # what the jobs that made this version cost
    if calibration:
        found["calibrated"] = "true" if calibration.get("applied") else "false"
        found["brier"] = f"{calibration.get('brier', float('nan')):.6f}"
        found["expected_calibration_error"] = f"{calibration.get('ece', float('nan')):.6f}"
    return found


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


def _engine_metadata(engine: Engine) -> dict[str, str]:
    """Which engine trained the version, and for a Spark model how it is scored and why not served."""
    metadata = {"engine": engine.registry_name}
    if engine is Engine.SPARK:
        metadata.update({"spark_version": SPARK_VERSION, "scoring": SPARK_SCORING, "serving": SPARK_SERVING_NOTE})
    return metadata


def _inference_specification(settings: Settings, engine: Engine, image_uri: str,
                             model_artifact_uri: str) -> dict[str, Any]:
    if engine is Engine.SPARK:
        # The same shape, so that DescribeModelPackage reads alike for both engines; no serving
        # environment and no instance types to serve on, since nothing here serves a Spark model.
        return {"Containers": [{"Image": image_uri, "ModelDataUrl": model_artifact_uri}],
                "SupportedContentTypes": [CSV], "SupportedResponseMIMETypes": [CSV]}
    return {
        "Containers": [{
            "Image": image_uri,
            "ModelDataUrl": model_artifact_uri,
            "Environment": dict(INFERENCE_ENVIRONMENT),
        }],
        "SupportedContentTypes": [CSV, JSON],
        "SupportedResponseMIMETypes": [JSON],
        # Batch Transform of this version runs on the scoring step's instance type. No endpoint is
        # deployed by the pipeline; one would run the same serving container and handlers as that
        # transform, so the instance type known to serve this model is the one offered for it.
        "SupportedRealtimeInferenceInstanceTypes": [settings.resources_for("score").instance_type],
        "SupportedTransformInstanceTypes": [settings.resources_for("score").instance_type],
    }


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
    engine: Engine = Engine.SKLEARN,
) -> dict[str, Any]:
    """A ``CreateModelPackage`` request: a new version awaiting manual approval, carrying its lineage:
    what it was compared with and the deltas, the run that made it, its data profile (the baseline
    later runs measure drift against) and its report.

    ``ClientToken`` (per group and run) makes the call idempotent on SageMaker's side as well. Model
    package versions cannot carry Tags, so lineage goes in CustomerMetadataProperties,
    MetadataProperties and the model card. ``image_uri`` is the image of the run's ``engine``.
    """
    metadata = {name: f"{decision.metrics[name]:.6f}" for name in comparable_metric_names()
                if name in decision.metrics}
    metadata.update({
        "run_id": run_id,
        RUN_KEY_TAG: layout.key,
        "logical_date": logical_date,
        "data_source": data_source,
        "training_job": training_job,
        "report_uri": layout.report_file_uri,
        **_lineage(decision),
        **_campaign(decision),
        **_engine_metadata(engine),
    })
    metadata = {key: value[:MAX_METADATA_VALUE] for key, value in metadata.items()}
    statistics = {"ContentType": JSON, "S3Uri": f"{profile_uri}/{FILES['statistics']}"}
    constraints = {"ContentType": JSON, "S3Uri": f"{profile_uri}/{FILES['constraints']}"}
    champion = decision.champion
    compared = (f"compared with version {champion.get('version')} on {decision.champion_metric}"
                if champion else "first of its group: nothing to compare with")
    if engine is Engine.SPARK:
        compared += f"; {SPARK_SERVING_NOTE}"
    return {
        "ModelPackageGroupName": settings.model_package_group,
        "ModelPackageDescription": f"customer churn model trained by run {layout.key}; {compared}"[:1024],
        "ModelApprovalStatus": "PendingManualApproval",
        "ClientToken": registration_token(settings.model_package_group, layout.key),
        "InferenceSpecification": _inference_specification(settings, engine, image_uri, model_artifact_uri),
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {"ContentType": JSON, "S3Uri": layout.evaluation_file_uri},
            },
            "ModelDataQuality": {"Statistics": statistics, "Constraints": constraints},
        },
        "DriftCheckBaselines": {"ModelDataQuality": {"Statistics": statistics, "Constraints": constraints}},
        "MetadataProperties": {"GeneratedBy": f"airflow:{dag_id}/{run_id}"[:1024]},
        "ModelCard": _model_card(layout, decision, training_job),
        "CustomerMetadataProperties": metadata,
        "Tags": tags(settings, layout),
    }
