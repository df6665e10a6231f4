"""Where a run's engine is written down: the model package (``CustomerMetadataProperties.engine``,
and for a Spark model its image and why it must not serve an endpoint), the run's summary and the
report page. A run from before there were engines reads as scikit-learn and shows no engine line."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator

from churn_pipeline.domain.engine import Engine, choose_engine, engine_record
from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.payloads import StagedInputs
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.domain.sizing import InputSize
from churn_pipeline.report.html import ReportInputs, render_report
from churn_pipeline.report.summary import summary_lines
from churn_pipeline.requests.model_package import SPARK_SERVING_NOTE, model_package_request
from churn_pipeline.services.objectstore import LocalObjectStore
from tests import report_fixtures
from tests.builders import champion_block, passing_decision

KEY = "20261126T020000Z"
SPARK_IMAGE = "173754725891.dkr.ecr.us-east-1.amazonaws.com/sagemaker-spark-processing:3.5-cpu-py312-v1.3"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
MODEL = botocore.session.get_session().get_service_model("sagemaker")
TYPES = dict.fromkeys(("preprocess", "train", "evaluate"), "ml.m5.xlarge")
NAMES = {step: f"CHURN_{step.upper()}_INSTANCE_TYPE" for step in TYPES}


def package(engine: Engine, image: str) -> dict:
    settings = load_settings({"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/r"})
    layout = RunLayout(settings.base_uri, KEY)
    return model_package_request(
        settings, layout, image_uri=image, engine=engine,
        model_artifact_uri=f"{layout.model_uri}/churn-train-{KEY}/output/model.tar.gz",
        decision=passing_decision(), profile_uri=layout.preprocessing_uri("profile"), run_id=f"scheduled__{KEY}",
        dag_id="customer_churn_pipeline", logical_date="2026-11-26T02:00:00+00:00", data_source="s3://b/in.csv",
        training_job=f"churn-train-{KEY}")


@pytest.mark.parametrize("engine, image", [(Engine.SKLEARN, SKLEARN_IMAGE), (Engine.SPARK, SPARK_IMAGE)])
def test_both_engines_packages_are_valid_and_say_which_engine_made_them(engine: Engine, image: str) -> None:
    request = package(engine, image)
    report = ParamValidator().validate(request, MODEL.operation_model("CreateModelPackage").input_shape)
    assert not report.has_errors(), report.generate_report()
    assert request["CustomerMetadataProperties"]["engine"] == engine.registry_name
    assert request["InferenceSpecification"]["Containers"][0]["Image"] == image
    assert len(request["CustomerMetadataProperties"]) <= 50
    assert all(len(value) <= 256 for value in request["CustomerMetadataProperties"].values())


def test_a_spark_package_names_its_scoring_and_offers_no_instance_to_serve_on() -> None:
    request = package(Engine.SPARK, SPARK_IMAGE)
    metadata = request["CustomerMetadataProperties"]
    assert (metadata["engine"], metadata["spark_version"], metadata["scoring"]) == ("spark-mllib", "3.5.6",
                                                                                   "processing")
    assert metadata["serving"] == SPARK_SERVING_NOTE
    assert "do not deploy this version to an endpoint" in SPARK_SERVING_NOTE
    assert request["ModelPackageDescription"].endswith(SPARK_SERVING_NOTE)
    specification = request["InferenceSpecification"]
    assert "SupportedRealtimeInferenceInstanceTypes" not in specification
    assert "SupportedTransformInstanceTypes" not in specification
    assert "Environment" not in specification["Containers"][0], "no serving handlers for a Spark model"
    sklearn = package(Engine.SKLEARN, SKLEARN_IMAGE)["InferenceSpecification"]
    assert sklearn["SupportedTransformInstanceTypes"] == ["ml.m5.xlarge"]
    assert "spark_version" not in package(Engine.SKLEARN, SKLEARN_IMAGE)["CustomerMetadataProperties"]


def test_a_staged_payload_from_before_engines_reads_as_scikit_learn() -> None:
    old = {"run_key": KEY, "run_uri": "s3://b/r", "input_uri": "s3://b/i", "schema_uri": "s3://b/s",
           "code_uri": "s3://b/c", "image_uri": SKLEARN_IMAGE}
    staged = StagedInputs.from_xcom(old)
    assert (staged.engine, staged.engine_reason) == ("sklearn", None)


def test_the_summary_says_which_engine_ran_and_why_unless_auto_kept_scikit_learn(tmp_path: Path) -> None:
    store, layout = LocalObjectStore(tmp_path), RunLayout("s3://local/churn", KEY)
    assert not any(line.startswith("  engine") for line in summary_lines(store, layout))
    everyday = choose_engine("auto", InputSize(rows=10_000), TYPES, NAMES)
    store.write_bytes(layout.engine_file_uri, json.dumps(engine_record(everyday)).encode())
    assert not any(line.startswith("  engine") for line in summary_lines(store, layout)), "what every run was"
    asked = choose_engine("sklearn", InputSize(rows=10_000), TYPES, NAMES)
    store.write_bytes(layout.engine_file_uri, json.dumps(engine_record(asked)).encode())
    assert "  engine        scikit-learn, one instance per job: engine=sklearn was asked for, and 10,000 customers " \
           "(from the Parquet footers) fit every step's instance" in summary_lines(store, layout)
    choice = choose_engine("auto", InputSize(rows=100_000_000), TYPES, NAMES)
    store.write_bytes(layout.engine_file_uri, json.dumps(engine_record(choice)).encode())

    lines = summary_lines(store, layout)

    (engine,) = [line for line in lines if line.startswith("  engine")]
    assert engine.startswith("  engine        Spark, SageMaker's Spark processing image: auto chose Spark: for "
                             "100,000,000 customers")
    assert lines.index(engine) == 2, "right under where the run's files are"


def test_the_report_page_shows_the_engine_and_a_run_without_a_record_shows_none() -> None:
    choice = choose_engine("spark", InputSize(rows=10), TYPES, NAMES)
    page = render_report(report_fixtures.report_inputs(engine=engine_record(choice))).decode()
    assert ('engine <span id="engine">Spark, SageMaker&#39;s Spark processing image: engine=spark was asked '
            'for</span>') in page
    assert 'id="engine"' not in render_report(report_fixtures.report_inputs()).decode()


def test_an_engine_record_that_is_not_json_is_a_note_on_the_report_not_a_failure() -> None:
    inputs = ReportInputs.from_json(run_key=KEY, run_id="r", dag_id="d", backend="local", decision={},
                                    evaluation=None, engine=b"{not json")
    assert inputs.engine is None and any(note.startswith("engine.json is not valid JSON") for note in inputs.notes)


def test_the_fullest_spark_package_stays_within_sagemakers_fifty_metadata_keys() -> None:
    """Every metric, a comparable champion with its deltas, drift, the campaign and the run's cost,
    and the engine's own keys: SageMaker refuses a package with more than 50."""
    from churn_pipeline.domain.model_defaults import comparable_metric_names

    names = comparable_metric_names()
    campaign = {"economics": {"threshold": 0.3, "chosen_on": "validation", "at_threshold": {"profit": 1.0},
                              "at_default": {"profit": 2.0}},
                "calibration": {"applied": True, "brier": 0.1, "ece": 0.02}}
    decision = passing_decision(champion=champion_block(3, **dict.fromkeys(names, 0.5)),
                                metrics=dict.fromkeys(names, 0.5), campaign=campaign, run_cost={"total": 1.0},
                                drifted_features=("MonthlyCharges",))
    settings = load_settings({})
    layout = RunLayout(settings.base_uri, KEY)
    request = model_package_request(
        settings, layout, image_uri=SPARK_IMAGE, engine=Engine.SPARK, model_artifact_uri="s3://b/m/model.tar.gz",
        decision=decision, profile_uri=layout.preprocessing_uri("profile"), run_id="r", dag_id="d",
        logical_date="2026-11-26T02:00:00+00:00", data_source="s3://b/in.csv", training_job="t")
    assert {f"champion_{name}" for name in names} <= set(request["CustomerMetadataProperties"])
    assert len(request["CustomerMetadataProperties"]) <= 50
