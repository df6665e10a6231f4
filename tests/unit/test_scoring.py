"""Scoring's pure parts: the Model and transform requests (valid for botocore, the package as the
container, the id carried through), Batch Transform's batching and filters as the local runner does
them, risk bands, the scores table and its summary."""

from __future__ import annotations

import csv
import io
import json

import botocore.session
import pytest
from botocore.validate import ParamValidator

from churn_pipeline.domain.layout import ScoringLayout
from churn_pipeline.domain.payloads import ModelVersionRef, StagedScoring
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.local import transform as local_transform
from churn_pipeline.requests.transform import create_model_request, transform_request
from churn_pipeline.tasks.scoring import ScoredOutput

KEY = "20261126T060000Z"
ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/customer-churn/3"
CHAMPION = ModelVersionRef(version=3, identifier=ARN, approval_status="Approved", model_uri="s3://b/m.tar.gz")
MODEL = botocore.session.get_session().get_service_model("sagemaker")
EVERY_OPTION = {"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
                "CHURN_KMS_KEY_ID": "arn:aws:kms:eu-west-1:123456789012:key/k", "CHURN_SUBNETS": "subnet-1",
                "CHURN_SECURITY_GROUP_IDS": "sg-1", "CHURN_NETWORK_ISOLATION": "true", "CHURN_TAGS": "team=ml",
                "CHURN_SCORE_INSTANCE_TYPE": "ml.c5.xlarge", "CHURN_JOB_PREFIX": "x" * 20}


