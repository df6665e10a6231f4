"""The Spark engine's requests: each is valid for botocore's SageMaker service model and has exactly
the shape the SageMaker Python SDK's ``PySparkProcessor.run`` sends (v2.257.6): ``smspark-submit``
with ``--py-files`` and the event-log folder before the script, the job's own inputs then
``py-files``, ``conf`` and ``code``, the event logs as a ``Continuous`` output, the cluster's size.
Data sets are ``s3://`` arguments; the driver's small files are ordinary outputs under the names the
scikit-learn engine uses."""

from __future__ import annotations

import json
from dataclasses import replace

import botocore.session
import pytest
from botocore.validate import ParamValidator

from churn_pipeline.domain.layout import RunLayout, job_name
from churn_pipeline.domain.payloads import ChampionLookup, JobResult, ModelVersionRef, StagedInputs
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.requests.processing import EvaluationInputs, evaluate_request
from churn_pipeline.requests.spark import (
    DRIVER_JAVA_OPTIONS,
    EXECUTOR_JAVA_OPTIONS,
    shuffle_partitions,
    spark_configuration,
    spark_configuration_file,
    spark_evaluate_request,
    spark_preprocess_request,
    spark_train_request,
)
from churn_pipeline.requests.steps import request_for_step

ROLE = "arn:aws:iam::123456789012:role/churn-sagemaker"
SPARK_IMAGE = "173754725891.dkr.ecr.us-east-1.amazonaws.com/sagemaker-spark-processing:3.5-cpu-py312-v1.3"
KEY = "20261201T020000Z"
RUN = f"s3://customer-churn-pipeline/churn-pipeline/runs/{KEY}"
ENVIRONMENT = {"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": ROLE, "CHURN_SNS_TOPIC_ARN": "arn:aws:sns:x"}
MODEL = botocore.session.get_session().get_service_model("sagemaker")
CHAMPION = ModelVersionRef(version=3, identifier="arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3",
                           approval_status="Approved", model_uri="s3://b/runs/k/model/j/output/model.tar.gz",
                           statistics_uri="s3://b/runs/k/preprocessing/profile/statistics.json")


def validate(request: dict) -> None:
    report = ParamValidator().validate(request, MODEL.operation_model("CreateProcessingJob").input_shape)
    assert not report.has_errors(), report.generate_report()


def sdk_input(name: str, uri: str, local_path: str) -> dict:
    """A ProcessingInput as ``ProcessingInput._to_request_dict`` writes it (S3Input.to_boto's fields)."""
    return {"InputName": name, "AppManaged": False,
            "S3Input": {"S3Uri": uri, "LocalPath": local_path, "S3DataType": "S3Prefix", "S3InputMode": "File",
                        "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"}}


def sdk_output(name: str, uri: str, local_path: str, mode: str = "EndOfJob") -> dict:
    return {"OutputName": name, "AppManaged": False,
            "S3Output": {"S3Uri": uri, "LocalPath": local_path, "S3UploadMode": mode}}


def golden(step: str, script: str, *, job: str, count: int, inputs: list, outputs: list, arguments: list) -> dict:
    """What PySparkProcessor(...).run(submit_app=<script>, submit_py_files=[churn_common.zip],
    configuration=..., spark_event_logs_s3_uri=..., inputs=..., outputs=..., arguments=...) sends."""
    return {
        "ProcessingJobName": job,
        "ProcessingInputs": [
            *inputs,
            sdk_input("py-files", f"{RUN}/code/py-files", "/opt/ml/processing/input/py-files"),
            sdk_input("conf", f"{RUN}/code/spark-conf/{step}/configuration.json", "/opt/ml/processing/input/conf"),
            sdk_input("code", f"{RUN}/code/spark/{script}", "/opt/ml/processing/input/code"),
        ],
        "ProcessingOutputConfig": {"Outputs": [
            *outputs,
            sdk_output("spark-events", f"{RUN}/spark-events/{job}", "/opt/ml/processing/spark-events/",
                       "Continuous"),
        ]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": count, "InstanceType": "ml.m5.4xlarge",
                                                  "VolumeSizeInGB": 30}},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "AppSpecification": {
            "ImageUri": SPARK_IMAGE,
            "ContainerEntrypoint": ["smspark-submit", "--py-files", "/opt/ml/processing/input/py-files",
                                    "--local-spark-event-logs-dir", "/opt/ml/processing/spark-events/",
                                    f"/opt/ml/processing/input/code/{script}"],
            "ContainerArguments": arguments,
        },
        "Environment": {"PYTHONUNBUFFERED": "1"},
        "RoleArn": ROLE,
        "Tags": [{"Key": "run_key", "Value": KEY}],
    }


