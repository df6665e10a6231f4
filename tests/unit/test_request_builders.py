"""The request builders: every request is valid for botocore's bundled SageMaker service model, with
default settings and with every option set, and honours each setting."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.validate import ParamValidator

from churn_pipeline.domain.attempt_planning import MAX_ATTEMPTS, plan_attempt
from churn_pipeline.domain.layout import RUN_KEY_TAG, RunLayout, job_name
from churn_pipeline.domain.payloads import ModelVersionRef
from churn_pipeline.domain.sagemaker_api import JobKind
from churn_pipeline.domain.settings import MAX_JOB_PREFIX_LENGTH, load_settings
from churn_pipeline.requests.model_package import model_package_request
from churn_pipeline.requests.processing import (
    PREPROCESSING_OUTPUTS,
    EvaluationInputs,
    evaluate_request,
    preprocess_request,
)
from churn_pipeline.requests.training import TRAINING_CHANNELS, train_request
from tests.builders import champion_block, passing_decision

ROLE = "arn:aws:iam::123456789012:role/churn-sagemaker"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
EVERY_OPTION = {
    "CHURN_BACKEND": "sagemaker",
    "CHURN_ROLE_ARN": ROLE,
    "CHURN_BUCKET": "acme-ml-artifacts",
    "CHURN_PREFIX": "teams/retention/churn",
    "CHURN_REGION": "eu-west-1",
    "CHURN_PREPROCESS_INSTANCE_TYPE": "ml.m5.2xlarge",
    "CHURN_PREPROCESS_INSTANCE_COUNT": "2",
    "CHURN_TRAIN_INSTANCE_TYPE": "ml.c5.4xlarge",
    "CHURN_EVALUATE_INSTANCE_TYPE": "ml.m5.large",
    "CHURN_VOLUME_SIZE_GB": "100",
    "CHURN_MAX_RUNTIME_SECONDS": "7200",
    "CHURN_IMAGE_URI": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn-sklearn:1.9",
    "CHURN_KMS_KEY_ID": "arn:aws:kms:eu-west-1:123456789012:key/0c7a1f6e-1111-2222-3333-444455556666",
    "CHURN_SUBNETS": "subnet-0a1b2c3d,subnet-4e5f6a7b",
    "CHURN_SECURITY_GROUP_IDS": "sg-0123456789abcdef0",
    "CHURN_NETWORK_ISOLATION": "true",
    "CHURN_TAGS": "team=retention,cost-center=4711",
    "CHURN_MODEL_PACKAGE_GROUP": "retention-churn",
    "CHURN_JOB_PREFIX": "x" * MAX_JOB_PREFIX_LENGTH,
}
MODEL = botocore.session.get_session().get_service_model("sagemaker")
CHAMPION = ModelVersionRef(version=3, identifier="arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn/3",
                           approval_status="Approved", model_uri="s3://acme/churn/runs/k/model/j/output/model.tar.gz",
                           statistics_uri="s3://acme/churn/runs/k/preprocessing/profile/statistics.json")


def validate(operation: str, request: dict) -> None:
    report = ParamValidator().validate(request, MODEL.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def all_requests(settings):
    layout = RunLayout(settings.base_uri, "20261126T020000Z")
    splits = {name: layout.preprocessing_uri(name) for name in PREPROCESSING_OUTPUTS}

    def longest(step: str) -> str:
        return job_name(settings.job_prefix, step, layout.key, MAX_ATTEMPTS)

    return {
        "preprocess": ("CreateProcessingJob", preprocess_request(
            settings, layout, job_name=longest("preprocess"), image_uri=IMAGE,
            input_uri=settings.default_input_uri, schema_uri=layout.schema_uri)),
        "train": ("CreateTrainingJob", train_request(
            settings, layout, job_name=longest("train"), image_uri=IMAGE,
            channels={c: splits[c] for c in TRAINING_CHANNELS})),
        "evaluate": ("CreateProcessingJob", evaluate_request(
            settings, layout, job_name=longest("evaluate"), image_uri=IMAGE,
            model_artifact_uri=f"{layout.model_uri}/job/output/model.tar.gz", holdout_uri=splits["holdout"])),
        "evaluate against a champion": ("CreateProcessingJob", evaluate_request(
            settings, layout, job_name=longest("evaluate"), image_uri=IMAGE,
            model_artifact_uri=f"{layout.model_uri}/job/output/model.tar.gz", holdout_uri=splits["holdout"],
            compared=EvaluationInputs(champion=CHAMPION, baseline=CHAMPION))),
        "register": ("CreateModelPackage", model_package_request(
            settings, layout, image_uri=IMAGE, model_artifact_uri=f"{layout.model_uri}/job/output/model.tar.gz",
            decision=passing_decision(), profile_uri=splits["profile"],
            run_id="scheduled__2026-11-26T02:00:00+00:00", dag_id="customer_churn_pipeline",
            logical_date="2026-11-26T02:00:00+00:00", data_source=settings.default_input_uri,
            training_job=longest("train"))),
        "register after a comparison": ("CreateModelPackage", model_package_request(
            settings, layout, image_uri=IMAGE, model_artifact_uri=f"{layout.model_uri}/job/output/model.tar.gz",
            decision=passing_decision(champion=champion_block(3), drifted_features=("MonthlyCharges",)),
            profile_uri=splits["profile"], run_id="manual__" + "x" * 300, dag_id="customer_churn_pipeline",
            logical_date="2026-11-26T02:00:00+00:00", data_source="s3://" + "d" * 400,
            training_job=longest("train"))),
    }


@pytest.mark.parametrize("environment", [{"CHURN_ROLE_ARN": ROLE}, EVERY_OPTION], ids=["defaults", "every option"])
@pytest.mark.parametrize("step", ["preprocess", "train", "evaluate", "evaluate against a champion", "register",
                                  "register after a comparison"])
def test_requests_are_valid_for_botocores_service_model(environment: dict, step: str) -> None:
    operation, request = all_requests(load_settings(environment))[step]
    validate(operation, request)


def test_default_settings_use_ml_m5_xlarge_and_the_missions_hyperparameters() -> None:
    requests = all_requests(load_settings({"CHURN_ROLE_ARN": ROLE}))
    for step in ("preprocess", "evaluate"):
        cluster = requests[step][1]["ProcessingResources"]["ClusterConfig"]
        assert (cluster["InstanceType"], cluster["InstanceCount"]) == ("ml.m5.xlarge", 1)
    train = requests["train"][1]
    assert train["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert {k: train["HyperParameters"][k] for k in ("n-estimators", "max-depth", "min-samples-split")} == \
        {"n-estimators": "100", "max-depth": "10", "min-samples-split": "4"}
    # each tree draws at most this many rows; smaller training splits keep the mission's full bootstrap
    assert train["HyperParameters"]["max-samples"] == "200000"
    assert train["HyperParameters"]["sagemaker_program"] == '"training.py"'
    assert "NetworkConfig" not in requests["preprocess"][1] and "VpcConfig" not in train


def test_every_option_reaches_the_requests() -> None:
    settings = load_settings(EVERY_OPTION)
    requests = all_requests(settings)
    preprocess, train, evaluate = requests["preprocess"][1], requests["train"][1], requests["evaluate"][1]
    assert preprocess["ProcessingResources"]["ClusterConfig"] == {
        "InstanceCount": 2, "InstanceType": "ml.m5.2xlarge", "VolumeSizeInGB": 100,
        "VolumeKmsKeyId": EVERY_OPTION["CHURN_KMS_KEY_ID"]}
    assert preprocess["ProcessingOutputConfig"]["KmsKeyId"] == EVERY_OPTION["CHURN_KMS_KEY_ID"]
    assert preprocess["NetworkConfig"] == {"EnableNetworkIsolation": True, "VpcConfig": {
        "SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]}}
    assert preprocess["StoppingCondition"]["MaxRuntimeInSeconds"] == 7200
    assert evaluate["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.large"
    assert train["ResourceConfig"]["InstanceType"] == "ml.c5.4xlarge"
    assert train["OutputDataConfig"]["KmsKeyId"] == EVERY_OPTION["CHURN_KMS_KEY_ID"]
    assert train["EnableNetworkIsolation"] is True and train["VpcConfig"]["Subnets"]
    # with network isolation the code travels as a channel, as the SageMaker SDK does it
    assert "code" in {c["ChannelName"] for c in train["InputDataConfig"]}
    assert train["HyperParameters"]["sagemaker_submit_directory"] == '"/opt/ml/input/data/code/sourcedir.tar.gz"'
    tags = {tag["Key"]: tag["Value"] for tag in preprocess["Tags"]}
    assert tags["team"] == "retention" and tags["cost-center"] == "4711"
    assert tags[RUN_KEY_TAG] == "20261126T020000Z"
    assert all(uri.startswith("s3://acme-ml-artifacts/teams/retention/churn/runs/20261126T020000Z/")
               for uri in [o["S3Output"]["S3Uri"] for o in preprocess["ProcessingOutputConfig"]["Outputs"]])
    register = requests["register"][1]
    assert register["ModelPackageGroupName"] == "retention-churn"
    assert register["ModelApprovalStatus"] == "PendingManualApproval"
    assert register["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith(
        "/runs/20261126T020000Z/evaluation/evaluation.json")


def test_job_names_fit_sagemaker_for_the_longest_prefix_and_the_last_attempt() -> None:
    settings = load_settings(EVERY_OPTION)
    for kind, step in ((JobKind.PROCESSING, "preprocess"), (JobKind.TRAINING, "train"),
                       (JobKind.PROCESSING, "evaluate")):
        last = job_name(settings.job_prefix, step, "20261126T020000Z", MAX_ATTEMPTS)
        assert len(last) <= 63 and last.endswith(f"-r{MAX_ATTEMPTS}"), last
        # and that is the last name the attempts of a step that keeps failing ever take
        tried: list[str] = []

        def every_attempt_failed(name: str, tried: list[str] = tried, status: str = kind.status_field) -> dict:
            tried.append(name)
            return {status: "Failed"}

        with pytest.raises(RuntimeError, match=f"failed {MAX_ATTEMPTS} times"):
            plan_attempt(kind, settings.job_prefix, step, "20261126T020000Z", every_attempt_failed)
        assert tried[-1] == last and len(tried) == MAX_ATTEMPTS


def test_the_sagemaker_backend_requires_a_role() -> None:
    settings = load_settings({"CHURN_BACKEND": "sagemaker"})
    with pytest.raises(ValueError, match="the sagemaker backend needs CHURN_ROLE_ARN"):
        all_requests(settings)


def test_builders_are_pure_and_repeatable() -> None:
    settings = load_settings(EVERY_OPTION)
    assert all_requests(settings) == all_requests(settings)