def validate(operation: str, request: dict) -> None:
    report = ParamValidator().validate(request, MODEL.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


@pytest.mark.parametrize("environment", [{"CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/r"}, EVERY_OPTION],
                         ids=["defaults", "every option"])
def test_the_model_and_transform_requests_are_valid_for_botocore(environment: dict) -> None:
    settings = load_settings(environment)
    layout = ScoringLayout(settings.base_uri, KEY)
    model = create_model_request(settings, layout, name=f"{settings.job_prefix}-model-{KEY}", champion=CHAMPION)
    transform = transform_request(settings, layout, job_name=f"{settings.job_prefix}-score-{KEY}",
                                  model=model["ModelName"], id_column="CustomerID")
    validate("CreateModel", model)
    validate("CreateTransformJob", transform)
    assert model["PrimaryContainer"] == {"ModelPackageName": ARN}  # serves exactly what was approved
    assert transform["DataProcessing"]["OutputFilter"] == "$['CustomerID','SageMakerOutput']"
    assert transform["TransformOutput"]["S3OutputPath"] == layout.transform_output_uri


def test_the_score_step_uses_its_own_instance_type() -> None:
    settings = load_settings({"CHURN_SCORE_INSTANCE_TYPE": "ml.c5.xlarge", "CHURN_INSTANCE_TYPE": "ml.m5.large"})
    layout = ScoringLayout(settings.base_uri, KEY)
    request = transform_request(settings, layout, job_name="j", model="m", id_column=None)
    assert request["TransformResources"]["InstanceType"] == "ml.c5.xlarge"
    assert request["DataProcessing"]["OutputFilter"] == "$['SageMakerOutput']"


def test_batches_stay_within_the_payload_and_keep_every_line_in_order() -> None:
    lines = [json.dumps({"id": n, "pad": "x" * 50}) for n in range(100)]
    batched = list(local_transform.batches(lines, 1000))
    assert [line for batch in batched for line in batch] == lines
    assert all(sum(len(line) + 1 for line in batch) <= 1000 for batch in batched) and len(batched) > 5


@pytest.mark.parametrize("path, expected", [
    ("$", {"a": 1, "b": 2, "c": 3}), ("$['a','c']", {"a": 1, "c": 3}), ("$['a', 'zz']", {"a": 1})])
def test_json_path_filters_of_the_forms_the_requests_use(path: str, expected: dict) -> None:
    assert local_transform.select({"a": 1, "b": 2, "c": 3}, path) == expected


def test_other_json_paths_are_refused_not_guessed() -> None:
    with pytest.raises(local_transform.TransformError, match="unsupported JSONPath"):
        local_transform.select({"a": 1}, "$.a")


@pytest.mark.parametrize("probability, band", [(0.95, "high"), (0.7, "high"), (0.69, "medium"), (0.4, "medium"),
                                               (0.39, "low"), (0.0, "low")])
def test_risk_bands_by_their_lower_bounds(probability: float, band: str) -> None:
    assert load_settings({}).risk_band(probability) == band


def _prediction(n: int) -> dict:
    """What the model answers for customer ``n`` of 30: probability n/30, contact above 0.3, reasons that add up."""
    probability = n / 30
    drivers = [{"feature": "Contract", "contribution": (probability - 0.25) * 0.6},
               {"feature": "Tenure", "contribution": (probability - 0.25) * 0.3},
               {"feature": "Age", "contribution": (probability - 0.25) * 0.05}]
    return {"churn": n > 15, "probability": probability, "contact": probability > 0.3, "base_value": 0.25,
            "expected_profit": probability * 500 - 100, "value": 80.0 if n % 2 else None, "drivers": drivers}


def test_scores_table_and_summary(tmp_path) -> None:
    settings = load_settings({"CHURN_VALUE_HORIZON_PERIODS": "12"})
    lines = [json.dumps({"CustomerID": f"C{n}", "SageMakerOutput": _prediction(n)}) for n in range(30)]
    (tmp_path / "customers.jsonl.out").write_text("\n".join(lines) + "\n")
    scored = ScoredOutput([tmp_path / "customers.jsonl.out"], "CustomerID", settings, version=3)
    scored.write_csv(tmp_path / "scores.csv")
    table = list(csv.DictReader(io.StringIO((tmp_path / "scores.csv").read_text())))
    assert [row["CustomerID"] for row in table][:2] == ["C29", "C28"]  # most at risk first
    assert list(table[0]) == ["CustomerID", "churn_probability", "risk_band", "model_version", "action",
                              "value_at_risk", "base_value", "driver_1", "contribution_1", "driver_2",
                              "contribution_2", "driver_3", "contribution_3", "other_contributions", "holdout"]
    assert {row["holdout"] for row in table} == {""}  # scored outside a run: nobody is held out
    assert {row["model_version"] for row in table} == {"3"}
    first = table[0]
    assert (first["action"], first["driver_1"], first["driver_3"]) == ("contact", "Contract", "Age")
    assert float(first["value_at_risk"]) == pytest.approx(29 / 30 * 80.0 * 12, abs=0.01)
    assert table[1]["value_at_risk"] == ""  # C28 has no value: nothing is made up
    assert {row["action"] for row in table if float(row["churn_probability"]) <= 0.3} == {"do not contact"}
    for row in table:  # the written reasons add up to the written probability
        parts = [row["base_value"], row["contribution_1"], row["contribution_2"], row["contribution_3"],
                 row["other_contributions"]]
        assert sum(map(float, parts)) == pytest.approx(float(row["churn_probability"]), abs=1e-5)
    staged = StagedScoring(run_key=KEY, image_uri="i", input_uri="s3://b/in", customers=30, dropped_duplicates=2,
                           id_column="CustomerID", champion=CHAMPION)
    summary = scored.summary(staged, ScoringLayout(settings.base_uri, KEY))
    assert summary["per_band"] == {"high": 9, "medium": 9, "low": 12} and len(summary["top"]) == 20
    assert summary["top"][0] == {"id": "C29", "churn_probability": round(29 / 30, 6), "risk_band": "high",
                                 "action": "contact", "drivers": ["Contract", "Tenure", "Age"]}
    assert summary["model"] == {"version": 3, "identifier": ARN}
    contacted = [n for n in range(30) if n / 30 > 0.3]
    assert summary["campaign"]["contact"] == len(contacted)
    assert summary["campaign"]["expected_profit"] == pytest.approx(sum(n / 30 * 500 - 100 for n in contacted), abs=0.01)


def test_a_scoring_runs_holdout_is_not_contacted_and_is_its_own(tmp_path) -> None:
    settings = load_settings({"CHURN_HOLDOUT_SHARE": "0.2"})
    lines = [json.dumps({"CustomerID": f"C{n}", "SageMakerOutput": {**_prediction(n % 30), "contact": True}})
             for n in range(2000)]
    (tmp_path / "customers.jsonl.out").write_text("\n".join(lines) + "\n")

    def held_out(key: str) -> set[str]:
        scored = ScoredOutput([tmp_path / "customers.jsonl.out"], "CustomerID", settings, version=3, holdout_key=key)
        scored.write_csv(tmp_path / "scores.csv")
        table = list(csv.DictReader(io.StringIO((tmp_path / "scores.csv").read_text())))
        assert scored.held_out == sum(row["holdout"] == "yes" for row in table)
        assert {row["action"] for row in table if row["holdout"] == "yes"} == {"do not contact"}
        assert {row["action"] for row in table if row["holdout"] != "yes"} == {"contact"}
        staged = StagedScoring(run_key=key, image_uri="i", input_uri="s3://b/in", customers=2000, dropped_duplicates=0,
                               id_column="CustomerID", champion=CHAMPION)
        assert scored.summary(staged, ScoringLayout(settings.base_uri, key))["campaign"]["contact"] == 2000 - len(
            [row for row in table if row["holdout"] == "yes"])
        return {row["CustomerID"] for row in table if row["holdout"] == "yes"}

    first = held_out(KEY)
    assert first == held_out(KEY)  # a retry of the run holds out the same customers
    assert first != held_out("20261127T060000Z")  # the next run draws anew
