"""The MWAA bundle as MWAA meets it: its DAG imports in a fresh interpreter from the bundle alone, and
what it needs resolves (``uv pip compile``, which needs PyPI or a warm uv cache) under the Airflow
constraints of every MWAA version the docs name, where the SageMaker SDK cannot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from churn_pipeline.tooling.bundle import MWAA_DIR, MWAA_VERSIONS, build, check_buildable, mwaa_requirements

MWAA_CONSTRAINTS = [MWAA_DIR / version / "airflow_constraints.txt" for version in MWAA_VERSIONS]
SAGEMAKER_ENV = {"CHURN_REGION": "us-east-1", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
                 "CHURN_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t"}


def resolve_under(constraints: Path, *requirements: str) -> subprocess.CompletedProcess[str]:
    """``uv pip compile`` of what an MWAA environment of that Airflow version installs: Airflow, the
    amazon provider with aiobotocore (MWAA's own requirements) and ``requirements``, under its
    constraints and MWAA's essential ones."""
    version = constraints.parent.name
    uv = Path(sys.executable).with_name("uv")
    return subprocess.run(
        [str(uv), "pip", "compile", "-", "--constraint", str(constraints), "--constraint",
         str(constraints.with_name("mwaa_essential_constraints.txt")), "--python-version", "3.12",
         "--python-platform", "x86_64-manylinux_2_28", "--no-header", "--no-annotate", "--quiet"],
        input="\n".join([f"apache-airflow=={version}", "apache-airflow-providers-amazon[aiobotocore]",
                         *requirements]) + "\n",
        capture_output=True, text=True, timeout=600)


def requirement_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("constraints", MWAA_CONSTRAINTS, ids=lambda path: path.parent.name)
def test_the_mwaa_requirements_resolve_under_airflows_constraints(constraints: Path) -> None:
    resolved = resolve_under(constraints, *requirement_lines(mwaa_requirements()))
    assert resolved.returncode == 0, resolved.stderr[-3000:]
    installed = {line.split("==")[0].lower() for line in requirement_lines(resolved.stdout)}
    # what the DAG side imports on MWAA: Airflow and its provider bring the rest, the bundle this
    assert {"pydantic", "jinja2", "pendulum", "botocore", "aiobotocore", "matplotlib", "pandas", "pyarrow",
            "numpy"} <= installed


@pytest.mark.parametrize("constraints", MWAA_CONSTRAINTS, ids=lambda path: path.parent.name)
def test_the_sagemaker_sdk_cannot_be_installed_under_airflows_constraints(constraints: Path) -> None:
    """Why the bundle resolves the image at build time: sagemaker-core, and so the SDK, do not fit."""
    resolved = resolve_under(constraints, "sagemaker-core>=2")
    assert resolved.returncode != 0 and "importlib-metadata" in resolved.stderr


def test_the_dag_imports_from_the_mwaa_bundle_alone(tmp_path: Path) -> None:
    bundle = build(tmp_path / "mwaa", check_buildable(SAGEMAKER_ENV), environ=SAGEMAKER_ENV)
    with zipfile.ZipFile(bundle / "plugins.zip") as plugins:
        assert plugins.namelist() == [], "no plugin; wheels only when built with --wheels"
    package = bundle / "dags" / "churn_pipeline"
    assert {path.name for path in package.iterdir() if path.is_dir()} == {
        "domain", "requests", "services", "report", "operators", "tasks"}, "tooling/ and local/ stay out of the bundle"
    probe = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "import importlib.util, churn_pipeline, churn_pipeline.domain.settings as s;"
        "spec = importlib.util.spec_from_file_location('dag_module', sys.argv[1] + '/customer_churn_pipeline.py');"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
        "print(json.dumps({'package': churn_pipeline.__file__, 'scripts': str(s.SCRIPTS_DIR),"
        " 'scripts_exist': s.SCRIPTS_DIR.is_dir(), 'schema': m.dag.params['schema_uri'], 'tasks': m.dag.task_ids}))"
    )
    env = {**os.environ, "CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/r"}
    completed = subprocess.run([sys.executable, "-c", probe, str(bundle / "dags")], capture_output=True, text=True,
                               env=env, cwd=tmp_path, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    found = json.loads(completed.stdout.strip().splitlines()[-1])
    dags = str(bundle / "dags")
    assert found["package"].startswith(dags), "the bundle's own copy of the package must be the one imported"
    assert found["scripts"].startswith(dags) and found["scripts_exist"]
    assert found["schema"].startswith(dags) and Path(found["schema"]).is_file()
    assert found["tasks"] == ["extract_customers", "stage_inputs", "find_champion", "preprocess", "train",
                              "score_champion", "evaluate", "check_accuracy", "register_model", "notify_failure"]
