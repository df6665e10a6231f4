"""A twin of an Amazon MWAA worker: a Python 3.12 virtual environment holding exactly the Python
packages of MWAA's image for one Airflow version, with an MWAA bundle applied to it as MWAA applies it.

The image's packages are data, kept in ``deploy/mwaa/<version>/`` with their source
(``deploy/mwaa/SOURCE.json``: aws/amazon-mwaa-docker-images, path and commit, and each file's git blob
id, which a test recomputes): the image's bill of materials (``Python-Packages-BOM.txt``, a pip-licenses
listing of every distribution the image's ``airflow`` user sees), Airflow's constraints as MWAA copies
them, and MWAA's essential constraints, which no customer requirement may move.

Applying a bundle (``images/airflow/<version>/python/mwaa/`` at that commit: ``entrypoint.py``,
``config/setup_environment.py``, ``utils/user_requirements.py``):

- ``startup.sh`` is sourced by bash (whatever its shebang) with ``MWAA_AIRFLOW_COMPONENT`` set, and
  what it exported reaches every Airflow process, except the variables MWAA protects (``PYTHONPATH``,
  ``AIRFLOW_HOME``, ``AWS_REGION``, ``MWAA__*``, ...);
- then ``requirements.txt`` is installed with pip, ``--constraint mwaa_essential_constraints.txt`` always
  and the Airflow constraints unless a line of the file names its own (``-c `` / ``--constraint ``);
- ``plugins.zip`` is unpacked into the plugins folder (``/usr/local/airflow/plugins``), which is on
  every process's ``sys.path``; the DAGs folder is not (Airflow 3 adds it only while it parses or runs
  a DAG), and nothing puts it on ``PYTHONPATH``.

Where the twin differs from the image, and why: the home is a folder of the twin, not
``/usr/local/airflow``, so the one path a bundle names there (``--find-links /usr/local/airflow/plugins``)
is read as the twin's plugins folder; ``psycopg2`` (the driver of MWAA's PostgreSQL metadata database,
an sdist that needs libpq's headers) is left out, since the twin's database is SQLite; the executor is
the LocalExecutor, not Celery on SQS; pip sees no configuration of this machine and no index but
the one the build is given (``index=None``: none at all).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from churn_pipeline.tooling.bundle import MWAA_DIR, MWAA_PLUGINS_FOLDER, constraints_of

SOURCE_FILE = MWAA_DIR / "SOURCE.json"
BOM = "Python-Packages-BOM.txt.gz"
# Left out of the twin: see the module's doc
NOT_IN_THE_TWIN = frozenset({"psycopg2"})
# Variables MWAA sets in the task definition, which a startup script cannot change (python/mwaa/config/environ.py)
PROTECTED = frozenset({
    "AIRFLOW_ENV_ID", "AIRFLOW_ENV_NAME", "AIRFLOW_HOME", "AIRFLOW_TASK_REVISION_ID", "AIRFLOW_VERSION",
    "AIRFLOW__AWS_MWAA__REDIRECT_URL", "JWT_PUBLIC_KEY", "AIRFLOW__WEBSERVER__BASE_URL", "AIRFLOW__API__BASE_URL",
    "AWS_DEFAULT_REGION", "AWS_REGION", "CUSTOMER_ACCOUNT_ID", "ECS_AGENT_URI", "ECS_CONTAINER_METADATA_URI",
    "ECS_CONTAINER_METADATA_URI_V4", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_EXECUTION_ENV", "PYTHONPATH",
    "PYTHONUNBUFFERED", "WATCHTOWER_VERSION", "USE_NON_CRITICAL_LOGGING", "AIRFLOW__CORE__DATABASE_ACCESS_ISOLATION",
})
# MWAA's own constraint-line test (utils/user_requirements.py): a requirements file with one of these
# brings its own constraints, and MWAA adds no Airflow constraints file
OWN_CONSTRAINTS = re.compile(r"-c |--constraint ")
_VERSION = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[\w.]+)?$")
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


class TwinError(Exception):
    """The twin cannot be built or the bundle cannot be applied; the message says which step and why."""


def git_blob_id(data: bytes) -> str:
    """The id git gives a file of this content (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def source_record() -> dict[str, object]:
    record: dict[str, object] = json.loads(SOURCE_FILE.read_text())
    return record


def stored_content(relative: str) -> bytes:
    """A kept file's content as it is at its source (a ``.gz`` file is kept gzipped)."""
    data = (MWAA_DIR / relative).read_bytes()
    return gzip.decompress(data) if relative.endswith(".gz") else data


def bom_packages(text: str) -> dict[str, str]:
    """Name -> version of every distribution a pip-licenses ``plain-vertical`` listing holds: each entry
    starts after a blank line (the listing's first after its title) with the name, then the version."""
    lines = text.splitlines()
    found: dict[str, str] = {}
    for index in range(1, len(lines) - 1):
        if (index == 1 or not lines[index - 1]) and _NAME.match(lines[index]) and _VERSION.match(lines[index + 1]):
            found[lines[index]] = lines[index + 1]
    return found


def image_packages(version: str) -> dict[str, str]:
    return bom_packages(stored_content(f"{version}/{BOM}").decode())


def twin_pins(version: str) -> list[str]:
    return [f"{name}=={pinned}" for name, pinned in sorted(image_packages(version).items(), key=lambda p: p[0].lower())
            if name.lower() not in NOT_IN_THE_TWIN]


def _run(step: str, command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(command, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if completed.returncode != 0:
        lines = (completed.stderr.strip() or completed.stdout.strip() or "(no output)").splitlines()
        raise TwinError(f"{step} failed: {lines[-1]}")
    return completed


def build_venv(version: str, venv: Path, python312: str, uv: str, index: str | None) -> Path:
    """The image's Python environment, exactly (its pins, pip as MWAA uses it); kept while its pins hold."""
    pins = "\n".join(twin_pins(version)) + "\n"
    marker = venv / ".mwaa-pins"
    if marker.is_file() and marker.read_text() == pins:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    _run("creating the twin's venv", [uv, "venv", "--quiet", "--python", python312, str(venv)])
    pins_file = venv / "mwaa-pins.txt"
    pins_file.write_text(pins)
    python = str(venv / "bin" / "python")
    index_options = ["--index-url", index] if index else []
    _run(f"installing MWAA {version}'s packages", [uv, "pip", "install", "--quiet", "--python", python,
                                                    *index_options, "-r", str(pins_file), "pip"])
    marker.write_text(pins)
    return venv


@dataclass(frozen=True)
class Twin:
    version: str
    venv: Path
    home: Path
    env: dict[str, str]  # what an Airflow process of the twin's worker sees

    @property
    def airflow(self) -> str:
        return str(self.venv / "bin" / "airflow")


def lay_out(bundle: Path, home: Path) -> None:
    """The bundle where MWAA's sidecar puts it: dags/, plugins/ (plugins.zip unpacked), requirements/, startup/."""
    shutil.rmtree(home, ignore_errors=True)
    for folder in ("dags", "plugins", "requirements", "startup"):
        (home / folder).mkdir(parents=True)
    shutil.copytree(bundle / "dags", home / "dags", dirs_exist_ok=True)
    with zipfile.ZipFile(bundle / "plugins.zip") as plugins:
        plugins.extractall(home / "plugins")
    shutil.copy2(bundle / "requirements.txt", home / "requirements" / "requirements.txt")
    shutil.copy2(bundle / "startup.sh", home / "startup" / "startup.sh")


def startup_exports(home: Path, base: Mapping[str, str], component: str = "worker") -> dict[str, str]:
    """What sourcing startup.sh in bash exported (new or changed variables), less MWAA's protected ones."""
    env = {**base, "MWAA_AIRFLOW_COMPONENT": component, "MWAA_COMMAND": component}
    completed = _run("startup.sh", ["bash", "-c", 'source "$1" > /dev/null; env -0', "startup",
                                    str(home / "startup" / "startup.sh")], env=env, timeout=295)
    after = dict(item.split("=", 1) for item in completed.stdout.split("\0") if "=" in item)
    return {name: value for name, value in after.items()
            if env.get(name) != value and name not in PROTECTED and not name.startswith("MWAA__")
            and name not in ("SHLVL", "_", "PWD", "OLDPWD")}


def install_requirements(twin_python: Path, version: str, home: Path, index: str | None) -> str:
    """pip install of requirements.txt as MWAA's ``safe-pip-install`` does it; returns pip's output."""
    requirements = home / "requirements" / "requirements.txt"
    text = requirements.read_text()
    local = home / "requirements" / "requirements.twin.txt"  # the twin's one translation: MWAA's plugins folder
    local.write_text(text.replace(MWAA_PLUGINS_FOLDER, str(home / "plugins")))
    airflow_constraints, essential = constraints_of(version)
    command = [str(twin_python), "-m", "pip", "install", "--disable-pip-version-check", "--constraint",
               str(essential), "-r", str(local)]
    if not any(OWN_CONSTRAINTS.search(line) for line in text.splitlines()):
        command += ["-c", str(airflow_constraints)]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # none of this machine's pip configuration (indexes, find-links)
    env["PIP_INDEX_URL"] = index or "http://127.0.0.1:9/no-index-is-reachable"
    return _run("installing requirements.txt as MWAA does", command, env=env, timeout=540).stdout


def apply_bundle(version: str, venv: Path, bundle: Path, home: Path, index: str | None,
                 base_env: Mapping[str, str]) -> Twin:
    lay_out(bundle, home)
    exports = startup_exports(home, base_env)
    install_requirements(venv / "bin" / "python", version, home, index)
    env = {**base_env, **exports,
           "PATH": f"{venv / 'bin'}{os.pathsep}{base_env.get('PATH', '/usr/bin:/bin')}",
           "VIRTUAL_ENV": str(venv), "AIRFLOW_HOME": str(home), "AIRFLOW_VERSION": version,
           "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
           "AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
           "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",  # MWAA's opinionated default
           "AWS_EXECUTION_ENV": f"Amazon_MWAA_{version.replace('.', '')}",
           "MWAA_AIRFLOW_COMPONENT": "worker", "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)  # MWAA's is its own package's folder; the DAGs folder is never on it
    return Twin(version, venv, home, env)
