"""SageMaker Model Registry (moto): a version per run, found again rather than duplicated."""

from __future__ import annotations

import boto3
from moto import mock_aws

from churn_pipeline.registry import SageMakerRegistry
from churn_pipeline.settings import load_settings
from tests.builders import registration_request

SETTINGS = load_settings({"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
                          "CHURN_MODEL_PACKAGE_GROUP": "churn-models"})


def request(key: str) -> dict:
    return registration_request(SETTINGS, key)


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