@pytest.fixture()
def settings():
    return load_settings(ENVIRONMENT)


@pytest.fixture()
def layout(settings):
    return RunLayout(settings.base_uri, KEY)


def test_preprocessing_is_shaped_as_the_sdk_sends_it(settings, layout) -> None:
    job = job_name("churn", "preprocess", KEY)
    request = spark_preprocess_request(settings, layout, job_name=job, image_uri=SPARK_IMAGE,
                                       input_uri="s3://raw/customers/2026-12-01/",
                                       schema_uri=f"{RUN}/schema/schema.json")
    assert request == golden(
        "preprocess", "preprocess_spark.py", job=job, count=2,
        inputs=[sdk_input("schema", f"{RUN}/schema/schema.json", "/opt/ml/processing/input/schema")],
        outputs=[sdk_output(name, f"{RUN}/preprocessing/{name}", f"/opt/ml/processing/output/{name}")
                 for name in ("preprocessor", "quality", "profile")],
        arguments=["--input", "s3://raw/customers/2026-12-01/",
                   "--schema", "/opt/ml/processing/input/schema/schema.json",
                   "--output", f"{RUN}/preprocessing"])
    validate(request)


def test_training_is_a_processing_job_on_four_instances_with_the_forests_hyperparameters(settings, layout) -> None:
    job = job_name("churn", "train", KEY, 2)
    request = spark_train_request(settings, layout, job_name=job, image_uri=SPARK_IMAGE,
                                  preprocessor_uri=f"{RUN}/preprocessing/preprocessor",
                                  hyperparameters={"n-estimators": 100, "max-depth": 10, "value-retained": 500.0})
    assert request == golden(
        "train", "train_spark.py", job=job, count=4,
        inputs=[sdk_input("preprocessor", f"{RUN}/preprocessing/preprocessor",
                          "/opt/ml/processing/input/preprocessor")],
        outputs=[sdk_output("model", f"{RUN}/model/{job}/output", "/opt/ml/processing/output/model")],
        arguments=["--train", f"{RUN}/preprocessing/train", "--validation", f"{RUN}/preprocessing/validation",
                   "--preprocessor", "/opt/ml/processing/input/preprocessor",
                   "--output-dir", "/opt/ml/processing/output/model", "--work-uri", f"{RUN}/spark-work/{job}",
                   "--n-estimators", "100", "--max-depth", "10", "--value-retained", "500.0"])
    validate(request)


def test_evaluation_scores_the_holdout_prefix_with_the_champions_model_and_the_baseline_profile(settings,
                                                                                               layout) -> None:
    job = job_name("churn", "evaluate", KEY)
    model = f"{RUN}/model/churn-train-{KEY}/output/model.tar.gz"
    request = spark_evaluate_request(settings, layout, job_name=job, image_uri=SPARK_IMAGE, model_archive_uri=model,
                                     compared=EvaluationInputs(champion=CHAMPION, baseline=CHAMPION))
    assert request == golden(
        "evaluate", "evaluate_spark.py", job=job, count=2,
        inputs=[sdk_input("model", model, "/opt/ml/processing/input/model"),
                sdk_input("champion", CHAMPION.model_uri, "/opt/ml/processing/input/champion"),
                sdk_input("baseline", CHAMPION.statistics_uri, "/opt/ml/processing/input/baseline")],
        outputs=[sdk_output("evaluation", f"{RUN}/evaluation", "/opt/ml/processing/output/evaluation")],
        arguments=["--model", "/opt/ml/processing/input/model", "--holdout", f"{RUN}/preprocessing/holdout",
                   "--output-dir", "/opt/ml/processing/output/evaluation", "--work-uri", f"{RUN}/spark-work/{job}",
                   "--champion-identifier", CHAMPION.identifier, "--champion-version", "3",
                   "--champion", "/opt/ml/processing/input/champion",
                   "--baseline-identifier", CHAMPION.identifier, "--baseline-version", "3",
                   "--baseline-uri", CHAMPION.statistics_uri])
    validate(request)


