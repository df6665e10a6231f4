"""Deployment assets, checked as far as this machine allows (no Docker engine, no MWAA):
docker-compose.yaml and its image, and the MWAA bundle importing on its own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from churn_pipeline.bundle import build, mwaa_requirements
from tests.conftest import PROJECT

COMPOSE = yaml.safe_load((PROJECT / "docker-compose.yaml").read_text())
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


def test_mwaa_requirements_carry_no_airflow_pin() -> None:
    text = mwaa_requirements((PROJECT / "requirements.txt").read_text())
    assert "apache-airflow" not in text.replace("# MWAA provides Airflow", "")
    assert "sagemaker==" in text


def test_the_dag_imports_from_the_mwaa_bundle_alone(tmp_path: Path) -> None:
    bundle = build(tmp_path / "mwaa")
    with zipfile.ZipFile(bundle / "plugins.zip") as plugins:
        assert plugins.namelist() == ["churn_pipeline_plugin.py"]
    probe = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "import importlib.util, churn_pipeline, churn_pipeline.settings as s;"
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
    assert found["tasks"][0] == "extract_customers" and len(found["tasks"]) == 8
