"""Choosing the engine: the setting and the run param, auto's choice from the sizing estimate, the
refusal of a scikit-learn run that cannot fit, the kind of job each step runs, the Spark image and
cluster settings, and what a run records about its engine."""

from __future__ import annotations

import json

import pytest

from churn_pipeline.domain import sizing
from churn_pipeline.domain.engine import (
    Engine,
    EngineRefusal,
    choose_engine,
    described_record,
    engine_record,
    job_kind,
    model_archive_uri,
)
from churn_pipeline.domain.run_params import RunParamsError, check_conf, pipeline_params
from churn_pipeline.domain.sagemaker_api import JobKind
from churn_pipeline.domain.settings import SettingsError, load_settings
from churn_pipeline.domain.sizing import InputSize
from churn_pipeline.domain.spark_image import SPARK_IMAGE_ACCOUNTS, ecr_hostname, spark_image_uri

TYPES = {"preprocess": "ml.m5.xlarge", "train": "ml.m5.xlarge", "evaluate": "ml.m5.xlarge"}
NAMES = {step: f"CHURN_{step.upper()}_INSTANCE_TYPE" for step in TYPES}
SMALL = InputSize(rows=10_000)
# 100 M customers: train alone needs about 16 GiB, more than 85 % of an ml.m5.xlarge's 16 GiB
LARGE = InputSize(rows=100_000_000)


def test_auto_keeps_scikit_learn_while_every_job_fits_and_says_so() -> None:
    choice = choose_engine("auto", SMALL, TYPES, NAMES)
    assert (choice.engine, choice.asked) == (Engine.SKLEARN, "auto")
    assert choice.reason == "auto chose scikit-learn: 10,000 customers (from the Parquet footers) fit every step's " \
                            "instance"


def test_auto_chooses_spark_where_the_run_used_to_be_refused_naming_the_steps() -> None:
    assert sizing.memory_refusal("train", "ml.m5.xlarge", LARGE, "X") is not None
    choice = choose_engine("auto", LARGE, TYPES, NAMES)
    assert choice.engine is Engine.SPARK
    assert choice.reason.startswith("auto chose Spark: for 100,000,000 customers (from the Parquet footers) the "
                                    "scikit-learn job of train would not fit its instance (ml.m5.xlarge)")


def test_auto_on_instances_large_enough_stays_on_scikit_learn() -> None:
    bigger = dict.fromkeys(TYPES, "ml.m5.4xlarge")
    assert choose_engine("auto", LARGE, bigger, NAMES).engine is Engine.SKLEARN


def test_an_explicit_sklearn_that_does_not_fit_is_refused_naming_the_instance_and_engine_spark() -> None:
    with pytest.raises(EngineRefusal) as refused:
        choose_engine("sklearn", LARGE, TYPES, NAMES)
    message = str(refused.value)
    assert "\n" not in message, "one line per step that does not fit: here training alone"
    assert message.startswith("train would need about 16.6 GiB for 100,000,000 customers")
    assert message.endswith("the smallest of its family that fits is ml.m5.2xlarge (32 GiB): set "
                            "CHURN_TRAIN_INSTANCE_TYPE, or run it on Spark with engine=spark (the run param or "
                            "CHURN_ENGINE); nothing was started")
    smaller = dict(TYPES, preprocess="ml.m5.large")
    with pytest.raises(EngineRefusal) as both:
        choose_engine("sklearn", LARGE, smaller, NAMES)
    lines = str(both.value).split("\n")
    assert [line.split(" ")[0] for line in lines] == ["preprocess", "train"]
    assert all(line.endswith("engine=spark (the run param or CHURN_ENGINE); nothing was started") for line in lines)


def test_an_explicit_engine_is_taken_as_asked() -> None:
    assert choose_engine("sklearn", SMALL, TYPES, NAMES).engine is Engine.SKLEARN
    spark = choose_engine("spark", SMALL, TYPES, NAMES)
    assert (spark.engine, spark.reason) == (Engine.SPARK, "engine=spark was asked for")
    with pytest.raises(ValueError, match="engine must be one of auto, sklearn, spark, not 'gpu'"):
        choose_engine("gpu", SMALL, TYPES, NAMES)


def test_on_spark_the_train_step_runs_a_processing_job() -> None:
    assert job_kind("train", "spark") is JobKind.PROCESSING
    assert job_kind("train", Engine.SKLEARN) is JobKind.TRAINING
    assert {job_kind(step, "spark") for step in ("preprocess", "evaluate")} == {JobKind.PROCESSING}
    assert job_kind("score", "sklearn") is JobKind.TRANSFORM


def test_the_model_archive_is_named_by_a_training_job_and_beside_a_spark_drivers_folder() -> None:
    assert model_archive_uri("s3://b/run/model/j/output/model.tar.gz", "sklearn") == \
        "s3://b/run/model/j/output/model.tar.gz"
    assert model_archive_uri("s3://b/run/model/j/output/", "spark") == "s3://b/run/model/j/output/model.tar.gz"


def test_the_registry_names_of_the_engines() -> None:
    assert (Engine.SKLEARN.registry_name, Engine.SPARK.registry_name) == ("scikit-learn", "spark-mllib")


def test_the_engine_record_reads_back_as_one_line_and_a_broken_one_as_nothing() -> None:
    record = engine_record(choose_engine("spark", SMALL, TYPES, NAMES))
    assert json.loads(json.dumps(record)) == {"engine": "spark", "registry_name": "spark-mllib", "asked": "spark",
                                              "reason": "engine=spark was asked for"}
    assert described_record(record) == "Spark, SageMaker's Spark processing image: engine=spark was asked for"
    assert described_record({"engine": "dask"}) == ""
    assert described_record(None) == ""


