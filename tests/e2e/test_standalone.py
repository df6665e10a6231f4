"""Airflow's UI as the README brings it up: `make standalone` from a shell whose PATH lacks .venv/bin,
the DAGs in the state docs/running-locally.md describes (training paused; approval, review and scoring
unpaused, scoring's latest slot running at once), the training DAG triggered through its form in
headless Chromium with "unpause on trigger" checked as the README says (your run and the latest 02:00
slot: exactly two versions), each version's review under Required Actions with its evidence, opened
from the link its notification carries (the first approved: the champion, scored once; the second
rejected: nothing moves, nothing scored), the same approval again through the approval DAG's form
(scoring de-duplicates: it starts nothing), a backfill through the real scheduler whose version nobody
reviews (it rejects itself after the shortened timeout), and `make stop`, after which no process of it
runs."""

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

from churn_pipeline.domain.review import review_link
from churn_pipeline.tooling.standalone import GRACE_SECONDS, MARKER, PID_FILE
from tests.conftest import PROJECT
from tests.e2e.conftest import AIRFLOW, APPROVAL_DAG, REVIEW_DAG, SCORING_DAG, fresh_shell
from tests.e2e.moto_server import free_port

pytestmark = pytest.mark.e2e
DATES = ("20261101T020000Z",)
# how Airflow 3's scheduler ends when SQLite hands it a stale dag_run row (apache/airflow#63926)
SCHEDULER_CRASH = "StaleDataError: UPDATE statement on table 'dag_run'"
# long enough to answer two reviews in the browser as they appear, short enough to wait out once
REVIEW_TIMEOUT_SECONDS = 90
# how the scheduler fails a task on the executor's stale report of an earlier try (apache/airflow#71580)
STALE_SUCCESS = re.compile(r"<TaskInstance: customer_churn_review\.review_version [^>]*> finished with state success, "
                           r"but the task instance's state attribute is (?:running|queued|scheduled|awaiting_input)")


def waiting_reviews(home: Path) -> list[tuple[str, int, int]]:
    """(run id, map index, try) of every review question waiting for an answer now."""
    with sqlite3.connect(home / "airflow.db") as db:
        return db.execute("SELECT run_id, map_index, try_number FROM task_instance WHERE dag_id = ? AND "
                          "task_id = 'review_version' AND state = 'awaiting_input'", (REVIEW_DAG,)).fetchall()


