"""Deployment assets, checked as far as this machine allows (no Docker engine, no MWAA):
docker-compose.yaml against the Compose Specification's schema and as Compose would render it, its
image, and what the MWAA bundle asks MWAA to install. The bundle importing on its own and resolving
under MWAA's constraints take processes and PyPI: tests/scripts/test_mwaa_bundle.py."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from churn_pipeline.domain.settings import Settings
from churn_pipeline.tooling.bundle import build, mwaa_requirements
from tests.conftest import PROJECT

COMPOSE_TEXT = (PROJECT / "docker-compose.yaml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
COMPOSE_SCHEMA = PROJECT / "tests" / "compose_spec" / "compose-spec.json"  # make test installs it
REQUIRE_COMPOSE_SCHEMA = "CHURN_TESTS_REQUIRE_COMPOSE_SCHEMA"  # set by .ci/run
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
AWS_SHELL = {"AWS_PROFILE": "analytics", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
             "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token"}
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$")


def interpolate(text: str, shell: Mapping[str, str]) -> str:
    """Compose's interpolation: $$, $NAME, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error},
    ${NAME?error}, ${NAME:+alternative}, ${NAME+alternative}."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("plain"):
            return shell.get(match.group("plain"), "")
        parts = _BRACED.match(match.group("braced"))
        assert parts, f"not a Compose variable: {match.group(0)}"
        name, op, arg = parts.group("name"), parts.group("op"), parts.group("arg")
        value = shell.get(name)
        empty_counts = op is not None and op.startswith(":")
        missing = value is None or (empty_counts and value == "")
        if op is None:
            return value or ""
        if op.endswith("-"):
            return arg if missing else value or ""
        if op.endswith("?"):
            if missing:
                raise ValueError(f"{name}: {arg}")
            return value or ""
        return "" if missing else arg  # :+ and +

    return _VARIABLE.sub(replace, text)


def render(shell: Mapping[str, str]) -> dict[str, Any]:
    return yaml.safe_load(interpolate(COMPOSE_TEXT, shell))


def container_environment(rendered: dict[str, Any], service: str, shell: Mapping[str, str]) -> dict[str, str]:
    """What a service's container gets from ``environment``: a key without a value passes the
    shell's value through, or is left out when the shell has none (Compose's rule)."""
    found = {}
    for name, value in rendered["services"][service]["environment"].items():
        if value is None:
            if name in shell:
                found[name] = shell[name]
        else:
            found[name] = str(value)
    return found


def compose_schema() -> dict[str, Any]:
    if not COMPOSE_SCHEMA.is_file():
        message = f"{COMPOSE_SCHEMA} is absent (make test installs it with npm where Node.js exists)"
        if os.environ.get(REQUIRE_COMPOSE_SCHEMA):
            pytest.fail(f"{message}, and {REQUIRE_COMPOSE_SCHEMA} says this machine must have it")
        pytest.skip(message)
    return json.loads(COMPOSE_SCHEMA.read_text())


def schema_errors(document: dict[str, Any]) -> list[str]:
    from jsonschema import Draft201909Validator

    validator = Draft201909Validator(compose_schema())
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]


@pytest.mark.parametrize("shell", [{}, AWS_SHELL], ids=["no AWS variables", "AWS variables set"])
def test_the_compose_file_is_valid_under_the_compose_specification(shell: dict[str, str]) -> None:
    assert schema_errors(render({"HOME": "/home/someone", **shell})) == []


def test_the_schema_check_catches_what_compose_would_refuse() -> None:
    broken = render({"HOME": "/home/someone"})
    broken["services"]["airflow-scheduler"]["env_file"] = [{"required": False}]  # no path
    broken["services"]["airflow-scheduler"]["restart"] = {"policy": "always"}
    errors = schema_errors(broken)
    assert any(error.startswith("services/airflow-scheduler/env_file") for error in errors), errors
    assert any(error.startswith("services/airflow-scheduler/restart") for error in errors), errors


def test_without_aws_variables_in_the_shell_the_containers_get_none_not_empty_ones() -> None:
    rendered = render({"HOME": "/home/someone"})
    for service in AIRFLOW_SERVICES:
        environment = container_environment(rendered, service, {})
        assert not [name for name in environment if name.startswith("AWS_")], service  # botocore's chain decides


