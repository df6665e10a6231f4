"""Settings come from CHURN_* variables with defaults and one error listing every bad value; names
and places of a run are deterministic and safe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from churn_pipeline.domain import settings as settings_module
from churn_pipeline.domain.layout import RunLayout, job_name, run_key
from churn_pipeline.domain.settings import STEPS, Settings, SettingsError, load_settings


def test_defaults_need_no_environment() -> None:
    settings = load_settings({})
    assert settings.backend == "local"
    assert settings.prefix == "churn-pipeline"
    assert settings.resources_for("train").instance_type == "ml.m5.xlarge"
    assert settings.default_input_uri == "s3://customer-churn-pipeline/churn-pipeline/input-data/customer_data.csv"


def test_settings_are_frozen() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="frozen"):
        load_settings({}).bucket = "other"  # type: ignore[misc]


def test_variables_come_from_the_environment_and_empty_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_TRAIN_INSTANCE_TYPE", "ml.c5.2xlarge")
    monkeypatch.setenv("CHURN_INSTANCE_TYPE", "ml.m5.large")
    monkeypatch.setenv("CHURN_BUCKET", "")
    monkeypatch.setenv("CHURN_SUBNETS", "subnet-1, subnet-2")
    monkeypatch.setenv("CHURN_SECURITY_GROUP_IDS", "sg-1")
    monkeypatch.delenv("CHURN_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    settings = load_settings()
    assert settings.resources_for("train").instance_type == "ml.c5.2xlarge"
    assert settings.resources_for("evaluate").instance_type == "ml.m5.large"  # per-step falls back to the shared
    assert settings.bucket == "customer-churn-pipeline"
    assert settings.subnets == ("subnet-1", "subnet-2") and settings.region == "eu-west-1"


def test_the_sagemaker_backend_names_what_it_cannot_run_without() -> None:
    assert load_settings({"CHURN_BACKEND": "sagemaker"}).missing_for_sagemaker() == ["CHURN_ROLE_ARN",
                                                                                      "CHURN_SNS_TOPIC_ARN"]
    with pytest.raises(SettingsError, match="needs CHURN_SNS_TOPIC_ARN"):
        load_settings({"CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/r"}).require_sagemaker_resources()


def test_one_error_lists_every_bad_value() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"CHURN_BACKEND": "cloud", "CHURN_BUCKET": "Bad_Bucket", "CHURN_RETRIES": "many",
                       "CHURN_SUBNETS": "subnet-1", "CHURN_TRAIN_INSTANCE_TYPE": "m5.xlarge",
                       "CHURN_JOB_PREFIX": "a-very-long-job-prefix-name", "CHURN_TAGS": "novalue"})
    message = str(raised.value)
    for name in ("CHURN_BACKEND", "CHURN_BUCKET", "CHURN_RETRIES", "CHURN_SUBNETS", "CHURN_TRAIN_INSTANCE_TYPE",
                 "CHURN_JOB_PREFIX", "CHURN_TAGS"):
        assert name in message


@pytest.mark.parametrize("step", STEPS)
def test_every_steps_instance_type_is_checked_like_the_shared_one(step: str) -> None:
    variable = f"CHURN_{step.upper()}_INSTANCE_TYPE"
    with pytest.raises(SettingsError, match=f"{variable} must look like ml.m5.xlarge, got 'm5.xlarge'"):
        load_settings({variable: "m5.xlarge"})
    assert load_settings({variable: "ml.c5.2xlarge"}).resources_for(step).instance_type == "ml.c5.2xlarge"


def test_the_scoring_instance_type_is_its_own_or_the_shared_one() -> None:
    assert load_settings({"CHURN_INSTANCE_TYPE": "ml.m5.large"}).resources_for("score").instance_type == "ml.m5.large"
    with pytest.raises(SettingsError) as raised:
        load_settings({"CHURN_SCORE_INSTANCE_TYPE": "ml.m5", "CHURN_INSTANCE_TYPE": "ml.m5.large"})
    assert "CHURN_SCORE_INSTANCE_TYPE must look like ml.m5.xlarge" in str(raised.value)


def test_retries_back_off_as_the_installed_airflow_says_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A factor of 2.0 where the Task SDK takes a factor (Airflow 3.2 on); True, which Airflow 3.0
    takes and which means the same doubling, where it takes only a bool."""
    from airflow.providers.standard.operators.empty import EmptyOperator

    defaults = load_settings({}).task_defaults
    assert defaults["retry_exponential_backoff"] == 2.0 and not isinstance(defaults["retry_exponential_backoff"], bool)
    assert EmptyOperator(task_id="t", default_args=defaults).retry_exponential_backoff == 2.0
    monkeypatch.setattr(settings_module, "_task_sdk_version", lambda: "1.0.6")  # Airflow 3.0.6's, MWAA's
    assert load_settings({}).task_defaults["retry_exponential_backoff"] is True


