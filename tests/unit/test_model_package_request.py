"""A registered version offers the instance types it is known to be served on: those of the scoring
step, whose Batch Transform serves it, not those of the evaluation job."""

from __future__ import annotations

from churn_pipeline.domain.settings import load_settings
from tests.builders import registration_request


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
