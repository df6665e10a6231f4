"""Run the real DAG through real Airflow 3 (``airflow dags test`` against a SQLite metadata DB), each
test in its own AIRFLOW_HOME and CHURN_LOCAL_ROOT."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PROJECT

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
TRAINING_DAG = "customer_churn_pipeline"
SCORING_DAG = "customer_churn_scoring"
APPROVAL_DAG = "customer_churn_approval"
REVIEW_DAG = "customer_churn_review"


def fresh_shell() -> dict[str, str]:
    """What a new shell on this machine has: the machine's variables (proxy, certificates, caches)
    without this session's: no AIRFLOW_* or CHURN_* setting, no virtualenv, no .venv/bin on PATH."""
    # MAKEFLAGS / MAKELEVEL too: under `make test` they would turn the pasted `make` into a sub-make,
    # which prints "Entering directory" and "make[1]: *** ..." lines that a new shell's make does not
    session = ("AIRFLOW", "CHURN_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTEST", "_OLD_VIRTUAL",
               "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES", "MAKE_TERM")
    shell = {key: value for key, value in os.environ.items() if not key.startswith(session)}
    shell["PATH"] = os.pathsep.join(part for part in os.environ.get("PATH", "").split(os.pathsep)
                                    if part and "/.venv" not in part and not part.endswith("/.venv/bin"))
    return shell


def airflow_env(home: Path, local_root: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CHURN_", "AIRFLOW"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "CHURN_LOCAL_ROOT": str(local_root),
        # failures are exercised on purpose: never sit through production retry delays
        "CHURN_RETRY_DELAY_SECONDS": "0",
        "CHURN_POLL_SECONDS": "0",
    })
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `airflow db migrate`; each test starts from a copy of the result."""
    home = tmp_path_factory.mktemp("airflow-template")
    completed = subprocess.run([AIRFLOW, "db", "migrate"], env=airflow_env(home, home / "store"),
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return home / "airflow.db"


@dataclass
class RunOutcome:
    returncode: int
    log: str
    states: dict[str, str]
    run_state: str


@dataclass
class AirflowProject:
    home: Path
    local_root: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return airflow_env(self.home, self.local_root, **self.extra_env)

    def dags_test(self, logical_date: str, conf: dict | None = None, timeout: int = 900,
                  dag_id: str = TRAINING_DAG) -> RunOutcome:
        command = [AIRFLOW, "dags", "test", dag_id, logical_date]
        if conf:
            command += ["--conf", json.dumps(conf)]
        completed = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout,
                                   cwd=self.home)
        states, run_state = self.states(logical_date, dag_id)
        return RunOutcome(completed.returncode, completed.stdout + completed.stderr, states, run_state)

    def _latest_run(self, db: sqlite3.Connection, logical_date: str,
                    dag_id: str = TRAINING_DAG) -> tuple[str, str] | None:
        return db.execute("SELECT run_id, state FROM dag_run WHERE dag_id = ? "
                          "AND substr(logical_date, 1, 10) = ? ORDER BY id DESC LIMIT 1",
                          (dag_id, logical_date[:10])).fetchone()

    def states(self, logical_date: str, dag_id: str = TRAINING_DAG) -> tuple[dict[str, str], str]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            row = self._latest_run(db, logical_date, dag_id)
            if row is None:
                return {}, "missing"
            tasks = dict(db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                                    (dag_id, row[0])).fetchall())
        return tasks, row[1]

    def xcom(self, logical_date: str, task_id: str, key: str = "return_value", dag_id: str = TRAINING_DAG) -> object:
        """A task's XCom value in the latest run of that date, as JSON."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            row = db.execute("SELECT x.value FROM xcom x JOIN dag_run r ON x.dag_run_id = r.id WHERE "
                             "r.dag_id = ? AND substr(r.logical_date, 1, 10) = ? AND "
                             "x.task_id = ? AND x.key = ? ORDER BY r.id DESC LIMIT 1",
                             (dag_id, logical_date[:10], task_id, key)).fetchone()
        return None if row is None else json.loads(row[0])

    def asset_events(self, asset: str) -> list[dict]:
        """The events of an asset, oldest first: who emitted each and its extra."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            rows = db.execute("SELECT e.source_dag_id, e.source_task_id, e.extra FROM asset_event e JOIN asset a "
                              "ON e.asset_id = a.id WHERE a.name = ? ORDER BY e.id", (asset,)).fetchall()
        return [{"dag_id": dag, "task_id": task, "extra": json.loads(extra or "{}")} for dag, task, extra in rows]

    def tries(self, logical_date: str, task_id: str) -> int:
        """How many times the task ran in the latest run of that date (1: it was not retried)."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            row = self._latest_run(db, logical_date)
            assert row is not None, f"no run for {logical_date}"
            (tries,) = db.execute("SELECT try_number FROM task_instance WHERE dag_id = 'customer_churn_pipeline' "
                                  "AND run_id = ? AND task_id = ?", (row[0], task_id)).fetchone()
        return int(tries)

    def everything_logged(self, outcome: RunOutcome) -> str:
        """The run's output and every task log file Airflow wrote under its home."""
        files = sorted(path for path in (self.home / "logs").rglob("*") if path.is_file()) \
            if (self.home / "logs").is_dir() else []
        return outcome.log + "".join(path.read_text(errors="replace") for path in files)

    def notifications(self) -> list[dict]:
        outbox = self.local_root / "notifications.jsonl"
        return [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.is_file() else []

    def versions(self) -> list[dict]:
        from churn_pipeline.services.registry import MlflowRegistry

        if not (self.local_root / "mlflow.db").is_file():
            return []
        return MlflowRegistry(self.local_root).versions("customer-churn")

    def run_prefix(self, key: str) -> Path:
        return self.local_root / "s3" / "customer-churn-pipeline" / "churn-pipeline" / "runs" / key

    def scoring_prefix(self, key: str) -> Path:
        return self.local_root / "s3" / "customer-churn-pipeline" / "churn-pipeline" / "scoring" / key


def new_project(folder: Path, migrated_db: Path) -> AirflowProject:
    home = folder / "airflow"
    home.mkdir()
    shutil.copyfile(migrated_db, home / "airflow.db")
    return AirflowProject(home=home, local_root=folder / "store")


@pytest.fixture()
def airflow_project(tmp_path: Path, migrated_db: Path) -> AirflowProject:
    return new_project(tmp_path, migrated_db)


@pytest.fixture(scope="module")
def module_project(tmp_path_factory: pytest.TempPathFactory, migrated_db: Path) -> AirflowProject:
    """One project for the tests of a module that build on the same history (such as one trained and
    approved model) instead of each paying for it. The tests that use it carry one xdist group, so that
    one worker runs them (and makes it once), and each uses dates of its own."""
    return new_project(tmp_path_factory.mktemp("module-project"), migrated_db)


@pytest.fixture(scope="session")
def moto_server():
    """One moto server for the whole session (tests reset it): AWS on loopback for the Airflow
    subprocesses, with its request recorder."""
    from tests.e2e.moto_server import MotoServer

    server = MotoServer()
    yield server
    server.stop()
