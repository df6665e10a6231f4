"""SageMaker Model Registry (moto): a version per run, found again rather than duplicated."""

from __future__ import annotations

import boto3
from moto import mock_aws

from churn_pipeline import request_builders
from churn_pipeline.layout import RunLayout
from churn_pipeline.registry import SageMakerRegistry
from churn_pipeline.settings import load_settings

SETTINGS = load_settings({"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
                          "CHURN_MODEL_PACKAGE_GROUP": "churn-models"})


def request(key: str) -> dict:
    layout = RunLayout(SETTINGS.base_uri, key)
    return request_builders.model_package_request(
        SETTINGS, layout, image_uri="img", model_artifact_uri=f"{layout.model_uri}/j/output/model.tar.gz",
        metrics={"accuracy": 0.8, "f1_score": 0.6, "roc_auc": 0.85}, run_id=f"scheduled__{key}",
        logical_date="2026-11-26T02:00:00+00:00", data_source="s3://b/in.csv", training_job="churn-train-x")


@mock_aws
def test_registering_twice_for_one_run_leaves_one_version() -> None:
    client = boto3.client("sagemaker", region_name="us-east-1")
    registry = SageMakerRegistry(client)

    first = registry.register(request("20261126T020000Z"))
    again = registry.register(request("20261126T020000Z"))
    other = registry.register(request("20261127T020000Z"))

    assert (first.version, first.created, first.approval_status) == (1, True, "PendingManualApproval")
    assert (again.version, again.created, again.identifier) == (1, False, first.identifier)
    assert other.version == 2
    packages = client.list_model_packages(ModelPackageGroupName="churn-models")["ModelPackageSummaryList"]
    assert len(packages) == 2