WHO = ["--baseline-identifier", CHAMPION.identifier, "--baseline-version", "3"]
# case: what the evaluation compares with, the baseline arguments it gets, whether the profile is sent
BASELINES = {
    "a usable profile": (EvaluationInputs(baseline=CHAMPION), [*WHO, "--baseline-uri", CHAMPION.statistics_uri],
                         True),
    "a profile that cannot be used": (
        EvaluationInputs(baseline=CHAMPION, baseline_problem="its profile is gone"),
        [*WHO, "--baseline-uri", CHAMPION.statistics_uri, "--baseline-unavailable", "its profile is gone"], False),
    "a version without a profile": (EvaluationInputs(baseline=replace(CHAMPION, statistics_uri=None)),
                                    [*WHO, "--baseline-unavailable", "it has no data profile"], False),
    "drift off": (EvaluationInputs(measure_drift=False), ["--no-drift"], False),
    "a first run": (EvaluationInputs(), [], False),
}


def baseline_inputs(request: dict) -> list:
    return [item for item in request["ProcessingInputs"] if item["InputName"] == "baseline"]


def baseline_arguments(request: dict) -> list:
    """The arguments from the first about the baseline or drift on (they come last)."""
    arguments = request["AppSpecification"].get("ContainerArguments", [])
    starts = [index for index, argument in enumerate(arguments)
              if argument.startswith("--baseline") or argument == "--no-drift"]
    return arguments[starts[0]:] if starts else []


@pytest.mark.parametrize("case", list(BASELINES))
def test_the_baseline_reaches_the_spark_evaluation_as_it_reaches_the_scikit_learn_one(settings, layout,
                                                                                      case: str) -> None:
    """The same baseline input and the same baseline arguments, in the same order, on both engines:
    the two evaluation scripts read them alike."""
    compared, expected_arguments, sent = BASELINES[case]
    spark = spark_evaluate_request(settings, layout, job_name="e", image_uri=SPARK_IMAGE,
                                   model_archive_uri=f"{RUN}/model/t/output/model.tar.gz", compared=compared)
    sklearn = evaluate_request(settings, layout, job_name="e", image_uri="sklearn-image",
                               model_artifact_uri=f"{RUN}/model/t/output/model.tar.gz",
                               holdout_uri=f"{RUN}/preprocessing/holdout", compared=compared)
    assert baseline_arguments(spark) == baseline_arguments(sklearn) == expected_arguments
    # the same profile in the same folder (the Spark request spells its inputs as the SDK does)
    assert [(item["S3Input"]["S3Uri"], item["S3Input"]["LocalPath"]) for item in baseline_inputs(spark)] == \
        [(item["S3Input"]["S3Uri"], item["S3Input"]["LocalPath"]) for item in baseline_inputs(sklearn)]
    assert baseline_inputs(spark) == ([sdk_input("baseline", CHAMPION.statistics_uri,
                                                 "/opt/ml/processing/input/baseline")] if sent else [])
    validate(spark)


def test_a_champion_whose_model_cannot_be_used_is_named_with_the_reason_and_not_sent(settings, layout) -> None:
    request = spark_evaluate_request(settings, layout, job_name="e", image_uri=SPARK_IMAGE,
                                     model_archive_uri=f"{RUN}/model/t/output/model.tar.gz",
                                     compared=EvaluationInputs(champion=CHAMPION, champion_problem="its model is gone"))
    assert [item["InputName"] for item in request["ProcessingInputs"]] == ["model", "py-files", "conf", "code"]
    arguments = request["AppSpecification"]["ContainerArguments"]
    assert arguments[-6:] == ["--champion-identifier", CHAMPION.identifier, "--champion-version", "3",
                              "--champion-unavailable", "its model is gone"]
    assert "--champion" not in arguments
    alone = spark_evaluate_request(settings, layout, job_name="e", image_uri=SPARK_IMAGE,
                                   model_archive_uri=f"{RUN}/model/t/output/model.tar.gz")
    assert not any(argument.startswith("--champion") for argument in alone["AppSpecification"]["ContainerArguments"])