def review_tries(home: Path) -> dict[tuple[str, int], tuple[str, int]]:
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute("SELECT run_id, map_index, state, try_number FROM task_instance WHERE dag_id = ? AND "
                          "task_id = 'review_version'", (REVIEW_DAG,)).fetchall()
    return {(run, index): (state, tries) for run, index, state, tries in rows}


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
        answer_the_review,
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
             "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",  # the reviews' links point here
             "CHURN_REVIEW_TIMEOUT_DAYS": str(REVIEW_TIMEOUT_SECONDS / 86400),
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
        while len(dag_states(home)) < 5:
            assert time.time() < deadline, "the DAGs were never parsed"
            time.sleep(3)
        # the state the docs describe: training paused (its nightly run is opt-in), approval, review, scoring
        # and outcomes not
        assert dag_states(home) == {DAG_ID: True, APPROVAL_DAG: False, REVIEW_DAG: False, SCORING_DAG: False,
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
            # each version's review, opened from its notification's link and answered as it appears: the
            # first approved, the second rejected (a retry of a question after Airflow's stale-success race
            # is a new try waiting: it is answered again)
            answers = {1: ("Approve", "the first model: ship it"), 2: ("Reject", "no better than version 1")}
            answered: dict[tuple[str, int], str] = {}
            deadline = time.time() + 1200

            def statuses() -> dict[int, str]:
                # read once a version was announced: the first registration creates the MLflow database,
                # and a reader opening it meanwhile would run MLflow's migrations alongside
                if not links:
                    return {}
                return {v["version"]: v["tags"].get("approval_status") for v in airflow_project.versions()}

            links: dict[str, int] = {}
            while statuses() != {1: "Approved", 2: "Rejected"}:
                links = {note["review_url"]: int(re.search(r"version (\d+)", note["subject"])[1])
                         for note in airflow_project.notifications() if note["reason"] == "review_requested"}
                for run_id, index, attempt in waiting_reviews(home):
                    url = review_link(base, REVIEW_DAG, run_id, "review_version", index)
                    version = links.get(url)
                    if version in answers and (url, attempt) not in answered:
                        option, comment = answers[version]
                        answered[(url, attempt)] = answer_the_review(
                            page, url, f"Approve customer-churn version {version}?", option, comment)
                restart_if_the_scheduler_crashed()
                assert time.time() < deadline, f"reviews not answered: {airflow_project.versions()}"
                time.sleep(2)
            first = next(text for (url, _), text in answered.items() if links[url] == 1)
            for evidence in ("customer-churn version 1", "Gate: passed", "accuracy 0.", "this version",
                             "champion (none approved)", "roc_auc", "Drift", "Business", "expected campaign profit",
                             "Report", "report.html"):
                assert evidence in first, f"{evidence!r} not on the review page: {first[-2500:]}"
            # your run and the latest 02:00 slot, which unpausing schedules: the two versions the README promises
            training = await_runs(DAG_ID, 2)
            assert sorted(kind for kind, _, _ in training) == ["manual", "scheduled"]
            assert [state for _, state, _ in training] == ["success", "success"], training
            reviews = await_runs(REVIEW_DAG, 1, timeout=600)
            assert {state for _, state, _ in reviews} == {"success"}, reviews
            decided = {v["version"]: v for v in airflow_project.versions()}
            assert decided[1]["aliases"] == ["champion"] and decided[2]["aliases"] == [], "a rejection moves nothing"
            assert re.match(r"Approved by \S+ at 20\d\d-.* via Airflow review \(customer_churn_review run .*\): "
                            r"the first model: ship it$", decided[1]["tags"]["approval_description"])
            assert decided[2]["tags"]["approval_description"].endswith(": no better than version 1")
            scoring = await_runs(SCORING_DAG, 2, timeout=900)
            assert [kind for kind, _, _ in scoring] == ["scheduled", "asset_triggered"], \
                f"one scoring run for the one approval, none for the rejection: {scoring}"
            assert scoring[-1][1] == "success"
            champion_events = airflow_project.asset_events("churn_champion")
            assert [(event["dag_id"], event["extra"]["version"]) for event in champion_events] == [(REVIEW_DAG, 1)]

            # the same approval once more, through the approval DAG's form: an event for a package already
            # scored starts no second scoring of it
            show_the_graph(page, base, f"/dags/{APPROVAL_DAG}", tasks=("approve_version",))
            open_the_trigger_form(page, param="version")
            submit_the_trigger_form(page)  # its defaults: approve version 1
            ((_, approved, _),) = await_runs(APPROVAL_DAG, 1, timeout=600)
            assert approved == "success"
            scoring = await_runs(SCORING_DAG, 3, timeout=900)
            assert scoring[-1][:2] == ("asset_triggered", "success"), f"the second event's run: {scoring}"
            with sqlite3.connect(home / "airflow.db") as db:
                second = dict(db.execute("SELECT task_id, state FROM task_instance WHERE run_id = ?",
                                         (scoring[-1][2],)).fetchall())
            assert second["stage_customers"] == "skipped" and second["score_customers"] == "skipped", second
            (summary,) = airflow_project.local_root.glob("s3/*/*/scoring/*/summary.json")
            assert json.loads(summary.read_text())["model"]["version"] == 1, "scored once, with the version approved"

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
        # nobody answers the backfilled version's review: after its timeout it rejects itself, saying so
        reviews = await_runs(REVIEW_DAG, len(reviews) + 1, timeout=REVIEW_TIMEOUT_SECONDS + 300)
        assert {state for _, state, _ in reviews} == {"success"}, reviews
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
    unanswered = versions[2]
    assert unanswered["tags"]["approval_status"] == "Rejected" and unanswered["aliases"] == []
    assert re.match(r"Rejected by nobody at .*: no answer within [\d.e-]+ day\(s\): rejected automatically$",
                    unanswered["tags"]["approval_description"]), unanswered["tags"]
    assert [kind for kind, _, _ in runs_of(home, SCORING_DAG)] == ["scheduled", "asset_triggered", "asset_triggered"]
    # a question is asked again only after Airflow's stale-success race failed its try, as its log says
    raced = len(STALE_SUCCESS.findall(log.read_text()))
    assert sum(tries - 1 for _, tries in review_tries(home).values()) <= raced, (review_tries(home), raced)
