"""Airflow's UI as the README brings it up: `make standalone` from a shell whose PATH lacks .venv/bin,
the DAGs in the state docs/running-locally.md describes (training paused; approval and scoring
unpaused, scoring's latest slot running at once), the training DAG triggered through its form in
headless Chromium with "unpause on trigger" checked as the README says (your run and the latest 02:00
slot: exactly two versions), a version approved through the approval DAG's form (scoring runs for that
approval), a backfill through the real scheduler, and `make stop`, after which no process of it runs."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from churn_pipeline.tooling.standalone import GRACE_SECONDS, MARKER, PID_FILE
from tests.conftest import PROJECT
from tests.e2e.conftest import AIRFLOW, APPROVAL_DAG, SCORING_DAG, fresh_shell
from tests.e2e.moto_server import free_port

pytestmark = pytest.mark.e2e
DATES = ("20261101T020000Z",)
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


def trigger_through_the_rest_api(port: int, conf_json: str) -> tuple[int, str]:
    """POST a DAG run of the training DAG with this conf (JSON text: Python's json, like the API's,
    reads NaN and Infinity); the status and the answer's detail."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/dags/customer_churn_pipeline/dagRuns",
                                     data=f'{{"logical_date": null, "conf": {conf_json}}}'.encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read()).get("detail", "")


def dag_states(home: Path) -> dict[str, bool]:
    with sqlite3.connect(home / "airflow.db") as db:
        return {dag: bool(paused) for dag, paused in db.execute("SELECT dag_id, is_paused FROM dag")}


def runs_of(home: Path, dag_id: str) -> list[tuple[str, str, str]]:
    """(run type, state, run id) of every run of the DAG, oldest first."""
    with sqlite3.connect(home / "airflow.db") as db:
        return db.execute("SELECT run_type, state, run_id FROM dag_run WHERE dag_id = ? ORDER BY id",
                          (dag_id,)).fetchall()