def test_evaluation_refuses_a_model_folder_in_place_of_the_archive(settings, layout) -> None:
    with pytest.raises(ValueError, match=r"needs the trained model\.tar\.gz"):
        spark_evaluate_request(settings, layout, job_name="j", image_uri=SPARK_IMAGE,
                               model_archive_uri=f"{RUN}/model/j/output")


def test_every_option_reaches_the_spark_requests_and_they_stay_valid() -> None:
    settings = load_settings({**ENVIRONMENT, "CHURN_SPARK_TRAIN_INSTANCE_TYPE": "ml.r5.8xlarge",
                              "CHURN_SPARK_TRAIN_INSTANCE_COUNT": "10", "CHURN_VOLUME_SIZE_GB": "200",
                              "CHURN_KMS_KEY_ID": "arn:aws:kms:us-east-1:123456789012:key/k",
                              "CHURN_SUBNETS": "subnet-1", "CHURN_SECURITY_GROUP_IDS": "sg-1",
                              "CHURN_NETWORK_ISOLATION": "true", "CHURN_TAGS": "team=retention",
                              "CHURN_MAX_RUNTIME_SECONDS": "14400"})
    layout = RunLayout(settings.base_uri, KEY)
    request = spark_train_request(settings, layout, job_name=job_name("churn", "train", KEY, 20),
                                  image_uri=SPARK_IMAGE, preprocessor_uri=f"{RUN}/preprocessing/preprocessor",
                                  hyperparameters={"n-estimators": 100})
    validate(request)
    assert request["ProcessingResources"]["ClusterConfig"] == {
        "InstanceCount": 10, "InstanceType": "ml.r5.8xlarge", "VolumeSizeInGB": 200,
        "VolumeKmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k"}
    assert request["ProcessingOutputConfig"]["KmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/k"
    assert request["NetworkConfig"] == {"EnableNetworkIsolation": True,
                                        "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 14400}
    assert {"Key": "team", "Value": "retention"} in request["Tags"]


def test_the_local_backend_asks_for_one_instance_unless_told_otherwise() -> None:
    """One Spark worker per instance runs on this machine: local[*] by default, a cluster when asked."""
    local = load_settings({})
    assert [local.spark_resources_for(step).instance_count for step in ("preprocess", "train", "evaluate")] == \
        [1, 1, 1]
    assert load_settings({"CHURN_SPARK_TRAIN_INSTANCE_COUNT": "2"}).spark_resources_for("train").instance_count == 2


# ---------------------------------------------------------------------------------- configuration.json


def test_the_configuration_replaces_both_jvm_options_java_17_refuses() -> None:
    """smspark's bootstrapper writes CMS options for the driver and PrintGCDateStamps for executors,
    which Java 17 rejects; a user's spark-defaults come later and win."""
    (defaults,) = spark_configuration("ml.m5.4xlarge", 4)
    assert defaults["Classification"] == "spark-defaults"
    properties = defaults["Properties"]
    assert properties["spark.driver.defaultJavaOptions"] == DRIVER_JAVA_OPTIONS
    assert properties["spark.executor.defaultJavaOptions"] == EXECUTOR_JAVA_OPTIONS
    for options in (DRIVER_JAVA_OPTIONS, EXECUTOR_JAVA_OPTIONS):
        for removed in ("UseConcMarkSweepGC", "CMSInitiatingOccupancyFraction", "CMSClassUnloadingEnabled",
                        "PrintGCDateStamps", "PrintGCDetails"):
            assert removed not in options
        assert "-XX:OnOutOfMemoryError='kill -9 %p'" in options  # the image's own kill stays
    assert all(isinstance(value, str) for value in properties.values()), "EMR classifications take strings"


def test_shuffle_partitions_follow_the_cluster_two_per_vcpu() -> None:
    assert shuffle_partitions("ml.m5.4xlarge", 4) == 4 * 16 * 2
    assert shuffle_partitions("ml.m5.xlarge", 1) == 8
    assert shuffle_partitions("ml.g5.xlarge", 3) == 200, "an unknown type keeps Spark's own default"
    (defaults,) = spark_configuration("ml.r5.2xlarge", 3)
    assert defaults["Properties"]["spark.sql.shuffle.partitions"] == "48"


def test_each_steps_configuration_file_is_sized_by_its_own_cluster() -> None:
    settings = load_settings({**ENVIRONMENT, "CHURN_SPARK_EVALUATE_INSTANCE_TYPE": "ml.m5.xlarge"})
    train = json.loads(spark_configuration_file(settings, "train"))
    evaluate = json.loads(spark_configuration_file(settings, "evaluate"))
    assert train[0]["Properties"]["spark.sql.shuffle.partitions"] == "128"  # 4 x 16 vCPU x 2
    assert evaluate[0]["Properties"]["spark.sql.shuffle.partitions"] == "16"  # 2 x 4 vCPU x 2


def test_the_configuration_passes_the_sdks_own_check() -> None:
    """The SDK refuses unknown classifications and keys before it uploads a configuration."""
    processing = pytest.importorskip("sagemaker.core.spark.processing")
    processing.SparkConfigUtils.validate_configuration(spark_configuration("ml.m5.4xlarge", 4))


# ---------------------------------------------------------------------------------- dispatch


def staged(engine: str) -> StagedInputs:
    return StagedInputs(run_key=KEY, run_uri=RUN, input_uri="s3://raw/customers/", schema_uri=f"{RUN}/schema/s.json",
                        code_uri=f"{RUN}/code", image_uri=SPARK_IMAGE, engine=engine)


PREPROCESSED = JobResult(job_name=f"churn-preprocess-{KEY}", status="Completed", attempt=1, reused=False,
                         outputs={name: f"{RUN}/preprocessing/{name}"
                                  for name in ("preprocessor", "quality", "profile", "spark-events")})
TRAINED = JobResult(job_name=f"churn-train-{KEY}", status="Completed", attempt=1, reused=False,
                    outputs={"model": f"{RUN}/model/churn-train-{KEY}/output",
                             "spark-events": f"{RUN}/spark-events/churn-train-{KEY}"})


def test_a_spark_run_builds_every_step_for_the_spark_image(settings) -> None:
    inputs = {"preprocessing": PREPROCESSED, "model": TRAINED, "champion": ChampionLookup(champion=CHAMPION)}
    for step, script in (("preprocess", "preprocess_spark.py"), ("train", "train_spark.py"),
                         ("evaluate", "evaluate_spark.py")):
        request = request_for_step(step, settings, f"churn-{step}-{KEY}", staged("spark"), inputs, {})
        assert request["AppSpecification"]["ContainerEntrypoint"][0] == "smspark-submit"
        assert request["AppSpecification"]["ContainerEntrypoint"][-1].endswith(script)
        assert "TrainingJobName" not in request
        validate(request)
    evaluate = request_for_step("evaluate", settings, "e", staged("spark"), inputs, {})
    assert evaluate["ProcessingInputs"][0]["S3Input"]["S3Uri"] == f"{TRAINED.outputs['model']}/model.tar.gz"
    train = request_for_step("train", settings, "t", staged("spark"), inputs, {"value_retained": 700.0})
    arguments = train["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--value-retained") + 1] == "700.0", "the run's campaign reaches training"
    assert arguments[arguments.index("--n-estimators") + 1] == "100"


def test_a_scikit_learn_run_keeps_its_training_job(settings) -> None:
    preprocessed = JobResult(job_name="p", status="Completed", attempt=1, reused=False,
                             outputs={name: f"{RUN}/preprocessing/{name}"
                                      for name in ("train", "validation", "preprocessor", "holdout")})
    request = request_for_step("train", settings, "t", staged("sklearn"), {"preprocessing": preprocessed}, {})
    assert request["TrainingJobName"] == "t"


def test_a_spark_job_on_the_default_cluster_has_a_worst_case_cost() -> None:
    """max_run_cost bounds a Spark job too: its default instance type has a price."""
    from churn_pipeline.domain.costs import check_cost_limit
    from churn_pipeline.domain.sagemaker_api import JobKind

    settings = load_settings(ENVIRONMENT)
    request = spark_train_request(settings, RunLayout(settings.base_uri, KEY), job_name="t", image_uri=SPARK_IMAGE,
                                  preprocessor_uri=f"{RUN}/preprocessing/preprocessor", hyperparameters={})
    estimate = check_cost_limit(JobKind.PROCESSING, request, settings.instance_prices, 3600, {"max_run_cost": 10})
    assert estimate == pytest.approx(4 * 0.922)