def test_a_source_is_a_connection_id_and_its_query_or_endpoint() -> None:
    assert not load_settings({}).source_configured
    settings = load_settings({"CHURN_SOURCE_CONN_ID": "crm_db", "CHURN_SOURCE_QUERY": " SELECT * FROM customers "})
    assert settings.source_configured and settings.source_query == "SELECT * FROM customers"
    with pytest.raises(SettingsError) as raised:
        load_settings({"CHURN_SOURCE_QUERY": "SELECT 1", "CHURN_SOURCE_ENDPOINT": "/export"})
    assert str(raised.value).count("is set but CHURN_SOURCE_CONN_ID is not") == 2
    with pytest.raises(SettingsError, match="CHURN_SOURCE_CONN_ID must be an Airflow connection id") as raised:
        load_settings({"CHURN_SOURCE_CONN_ID": "crm db", "CHURN_SOURCE_QUERY": "SELECT 1"})
    assert "CHURN_SOURCE_QUERY" not in str(raised.value), "a bad connection id is reported once, by its own name"


def test_run_key_is_the_logical_date_or_run_after_in_utc() -> None:
    scheduled = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    assert run_key(scheduled, scheduled + timedelta(minutes=3)) == "20261126T020000Z"
    assert run_key(None, datetime(2026, 11, 26, 9, 30, 15, tzinfo=timezone(timedelta(hours=1)))) == "20261126T083015Z"


def test_layout_puts_every_artefact_under_the_run_prefix() -> None:
    layout = RunLayout(Settings().base_uri, "20261126T020000Z")
    run = "s3://customer-churn-pipeline/churn-pipeline/runs/20261126T020000Z"
    assert layout.code_uri == f"{run}/code"
    assert layout.preprocessing_uri("train") == f"{run}/preprocessing/train"
    assert layout.model_uri == f"{run}/model"
    assert layout.evaluation_file_uri == f"{run}/evaluation/evaluation.json"
    assert layout.input_uri == f"{run}/input"  # what extract_customers writes, the run's own


def test_job_names_are_deterministic_and_valid() -> None:
    assert job_name("churn", "train", "20261126T020000Z") == "churn-train-20261126T020000Z"
    assert job_name("churn", "train", "20261126T020000Z", 3) == "churn-train-20261126T020000Z-r3"
    with pytest.raises(ValueError):
        job_name("churn_pipeline", "train", "20261126T020000Z")


def test_the_settings_page_names_every_setting() -> None:
    import re

    from tests.conftest import PROJECT

    rows = [line.split("|")[1] for line in (PROJECT / "docs" / "settings.md").read_text().splitlines()
            if line.startswith("| `CHURN_")]
    documented = set()
    for cell in rows:
        for name in re.findall(r"`(CHURN_[A-Z_{},]+)`", cell):
            head, _, rest = name.partition("{")  # CHURN_{A,B}_X stands for CHURN_A_X and CHURN_B_X
            choices, _, tail = rest.partition("}")
            documented |= {f"{head}{choice}{tail}" for choice in choices.split(",")} if rest else {name}
    assert {f"CHURN_{field.upper()}" for field in Settings.model_fields} - documented == set()
