"""What a run's jobs cost (billable time x instances x the price per hour setting), and the
``max_run_cost`` param that refuses to start a job whose worst case is above it."""

from __future__ import annotations

import pytest

from churn_pipeline.domain.costs import (
    CostLimitExceeded,
    check_cost_limit,
    job_cost,
    max_run_cost_from_params,
    run_cost,
)
from churn_pipeline.domain.payloads import JobResult
from churn_pipeline.domain.sagemaker_api import JobKind
from churn_pipeline.domain.settings import load_settings

PRICES = {"ml.m5.xlarge": 0.23, "ml.m5.large": 0.115}
PROCESSING = {"ProcessingJobName": "p", "ProcessingJobStatus": "Completed",
              "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2}},
              "ProcessingStartTime": "2026-11-26T02:00:00+00:00", "ProcessingEndTime": "2026-11-26T02:05:00+00:00",
              "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
              "ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation",
                                                      "S3Output": {"S3Uri": "s3://b/e"}}]}}
TRAINING = {"TrainingJobName": "t", "TrainingJobStatus": "Completed", "BillableTimeInSeconds": 120,
            "TrainingStartTime": "2026-11-26T02:00:00+00:00", "TrainingEndTime": "2026-11-26T02:09:00+00:00",
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 7200}, "ModelArtifacts": {"S3ModelArtifacts": "s3://b/m"}}


def test_a_processing_job_costs_its_start_to_end_time_on_its_instances() -> None:
    cost = job_cost(JobKind.PROCESSING, PROCESSING, PRICES)
    assert cost["billable_seconds"] == 300 and cost["instance_count"] == 2
    assert cost["cost"] == pytest.approx(300 * 2 * 0.23 / 3600, abs=1e-6)


def test_a_training_job_costs_what_sagemaker_bills_not_its_wall_time() -> None:
    cost = job_cost(JobKind.TRAINING, TRAINING, PRICES)
    assert cost["billable_seconds"] == 120 and cost["measured_by"] == "BillableTimeInSeconds"
    assert cost["cost"] == pytest.approx(120 * 0.115 / 3600, abs=1e-6)


def test_an_unknown_price_or_missing_times_leave_the_cost_unknown_never_guessed() -> None:
    assert job_cost(JobKind.PROCESSING, PROCESSING, {"ml.m5.large": 0.1})["cost"] is None
    untimed = {key: value for key, value in PROCESSING.items() if key != "ProcessingEndTime"}
    assert job_cost(JobKind.PROCESSING, untimed, PRICES)["cost"] is None
    costs = {"preprocess": job_cost(JobKind.PROCESSING, PROCESSING, PRICES), "train": {"cost": None}}
    assert run_cost(costs)["total"] is None
    known = run_cost({"preprocess": job_cost(JobKind.PROCESSING, PROCESSING, PRICES),
                      "train": job_cost(JobKind.TRAINING, TRAINING, PRICES)})
    assert known["total"] == pytest.approx(300 * 2 * 0.23 / 3600 + 120 * 0.115 / 3600, abs=1e-6)


def test_each_job_result_carries_its_cost() -> None:
    result = JobResult.from_description(JobKind.TRAINING, TRAINING, reused=False, attempt=1, prices=PRICES)
    assert result.cost is not None and result.cost["cost"] == pytest.approx(120 * 0.115 / 3600, abs=1e-6)
    assert JobResult.from_xcom(result.to_xcom()).cost == result.cost


def test_a_job_whose_worst_case_exceeds_max_run_cost_is_refused_in_one_line() -> None:
    # 2 x ml.m5.xlarge for at most an hour: 0.46
    assert check_cost_limit(JobKind.PROCESSING, PROCESSING, PRICES, 3600, {"max_run_cost": 0.5}) == pytest.approx(0.46)
    with pytest.raises(CostLimitExceeded) as refused:
        check_cost_limit(JobKind.PROCESSING, PROCESSING, PRICES, 3600, {"max_run_cost": 0.4})
    assert "may cost up to 0.4600" in str(refused.value) and "max_run_cost 0.4" in str(refused.value)
    assert "\n" not in str(refused.value)
    with pytest.raises(CostLimitExceeded, match="has no price"):
        check_cost_limit(JobKind.PROCESSING, PROCESSING, {}, 3600, {"max_run_cost": 10})
    assert check_cost_limit(JobKind.PROCESSING, PROCESSING, PRICES, 3600, {"max_run_cost": None}) == pytest.approx(0.46)


@pytest.mark.parametrize("value", [0, -1, "5", True, float("inf")])
def test_max_run_cost_must_be_a_positive_number_or_empty(value: object) -> None:
    with pytest.raises(ValueError, match="max_run_cost must be a positive number"):
        max_run_cost_from_params({"max_run_cost": value})


def test_prices_are_a_setting() -> None:
    assert load_settings({"CHURN_INSTANCE_PRICES": "ml.m5.xlarge=0.3"}).instance_prices == {"ml.m5.xlarge": 0.3}
    assert load_settings({}).instance_prices["ml.m5.xlarge"] == 0.23
    with pytest.raises(ValueError, match=r"CHURN_INSTANCE_PRICES must look like 'ml\.m5\.xlarge=0\.23"):
        load_settings({"CHURN_INSTANCE_PRICES": "expensive"})
