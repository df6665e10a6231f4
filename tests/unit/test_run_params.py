"""The DAGs' params have one definition: Airflow's Param (the UI's trigger form, the REST API) and the
pre-check of `make run` refuse the same values, the pre-check in one line naming the key, the value
and what is allowed; and it also refuses keys no param has, with the nearest one."""

from __future__ import annotations

import math

import pytest
from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict

from churn_pipeline.domain.run_params import (
    PIPELINE_DAG,
    RunParamsError,
    approval_params,
    check_conf,
    pipeline_params,
    scoring_params,
)

PIPELINE = pipeline_params("s3://bucket/prefix/input-data/customer_data.csv", "/project/include/config/schema.json")
APPROVAL = approval_params(("PendingManualApproval", "Approved", "Rejected"), "Approved")
# (params, conf, the one line the pre-check gives)
REFUSED = [
    (PIPELINE, {"accuracy_threshold": 7}, "accuracy_threshold must be a number between 0 and 1, not 7"),
    (PIPELINE, {"accuracy_threshold": math.nan}, "accuracy_threshold must be a number between 0 and 1, not NaN"),
    (PIPELINE, {"accuracy_threshold": math.inf}, "accuracy_threshold must be a number between 0 and 1, not Infinity"),
    (PIPELINE, {"min_improvement": -math.inf}, "min_improvement must be a number between -1 and 1, not -Infinity"),
    (PIPELINE, {"min_improvement": math.nan}, "min_improvement must be a number between -1 and 1, not NaN"),
    (PIPELINE, {"accuracy_threshold": "0.8"}, "accuracy_threshold must be a number, not '0.8'"),
    (PIPELINE, {"accuracy_threshold": True}, "accuracy_threshold must be a number, not true"),
    (PIPELINE, {"drift_mode": "blocked"}, "drift_mode must be one of warn, block, off, not 'blocked'"),
    (PIPELINE, {"champion_metric": "auc"}, "champion_metric must be one of "),
    (PIPELINE, {"input_uri": ""}, "input_uri must not be empty"),
    (PIPELINE, {"input_uri": None}, "input_uri must be a string, not None"),
    (PIPELINE, {"source_query": 3}, "source_query must be null or a string, not 3"),
    (APPROVAL, {"version": 0}, "version must be an integer at least 1, not 0"),
    (APPROVAL, {"status": "approved"}, "status must be one of PendingManualApproval, Approved, Rejected"),
]
ACCEPTED = [
    (PIPELINE, {}),
    (PIPELINE, {"accuracy_threshold": 0.8, "min_improvement": -0.01, "drift_mode": "block", "source_query": None}),
    (PIPELINE, {"accuracy_threshold": 1, "input_uri": "/data/customers.csv", "source_query": "SELECT 1"}),
    (APPROVAL, {"version": 3, "status": "Rejected"}),
]


def airflow_refuses(params, conf) -> bool:
    """Whether Airflow's own validation of a run's params (what a trigger does) refuses ``conf``."""
    resolved = ParamsDict({param.name: Param(param.default, **param.schema) for param in params})
    try:
        for name, value in conf.items():
            resolved[name] = value  # validated as it is set
        resolved.validate()
    except Exception:  # Airflow's ParamValidationError
        return True
    return False


@pytest.mark.parametrize(("params", "conf", "line"), REFUSED, ids=[str(conf) for _, conf, _ in REFUSED])
def test_a_bad_value_is_refused_by_the_pre_check_and_by_airflow_alike(params, conf, line) -> None:
    with pytest.raises(RunParamsError) as refused:
        check_conf(params, conf, PIPELINE_DAG)
    assert str(refused.value).startswith(line) and "\n" not in str(refused.value)
    assert airflow_refuses(params, conf), f"Airflow's Param accepts {conf}"


@pytest.mark.parametrize(("params", "conf"), ACCEPTED, ids=[str(conf) for _, conf in ACCEPTED])
def test_a_good_conf_passes_both(params, conf) -> None:
    check_conf(params, conf, PIPELINE_DAG)
    assert not airflow_refuses(params, conf)


def test_every_default_passes_its_own_schema() -> None:
    for params in (PIPELINE, APPROVAL, scoring_params("s3://bucket/customers.csv")):
        check_conf(params, {param.name: param.default for param in params}, PIPELINE_DAG)
        assert not airflow_refuses(params, {})


def test_a_misspelt_key_is_refused_with_its_near_match_and_the_known_params() -> None:
    with pytest.raises(RunParamsError) as refused:
        check_conf(PIPELINE, {"acuracy_threshold": 0.9}, PIPELINE_DAG)
    assert str(refused.value).startswith(
        "customer_churn_pipeline has no param 'acuracy_threshold' (did you mean accuracy_threshold?); its params: "
        "input_uri, source_query, schema_uri, accuracy_threshold,")


def test_a_key_like_no_param_is_refused_without_a_guess() -> None:
    with pytest.raises(RunParamsError, match=r"^customer_churn_pipeline has no param 'colour'; its params: "):
        check_conf(PIPELINE, {"colour": "blue", "accuracy_threshold": 0.9}, PIPELINE_DAG)