def test_make_standalone_serves_the_ui_path_of_the_readme_and_make_stop_ends_it_all(airflow_project, chromium) -> None:
    from tests.ui_tour import (
        DAG_ID,
        chromium_page,
        open_the_trigger_form,
        show_the_graph,
        submit_the_trigger_form,
        trigger_is_enabled,
        unpause_is_checked,
    )

    port = free_port()
    home = airflow_project.home
    shell = {**fresh_shell(),
             **{key: value for key, value in airflow_project.env.items() if key.startswith(("AIRFLOW", "CHURN_"))},
             "CHURN_AIRFLOW_HOME": str(home),  # make's own choice of home: the shell's AIRFLOW_HOME it ignores
             "AIRFLOW_HOME": str(home / "another-airflow"),
             "AIRFLOW__API__PORT": str(port),
             "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
             "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
             "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
             "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
             "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}  # the browser needs no login
    del shell["AIRFLOW__CORE__DAGS_FOLDER"]  # make sets it: the project's, whatever the shell has
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

    def restart_if_the_scheduler_crashed() -> None:
        nonlocal server, session, restarted
        if not restarted and SCHEDULER_CRASH in log.read_text():
            # Airflow's own scheduler can exit on SQLite (apache/airflow#63926) and standalone does
            # not restart it; what docs/running-locally.md tells a person to do, the test does, once
            assert stop().returncode == 0
            assert server is not None
            server.wait(timeout=60)
            (server, session), restarted = start(), True

    def await_runs(dag_id: str, count: int, timeout: float = 1200) -> list[tuple[str, str, str]]:
        deadline = time.time() + timeout
        while True:
            runs = runs_of(home, dag_id)
            if len(runs) >= count and all(state in ("success", "failed") for _, state, _ in runs):
                return runs
            restart_if_the_scheduler_crashed()
            assert time.time() < deadline, f"{dag_id}: {runs}"
            time.sleep(3)

    server: subprocess.Popen | None = None
    session: int | None = None
    restarted = False
    try:
        server, session = start()
        assert f"Airflow home {home}, DAGs {PROJECT / 'dags'}" in log.read_text()
        assert (home / "simple_auth_manager_passwords.json.generated").stat().st_mode & 0o777 == 0o600

        def cli(*args: str) -> subprocess.CompletedProcess:
            # The CLI and the running scheduler share one SQLite file; SQLite refuses a transaction that
            # must upgrade to writing while the scheduler writes ("database is locked", at once, whatever
            # the busy timeout). The refused command changed nothing, so it is simply run again.
            for _ in range(10):
                completed = subprocess.run([AIRFLOW, *args], env={**shell, "AIRFLOW_HOME": str(home)}, cwd=home,
                                           capture_output=True, text=True, timeout=300)
                if "database is locked" not in completed.stderr:
                    return completed
                time.sleep(2)
            return completed

        deadline = time.time() + 180
        while len(dag_states(home)) < 4:
            assert time.time() < deadline, "the DAGs were never parsed"
            time.sleep(3)
        # the state the docs describe: training paused (its nightly run is opt-in), approval, scoring and
        # outcomes not
        assert dag_states(home) == {DAG_ID: True, APPROVAL_DAG: False, SCORING_DAG: False,
                                    "customer_churn_outcomes": False}
        # what unpausing does, as the docs say: scoring runs its latest 06:00 slot at once, and with no
        # approved version it ends before any job, saying how to approve one
        ((kind, state, _),) = await_runs(SCORING_DAG, 1, timeout=300)
        assert (kind, state) == ("scheduled", "failed")
        assert any("approve one with `make approve VERSION=N`" in note["message"]
                   for note in airflow_project.notifications())

        # the REST API refuses what the DAG's Param schemas refuse, NaN and infinities included
        for conf, detail in (('{"accuracy_threshold": NaN}', "Invalid input for param accuracy_threshold: nan"),
                             ('{"accuracy_threshold": Infinity}', "Invalid input for param accuracy_threshold: inf"),
                             ('{"drift_mode": "strict"}', "Invalid input for param drift_mode: 'strict'")):
            status, said = trigger_through_the_rest_api(port, conf)
            assert status == 400 and said.startswith(detail), (conf, status, said)
        assert runs_of(home, DAG_ID) == [], "a refused conf creates no run"

        base = f"http://127.0.0.1:{port}"
        with chromium_page(width=1280, height=720) as page:
            graph = show_the_graph(page, base)
            assert "ExtractCustomersOperator" in graph and "BranchPythonOperator" in graph
            form = open_the_trigger_form(page)
            assert f"Unpause {DAG_ID} on trigger" in form and unpause_is_checked(page), "checked, as the README says"
            assert trigger_is_enabled(page), "the trigger form refuses its own defaults"
            submit_the_trigger_form(page)
            # your run and the latest 02:00 slot, which unpausing schedules: the two versions the README promises
            training = await_runs(DAG_ID, 2)
            assert sorted(kind for kind, _, _ in training) == ["manual", "scheduled"]
            assert [state for _, state, _ in training] == ["success", "success"], training
            assert sorted(v["version"] for v in airflow_project.versions()) == [1, 2]

            show_the_graph(page, base, f"/dags/{APPROVAL_DAG}", tasks=("approve_version",))
            open_the_trigger_form(page, param="version")
            submit_the_trigger_form(page)  # its defaults: approve version 1
            ((_, approved, _),) = await_runs(APPROVAL_DAG, 1, timeout=600)
            assert approved == "success"
            scoring = await_runs(SCORING_DAG, 2, timeout=900)
            assert scoring[-1][:2] == ("asset_triggered", "success"), f"scoring follows the approval: {scoring}"
            (summary,) = airflow_project.local_root.glob("s3/*/*/scoring/*/summary.json")
            assert json.loads(summary.read_text())["model"]["version"] == 1, "scored with the version approved"

        created = cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", "2026-11-01",
                      "--to-date", "2026-11-02", "--max-active-runs", "1")
        assert created.returncode == 0, created.stderr[-3000:]
        deadline = time.time() + 1200
        while True:
            states = {run: state for _, state, run in runs_of(home, DAG_ID) if run.startswith("backfill")}
            if len(states) == len(DATES) and all(state in ("success", "failed") for state in states.values()):
                break
            restart_if_the_scheduler_crashed()
            assert time.time() < deadline, f"backfill did not finish: {states}"
            time.sleep(5)
    finally:
        stopped = stop()  # by the pid file and the marker: also what a start that failed left running
        if server is not None:
            server.wait(timeout=60)

    assert stopped.returncode == 0 and "stopped Airflow standalone" in stopped.stdout, stopped.stdout + stopped.stderr
    took = float(re.search(r" in (\d+\.\d) s", stopped.stdout).group(1))
    assert took < GRACE_SECONDS + 5, f"a stop takes seconds, not Airflow's own shutdown timeouts: {stopped.stdout}"
    assert "killed" not in stopped.stdout or re.search(r"killed after \d+ s \(airflow ", stopped.stdout), \
        "what had to be killed is named"
    assert server.returncode == 0, "make standalone ends cleanly when stopped"
    assert session is not None and processes_of(home, session) == [], "make stop leaves nothing running"
    assert health(port) == {}, "nothing answers on the port any more"
    assert not (home / PID_FILE).exists()

    assert set(states.values()) == {"success"}, states
    for key in DATES:
        run = airflow_project.run_prefix(key)
        assert (run / "evaluation" / "evaluation.json").is_file()
        assert (airflow_project.local_root / "jobs" / f"churn-train-{key}" / "description.json").is_file()
    # the backfilled date's version comes after the two of the UI, and nothing else ran
    versions = sorted(airflow_project.versions(), key=lambda v: v["version"])
    assert [v["tags"]["run_key"] for v in versions][2:] == list(DATES)
