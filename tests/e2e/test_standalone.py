"""Airflow's UI as the README brings it up: `make standalone` from a shell whose PATH lacks .venv/bin,
the DAG's graph and its trigger form in a browser, a backfill through the real scheduler (each date
gets its own prefix, jobs, evaluation and version, in date order), and `make stop`, after which no
process of it runs."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from churn_pipeline.tooling.standalone import MARKER, PID_FILE
from tests.conftest import PROJECT
from tests.e2e.conftest import AIRFLOW, fresh_shell
from tests.e2e.moto_server import free_port

pytestmark = pytest.mark.e2e
DATES = ("20261101T020000Z", "20261102T020000Z")
# how Airflow 3's scheduler ends when SQLite hands it a stale dag_run row (apache/airflow#63926)
SCHEDULER_CRASH = "StaleDataError: UPDATE statement on table 'dag_run'"


def run_states(home: Path) -> dict[str, str]:
    with sqlite3.connect(home / "airflow.db") as db:
        return dict(db.execute("SELECT run_id, state FROM dag_run").fetchall())


def health(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5) as answer:
            return json.loads(answer.read())
    except OSError:
        return {}


def processes_of(home: Path, session: int) -> list[str]:
    """Running processes in the server's session or carrying its marker, as `ps` would list them."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            marked = f"{MARKER}={home}".encode() in (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and (int(fields[3]) == session or marked):
            found.append(f"{entry.name} {command}")
    return found


def test_make_standalone_serves_the_ui_runs_a_backfill_and_make_stop_ends_it_all(airflow_project, chromium) -> None:
    from tests.ui_tour import DAG_ID, chromium_page, open_the_trigger_form, show_the_graph, trigger_is_enabled

    port = free_port()
    home = airflow_project.home
    shell = {**fresh_shell(),
             **{key: value for key, value in airflow_project.env.items() if key.startswith(("AIRFLOW", "CHURN_"))},
             "AIRFLOW__API__PORT": str(port),
             "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
             "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
             "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
             "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
             # only the backfill runs: unpausing would also start the latest 02:00 slot (as the README
             # warns), a third whole run this test does not need
             "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
             "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}  # the browser needs no login
    assert not any(part.endswith(".venv/bin") for part in shell["PATH"].split(":"))
    log = home / "standalone.out"
    log.touch()

    def start() -> tuple[subprocess.Popen, int]:
        """`make standalone` as a person runs it, once its scheduler and dag-processor are healthy."""
        with log.open("a") as output:
            server = subprocess.Popen(["make", "--no-print-directory", "standalone"], cwd=PROJECT, env=shell,
                                      stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 240
        while not all(health(port).get(part, {}).get("status") == "healthy" for part in ("scheduler", "dag_processor")):
            assert server.poll() is None, f"make standalone ended: {log.read_text()[-4000:]}"
            assert time.time() < deadline, f"no healthy scheduler and dag-processor: {log.read_text()[-4000:]}"
            time.sleep(2)
        return server, int((home / PID_FILE).read_text())

    def stop() -> subprocess.CompletedProcess:
        return subprocess.run(["make", "--no-print-directory", "stop"], cwd=PROJECT, env=shell,
                              capture_output=True, text=True, timeout=120)

    server: subprocess.Popen | None = None
    session: int | None = None
    try:
        server, session = start()

        def cli(*args: str) -> subprocess.CompletedProcess:
            # The CLI and the running scheduler share one SQLite file; SQLite refuses a transaction that
            # must upgrade to writing while the scheduler writes ("database is locked", at once, whatever
            # the busy timeout). The refused command changed nothing, so it is simply run again.
            for _ in range(10):
                completed = subprocess.run([AIRFLOW, *args], env=shell, cwd=home, capture_output=True, text=True,
                                           timeout=300)
                if "database is locked" not in completed.stderr:
                    return completed
                time.sleep(2)
            return completed

        deadline = time.time() + 180
        while DAG_ID not in cli("dags", "list").stdout:
            assert time.time() < deadline, "the DAG was never parsed"
            time.sleep(3)

        # what the README shows a person: the graph, and a trigger form whose defaults can be submitted,
        # with "unpause on trigger" checked (why one click can give two runs)
        with chromium_page(width=1280, height=720) as page:
            graph = show_the_graph(page, f"http://127.0.0.1:{port}")
            form = open_the_trigger_form(page)
            assert "ExtractCustomersOperator" in graph and "BranchPythonOperator" in graph
            assert f"Unpause {DAG_ID} on trigger" in form
            assert trigger_is_enabled(page), "the trigger form refuses its own defaults"

        assert cli("dags", "unpause", DAG_ID).returncode == 0
        created = cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", "2026-11-01",
                      "--to-date", "2026-11-03", "--max-active-runs", "1")
        assert created.returncode == 0, created.stderr[-3000:]
        deadline, restarted = time.time() + 1200, False
        while True:
            states = {run: state for run, state in run_states(home).items() if run.startswith("backfill")}
            if len(states) == len(DATES) and all(state in ("success", "failed") for state in states.values()):
                break
            if not restarted and SCHEDULER_CRASH in log.read_text():
                # Airflow's own scheduler can exit on SQLite (apache/airflow#63926) and standalone does
                # not restart it; what docs/running-locally.md tells a person to do, the test does, once
                assert stop().returncode == 0
                server.wait(timeout=60)
                (server, session), restarted = start(), True
            assert time.time() < deadline, f"backfill did not finish: {states}"
            time.sleep(5)
    finally:
        stopped = stop()  # by the pid file and the marker: also what a start that failed left running
        if server is not None:
            server.wait(timeout=60)

    assert stopped.returncode == 0 and "stopped Airflow standalone" in stopped.stdout, stopped.stdout + stopped.stderr
    assert server.returncode == 0, "make standalone ends cleanly when stopped"
    assert session is not None and processes_of(home, session) == [], "make stop leaves nothing running"
    assert health(port) == {}, "nothing answers on the port any more"
    assert not (home / PID_FILE).exists()

    assert set(states.values()) == {"success"}, states
    for key in DATES:
        run = airflow_project.run_prefix(key)
        assert (run / "evaluation" / "evaluation.json").is_file()
        assert (airflow_project.local_root / "jobs" / f"churn-train-{key}" / "description.json").is_file()
    # the backfilled dates' versions come in date order, and nothing else ran
    versions = sorted(airflow_project.versions(), key=lambda v: v["version"])
    assert [v["tags"]["run_key"] for v in versions] == list(DATES)