# ---------------------------------------------------------------------------------- settings and param


def test_the_engine_setting_defaults_to_auto_and_takes_any_case() -> None:
    assert load_settings({}).engine == "auto"
    assert load_settings({"CHURN_ENGINE": "Spark"}).engine == "spark"


def test_bad_engine_and_cluster_settings_are_named_in_one_message_with_what_is_allowed() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"CHURN_ENGINE": "gpu", "CHURN_SPARK_TRAIN_INSTANCE_COUNT": "0",
                       "CHURN_SPARK_EVALUATE_INSTANCE_TYPE": "big"})
    message = str(refused.value)
    assert "CHURN_ENGINE must be one of auto, sklearn, spark, got 'gpu'" in message
    assert "CHURN_SPARK_TRAIN_INSTANCE_COUNT must be at least 1, got '0'" in message
    assert "CHURN_SPARK_EVALUATE_INSTANCE_TYPE must look like ml.m5.xlarge, got 'big'" in message
    assert "Traceback" not in message


def test_sagemaker_clusters_default_to_m5_4xlarge_with_four_instances_for_training() -> None:
    settings = load_settings({"CHURN_BACKEND": "sagemaker"})
    clusters = {step: settings.spark_resources_for(step) for step in ("preprocess", "train", "evaluate", "score")}
    assert {step: (item.instance_type, item.instance_count) for step, item in clusters.items()} == {
        "preprocess": ("ml.m5.4xlarge", 2), "train": ("ml.m5.4xlarge", 4), "evaluate": ("ml.m5.4xlarge", 2),
        "score": ("ml.m5.4xlarge", 2)}
    assert load_settings({"CHURN_BACKEND": "sagemaker", "CHURN_SPARK_TRAIN_INSTANCE_COUNT": "8"}) \
        .spark_resources_for("train").instance_count == 8


def test_the_engine_param_defaults_to_the_setting_and_refuses_other_engines_in_one_line() -> None:
    params = pipeline_params("s3://b/in.csv", "/schema.json", "spark")
    engine = next(param for param in params if param.name == "engine")
    assert engine.default == "spark" and engine.schema["enum"] == ["auto", "sklearn", "spark"]
    check_conf(params, {"engine": "sklearn"}, "customer_churn_pipeline")
    with pytest.raises(RunParamsError, match=r"^engine must be one of auto, sklearn, spark, not 'pyspark'$"):
        check_conf(params, {"engine": "pyspark"}, "customer_churn_pipeline")
    with pytest.raises(RunParamsError, match=r"did you mean engine\?"):
        check_conf(params, {"engin": "spark"}, "customer_churn_pipeline")


# ---------------------------------------------------------------------------------- the image


def test_the_spark_image_is_the_pinned_tag_in_the_regions_account() -> None:
    assert spark_image_uri("us-east-1") == \
        "173754725891.dkr.ecr.us-east-1.amazonaws.com/sagemaker-spark-processing:3.5-cpu-py312-v1.3"
    assert spark_image_uri("cn-north-1") == \
        "671472414489.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-spark-processing:3.5-cpu-py312-v1.3"
    assert load_settings({"CHURN_REGION": "eu-west-1"}).spark_image().startswith("571004829621.dkr.ecr.eu-west-1.")
    assert load_settings({"CHURN_SPARK_IMAGE_URI": "1.dkr.ecr.x/mine:1"}).spark_image() == "1.dkr.ecr.x/mine:1"


def test_a_region_without_the_image_is_refused_naming_the_override() -> None:
    with pytest.raises(SettingsError, match=r"not published in 'xx-east-9' .*: set CHURN_SPARK_IMAGE_URI"):
        load_settings({"CHURN_REGION": "xx-east-9"}).spark_image()


def test_the_accounts_are_those_of_the_installed_sdks_own_table() -> None:
    """The table was copied from the SDK (v2.257.6); the SDK installed here must agree on every region
    both know, and know every region the copy names."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sagemaker")
    assert spec and spec.submodule_search_locations
    table = Path(next(iter(spec.submodule_search_locations)), "core", "image_uri_config", "spark.json")
    version = json.loads(table.read_text())["processing"]["versions"]["3.5"]
    assert "py312" in version["py_versions"] and version["repository"] == "sagemaker-spark-processing"
    installed = version["registries"]
    assert {region: installed.get(region) for region in SPARK_IMAGE_ACCOUNTS} == SPARK_IMAGE_ACCOUNTS


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "cn-northwest-1", "us-gov-west-1"])
def test_the_ecr_hostname_is_botocores(region: str) -> None:
    from botocore.loaders import create_loader
    from botocore.regions import EndpointResolver

    endpoint = EndpointResolver(create_loader().load_data("endpoints")).construct_endpoint("ecr", region)
    assert endpoint and ecr_hostname(region) == endpoint["hostname"].removeprefix("api.")


def test_a_registered_versions_engine_is_read_from_its_metadata() -> None:
    from churn_pipeline.domain.engine import engine_of_version

    assert engine_of_version({"engine": "spark-mllib", "run_key": "k"}) is Engine.SPARK
    assert engine_of_version({"engine": "scikit-learn"}) is Engine.SKLEARN
    assert engine_of_version({"run_key": "k"}) is Engine.SKLEARN, "registered before there were engines"
    with pytest.raises(ValueError, match="names the engine 'xgboost', which is neither scikit-learn nor spark-mllib"):
        engine_of_version({"engine": "xgboost"})