def test_aws_variables_of_the_shell_reach_the_containers() -> None:
    rendered = render({"HOME": "/home/someone", **AWS_SHELL})
    for service in AIRFLOW_SERVICES:
        environment = container_environment(rendered, service, AWS_SHELL)
        assert {name: environment.get(name) for name in AWS_SHELL} == AWS_SHELL, service


def test_every_churn_setting_of_the_shell_reaches_the_containers_and_dot_env_is_read_when_present() -> None:
    shell = {f"CHURN_{name.upper()}": f"value-of-{name}" for name in Settings.model_fields}
    rendered = render({"HOME": "/home/someone", **shell})
    for service in AIRFLOW_SERVICES:
        environment = container_environment(rendered, service, shell)
        for name, value in shell.items():
            expected = "/opt/airflow/local-store" if name == "CHURN_LOCAL_ROOT" else value  # the mounted store
            assert environment.get(name) == expected, (service, name)
        assert rendered["services"][service]["env_file"] == [{"path": ".env", "required": False}]
        assert not [name for name in container_environment(rendered, service, {}) if name.startswith("CHURN_")
                    and name != "CHURN_LOCAL_ROOT"], "an unset setting stays unset: its default applies"


def test_the_documentation_states_the_compose_version_the_file_needs() -> None:
    for document in (PROJECT / "docs" / "aws.md", PROJECT / "docker-compose.yaml"):
        assert "Docker Compose 2.24.0 or newer" in document.read_text(), document
AIRFLOW_PIN = re.search(r"^apache-airflow==(\S+)$", (PROJECT / "requirements.txt").read_text(), re.M).group(1)


def test_compose_has_the_official_shape() -> None:
    services = COMPOSE["services"]
    assert {"postgres", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
            "airflow-init"} <= set(services)
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-scheduler"]["command"] == "scheduler"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    assert services["airflow-triggerer"]["command"] == "triggerer"
    assert "postgresql" in services["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


def test_every_service_it_depends_on_is_defined() -> None:
    services = COMPOSE["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on undefined {dependency}"


def test_every_mounted_project_path_exists() -> None:
    mounts = COMPOSE["x-airflow-common"]["volumes"]
    project_mounts = [m.split(":")[0] for m in mounts if m.startswith("./")]
    assert {"./dags", "./include", "./plugins"} <= set(project_mounts)
    for source in project_mounts:
        assert (PROJECT / source).is_dir(), source
    # AWS credentials the standard way: the shared config folder and the AWS_* variables
    assert any(m.startswith("${HOME}/.aws:") and m.endswith(":ro") for m in mounts)
    environment = COMPOSE["x-airflow-common"]["environment"]
    assert {"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "CHURN_BACKEND"} <= set(environment)


def test_the_image_builds_from_the_official_airflow_image_at_the_pinned_version() -> None:
    dockerfile = (PROJECT / "Dockerfile").read_text()
    base = re.search(r"^FROM apache/airflow:(\S+?)-python3\.11$", dockerfile, re.M)
    assert base and base.group(1) == AIRFLOW_PIN
    assert f'"apache-airflow=={AIRFLOW_PIN}"' in dockerfile and "requirements.txt" in dockerfile
    assert COMPOSE["x-airflow-common"]["build"] == "."
    assert COMPOSE["x-airflow-common"]["image"].endswith(f":{AIRFLOW_PIN}")


def requirement_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_mwaa_requirements_carry_neither_airflow_nor_the_sagemaker_sdk(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Airflow and the amazon provider bring what the DAG side imports (pydantic, Jinja2, pendulum, boto3);
    # the bundle adds only what the worker-side tasks need and MWAA lacks, unpinned so that MWAA's
    # constraints choose the versions (docs/aws.md)
    assert sorted(requirement_lines(mwaa_requirements())) == ["matplotlib", "pandas", "pyarrow"]
    monkeypatch.setenv("CHURN_REGION", "us-east-1")
    monkeypatch.setenv("CHURN_ROLE_ARN", "arn:aws:iam::123456789012:role/churn-sm")
    monkeypatch.setenv("CHURN_SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:churn-team")
    startup = (build(tmp_path / "mwaa") / "startup.sh").read_text()
    assert re.search(r"^export CHURN_IMAGE_URI=\S+sagemaker-scikit-learn:1\.9-0-cpu-py3$", startup, re.M)
