"""Every AWS call the DAG side makes through boto3 (S3 code and data uploads, the registry, the SNS
publish) carries parameters valid for botocore's bundled service models. The calls are recorded as
boto3 builds them (moto answers) and checked with botocore's own validator."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.settings import SCRIPTS_DIR, load_settings
from churn_pipeline.services import backend
from churn_pipeline.services.notifications import Notification, SnsChannel
from churn_pipeline.services.objectstore import S3ObjectStore, download, upload_tree
from churn_pipeline.services.registry import SageMakerRegistry
from tests.builders import registration_request

SETTINGS = load_settings({"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
                          "CHURN_BUCKET": "churn-calls", "CHURN_TAGS": "team=retention"})


def recording(client, calls: list) -> object:
    def record(params, model, **_):
        calls.append((client.meta.service_model.service_name, model, dict(params)))
    client.meta.events.register("provide-client-params.*.*", record)
    return client


@mock_aws
def test_s3_registry_and_sns_calls_are_valid(tmp_path: Path) -> None:
    calls: list = []
    s3 = recording(boto3.client("s3", region_name="us-east-1"), calls)
    sns = recording(boto3.client("sns", region_name="us-east-1"), calls)
    sagemaker = recording(boto3.client("sagemaker", region_name="us-east-1"), calls)
    s3.create_bucket(Bucket="churn-calls")
    topic = sns.create_topic(Name="team")["TopicArn"]
    store = S3ObjectStore(s3)
    layout = RunLayout(SETTINGS.base_uri, "20261126T020000Z")

    upload_tree(store, SCRIPTS_DIR, layout.code_uri)
    store.upload_file(SCRIPTS_DIR / "preprocessing.py", f"{layout.input_uri}/customers.csv")
    store.write_bytes(layout.notification_marker_uri("model_rejected"), b"{}")
    assert store.read_bytes(layout.notification_marker_uri("model_rejected")) == b"{}"
    assert download(store, layout.code_uri, tmp_path)
    store.delete(layout.notification_marker_uri("model_rejected"))
    SnsChannel(sns, topic).send(Notification(reason="model_rejected", subject="s" * 150, message="m", run_id="r",
                                             run_key=layout.key, accuracy=0.7, threshold=0.75))
    registry = SageMakerRegistry(sagemaker, store, SETTINGS.base_uri)
    registry.register(registration_request(SETTINGS, layout.key))
    assert registry.champion(SETTINGS.model_package_group) is None  # nothing approved yet
    assert registry.newest(SETTINGS.model_package_group).run_key == layout.key

    operations = {(service, model.name) for service, model, _ in calls}
    assert {("s3", "PutObject"), ("s3", "GetObject"), ("s3", "ListObjectsV2"), ("s3", "DeleteObject"),
            ("sns", "Publish"), ("sagemaker", "CreateModelPackage"),
            ("sagemaker", "DescribeModelPackage")} <= operations
    for service, model, params in calls:
        report = ParamValidator().validate(params, model.input_shape)
        assert not report.has_errors(), f"{service}.{model.name}: {report.generate_report()}"


def test_the_image_is_resolved_at_run_time_or_taken_from_the_setting() -> None:
    resolved = backend.container_image(load_settings({"CHURN_REGION": "eu-west-1"}))
    assert resolved == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
    custom = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn:7"
    assert backend.container_image(load_settings({"CHURN_IMAGE_URI": custom})) == custom


def test_the_image_read_from_the_sdks_table_is_what_the_sdks_retrieve_gives() -> None:
    from sagemaker.core import image_uris

    table = json.loads((Path(image_uris.__file__).parent / "image_uri_config" / "sklearn.json").read_text())
    # every version in one region, and this project's version in a region of every partition
    # (each call loads botocore's endpoint data: all 370 pairs would take half a minute)
    cases = [("eu-west-1", version) for version in table["training"]["versions"]]
    cases += [(region, "1.9-0") for region in ("us-east-1", "il-central-1", "cn-north-1", "us-gov-west-1",
                                                "us-iso-east-1", "us-isob-east-1", "us-isof-south-1")]
    for region, version in cases:
        expected = image_uris.retrieve("sklearn", region=region, version=version, py_version="py3",
                                       instance_type="ml.m5.xlarge")
        assert backend.sklearn_image_uri(region, version) == expected, (region, version)


def test_instance_types_the_table_read_does_not_cover_go_through_the_sdk() -> None:
    assert all(backend.PLAIN_CPU_INSTANCE.match(t) for t in ("ml.m5.xlarge", "ml.c5n.2xlarge", "ml.r6i.large",
                                                              "ml.t3.medium", "ml.m5d.24xlarge"))
    assert not any(backend.PLAIN_CPU_INSTANCE.match(t) for t in ("ml.p3.2xlarge", "ml.g5.xlarge", "ml.m6g.large",
                                                                  "ml.c7gn.xlarge", "ml.inf2.xlarge", "local"))
    with pytest.raises(ValueError, match="Unsupported processor: gpu"):  # the SDK's own refusal
        backend.container_image(load_settings({"CHURN_TRAIN_INSTANCE_TYPE": "ml.p3.2xlarge"}))


def test_a_region_without_the_image_is_named() -> None:
    with pytest.raises(ValueError, match="Unsupported region: mars-north-1"):
        backend.container_image(load_settings({"CHURN_REGION": "mars-north-1"}))


def test_an_unknown_framework_version_is_named() -> None:
    with pytest.raises(ValueError, match=r"9\.9"):
        backend.container_image(load_settings({"CHURN_FRAMEWORK_VERSION": "9.9"}))
