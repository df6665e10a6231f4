"""Where the settings come from: the CHURN_* variables of the environment (or of a given mapping), read
without pydantic-settings, with the same rules a person relies on."""

from __future__ import annotations

import pytest

from churn_pipeline.domain.settings import SettingsError, load_settings


def test_a_variable_is_read_by_its_field_name_in_capitals_with_the_prefix() -> None:
    settings = load_settings({"CHURN_BUCKET": "my-bucket", "CHURN_RETRIES": "5", "CHURN_DEFERRABLE": "true"})
    assert (settings.bucket, settings.retries, settings.deferrable) == ("my-bucket", 5, True)


def test_an_empty_variable_counts_as_unset() -> None:
    assert load_settings({"CHURN_BUCKET": ""}).bucket == "customer-churn-pipeline"


def test_the_region_falls_back_on_the_aws_variable_and_its_own_wins() -> None:
    assert load_settings({"AWS_DEFAULT_REGION": "eu-west-1"}).region == "eu-west-1"
    assert load_settings({"AWS_DEFAULT_REGION": "eu-west-1", "CHURN_REGION": "eu-central-1"}).region == "eu-central-1"


def test_variables_of_other_tools_and_unknown_churn_variables_are_ignored() -> None:
    settings = load_settings({"BUCKET": "not-ours", "CHURN_NO_SUCH_SETTING": "x"})
    assert settings.bucket == "customer-churn-pipeline"


def test_lists_and_mappings_are_parsed_from_their_text() -> None:
    settings = load_settings({"CHURN_SUBNETS": "subnet-a, subnet-b", "CHURN_SECURITY_GROUP_IDS": "sg-1",
                              "CHURN_TAGS": "team=ml,cost-center=42"})
    assert settings.subnets == ("subnet-a", "subnet-b")
    assert dict(settings.tags) == {"team": "ml", "cost-center": "42"}


def test_every_bad_variable_is_named_in_one_error() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"CHURN_RETRIES": "many", "CHURN_BACKEND": "cloud"})
    message = str(raised.value)
    assert "CHURN_RETRIES must be a whole number" in message and "CHURN_BACKEND must be one of" in message


def test_the_os_environment_is_read_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_PREFIX", "from-the-environment")
    assert load_settings().prefix == "from-the-environment"
