"""A backfill through a real scheduler (`airflow standalone`): each date gets its own prefix, jobs,
evaluation and version, in date order."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import AIRFLOW
from tests.e2e.moto_server import free_port

pytestmark = pytest.mark.e2e
DATES = ("20261101T020000Z", "20261102T020000Z", "20261103T020000Z")


def run_states(home: Path) -> dict[str, str]:
    with sqlite3.connect(home / "airflow.db") as db:
        return dict(db.execute("SELECT run_id, state FROM dag_run").fetchall())


def test_backfill_of_three_dates(airflow_project) -> None:
    api_port = free_port()
    env = {**airflow_project.env, "PATH": f"{Path(AIRFLOW).parent}:{os.environ['PATH']}",
           "AIRFLOW__API__PORT": str(api_port),
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
           "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
           "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
           "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1"}
    server = subprocess.Popen([AIRFLOW, "standalone"], env=env, cwd=airflow_project.home, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def cli(*args: str) -> subprocess.CompletedProcess:
            # The CLI and the running scheduler share one SQLite file; SQLite refuses a transaction that
            # must upgrade to writing while the scheduler writes ("database is locked", at once, whatever
            # the busy timeout). The refused command changed nothing, so it is simply run again.
            for _ in range(10):
                completed = subprocess.run([AIRFLOW, *args], env=env, cwd=airflow_project.home,
                                           capture_output=True, text=True, timeout=300)
                if "database is locked" not in completed.stderr:
                    return completed
                time.sleep(2)
            return completed

        deadline = time.time() + 180
        while "customer_churn_pipeline" not in cli("dags", "list").stdout:
            assert time.time() < deadline, "the DAG was never parsed"
            time.sleep(3)
        assert cli("dags", "unpause", "customer_churn_pipeline").returncode == 0
        created = cli("backfill", "create", "--dag-id", "customer_churn_pipeline", "--from-date", "2026-11-01",
                      "--to-date", "2026-11-04", "--max-active-runs", "1")
        assert created.returncode == 0, created.stderr[-3000:]
        deadline = time.time() + 1200
        while True:
            states = {run: state for run, state in run_states(airflow_project.home).items()
                      if run.startswith("backfill")}
            if len(states) == 3 and all(state in ("success", "failed") for state in states.values()):
                break
            assert time.time() < deadline, f"backfill did not finish: {states}"
            time.sleep(5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)

    assert set(states.values()) == {"success"}, states
    for key in DATES:
        run = airflow_project.run_prefix(key)
        assert (run / "evaluation" / "evaluation.json").is_file()
        assert (airflow_project.local_root / "jobs" / f"churn-train-{key}" / "description.json").is_file()
    # unpausing also schedules the latest slot; the backfilled dates' versions come in date order
    backfilled = [v for v in airflow_project.versions() if v["tags"]["run_key"] in DATES]
    assert [v["tags"]["run_key"] for v in sorted(backfilled, key=lambda v: v["version"])] == list(DATES)
