"""A registered version offers the instance types it is known to be served on: those of the scoring
step, whose Batch Transform serves it, not those of the evaluation job."""

from __future__ import annotations

from churn_pipeline.domain.settings import load_settings
from tests.builders import passing_decision, registration_request


def test_the_version_is_offered_on_the_scoring_steps_instance_type() -> None:
    settings = load_settings({"CHURN_INSTANCE_TYPE": "ml.m5.large", "CHURN_EVALUATE_INSTANCE_TYPE": "ml.c5.4xlarge",
                              "CHURN_SCORE_INSTANCE_TYPE": "ml.c5.xlarge"})
    inference = registration_request(settings, "20261126T020000Z")["InferenceSpecification"]
    assert inference["SupportedTransformInstanceTypes"] == ["ml.c5.xlarge"]
    assert inference["SupportedRealtimeInferenceInstanceTypes"] == ["ml.c5.xlarge"]


def test_without_a_scoring_instance_type_the_shared_one_is_offered() -> None:
    settings = load_settings({"CHURN_INSTANCE_TYPE": "ml.m5.large", "CHURN_EVALUATE_INSTANCE_TYPE": "ml.c5.4xlarge"})
    inference = registration_request(settings, "20261126T020000Z")["InferenceSpecification"]
    assert inference["SupportedTransformInstanceTypes"] == ["ml.m5.large"]
    assert inference["SupportedRealtimeInferenceInstanceTypes"] == ["ml.m5.large"]


def test_the_version_carries_its_contact_threshold_and_what_the_campaign_earns() -> None:
    campaign = {"economics": {"threshold": 0.28, "chosen_on": "validation", "at_threshold": {"profit": 91200.0},
                              "at_default": {"profit": 68500.0}},
                "calibration": {"brier": 0.1369, "ece": 0.0227, "applied": False}}
    settings = load_settings({})
    metadata = registration_request(settings, "20261126T020000Z", passing_decision(
        campaign=campaign, metrics={"accuracy": 0.8, "lift_at_10": 2.94, "expected_profit": 91200.0}),
    )["CustomerMetadataProperties"]
    assert metadata["contact_threshold"] == "0.2800" and metadata["threshold_chosen_on"] == "validation"
    assert metadata["campaign_profit_at_threshold"] == "91200.00"
    assert metadata["campaign_profit_at_default"] == "68500.00"
    assert metadata["calibrated"] == "false" and metadata["lift_at_10"] == "2.940000"
    assert len(metadata) <= 50  # SageMaker's limit
