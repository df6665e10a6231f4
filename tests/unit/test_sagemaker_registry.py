"""SageMaker Model Registry (moto): a version per run, found again rather than duplicated, with the
same calls whether the group holds one version or fifty."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import boto3
from moto import mock_aws

from churn_pipeline.domain.layout import registration_token
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.services.objectstore import S3ObjectStore
from churn_pipeline.services.registry import SageMakerRegistry
from tests.builders import registration_request

SETTINGS = load_settings({"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
                          "CHURN_MODEL_PACKAGE_GROUP": "churn-models", "CHURN_BUCKET": "churn-registry"})


def request(key: str) -> dict:
    return registration_request(SETTINGS, key)


def clients() -> tuple:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="churn-registry")
    return boto3.client("sagemaker", region_name="us-east-1"), s3


def counted(client, call: Callable[[], object]) -> Counter:
    """The API operations ``call()`` makes through ``client``, by name."""
    calls: Counter = Counter()

    def count(model, **_) -> None:
        calls.update([model.name])

    client.meta.events.register("before-call.*.*", count)
    try:
        call()
    finally:
        client.meta.events.unregister("before-call.*.*", count)
    return calls


@mock_aws
def test_registering_twice_for_one_run_leaves_one_version() -> None:
    sagemaker, s3 = clients()
    registry = SageMakerRegistry(sagemaker, S3ObjectStore(s3), SETTINGS.base_uri)

    first = registry.register(request("20261126T020000Z"))
    again = registry.register(request("20261126T020000Z"))
    other = registry.register(request("20261127T020000Z"))

    assert (first.version, first.created, first.approval_status) == (1, True, "PendingManualApproval")
    assert (again.version, again.created, again.identifier) == (1, False, first.identifier)
    assert other.version == 2
    packages = sagemaker.list_model_packages(ModelPackageGroupName="churn-models")["ModelPackageSummaryList"]
    assert len(packages) == 2


def calls_to_register_and_find_again(versions_before: int) -> tuple[Counter, Counter]:
    """The SageMaker calls of registering a run's version, and of finding it again, in a group that
    already holds ``versions_before`` versions of other runs."""
    sagemaker, s3 = clients()
    registry = SageMakerRegistry(sagemaker, S3ObjectStore(s3), SETTINGS.base_uri)
    for day in range(versions_before):
        registry.register(request(f"2025{1 + day // 28:02d}{1 + day % 28:02d}T020000Z"))
    results = []
    registering = counted(sagemaker, lambda: results.append(registry.register(request("20261126T020000Z"))))
    finding = counted(sagemaker, lambda: results.append(registry.register(request("20261126T020000Z"))))
    created, found = results
    assert (created.created, found.created, found.version) == (True, False, versions_before + 1)
    return registering, finding


def test_the_calls_of_registering_and_finding_do_not_grow_with_the_versions_of_the_group() -> None:
    with mock_aws():
        few = calls_to_register_and_find_again(1)
    with mock_aws():
        many = calls_to_register_and_find_again(50)
    assert few == many
    registering, finding = many
    assert registering == Counter({"DescribeModelPackageGroup": 1, "CreateModelPackage": 1, "DescribeModelPackage": 1})
    assert finding == Counter({"DescribeModelPackageGroup": 1, "DescribeModelPackage": 1})


def test_the_client_token_is_one_per_group_and_run_and_fits_the_api() -> None:
    token = registration_token("churn-models", "20261126T020000Z")
    assert request("20261126T020000Z")["ClientToken"] == token
    assert token == registration_token("churn-models", "20261126T020000Z")
    assert token != registration_token("other-models", "20261126T020000Z")
    assert token != registration_token("churn-models", "20261127T020000Z")
    assert len(registration_token("g" * 63, "20261126T020000Z")) <= 36


@mock_aws
def test_linking_the_outcomes_page_keeps_the_packages_other_metadata() -> None:
    sagemaker, s3 = clients()
    registry = SageMakerRegistry(sagemaker, S3ObjectStore(s3), SETTINGS.base_uri)
    registered = registry.register(request("20261126T020000Z"))
    before = sagemaker.describe_model_package(ModelPackageName=registered.identifier)["CustomerMetadataProperties"]

    page = f"{SETTINGS.base_uri}/outcomes/outcomes.html"
    registry.link_outcomes(registered.identifier, page)
    registry.link_outcomes(registered.identifier, page)  # the next outcome run: already linked

    after = sagemaker.describe_model_package(ModelPackageName=registered.identifier)["CustomerMetadataProperties"]
    assert after == {**before, "outcomes_uri": page}  # an update without the others would erase them
