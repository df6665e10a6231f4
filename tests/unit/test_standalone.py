"""How `make stop` finds and ends the standalone server's processes, on a process table of stand-ins
(the real server, its workers and `make stop` itself run in tests/e2e/test_standalone.py): a process
is the server's when it is in the server's session or carries the home's marker; stopping sends
SIGTERM, then SIGKILL after the grace period, also to processes started while the others stop."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from churn_pipeline.tooling import standalone
from churn_pipeline.tooling.standalone import MARKER, PID_FILE

SESSION = 4000


class StandIn:
    """What standalone asks of a ``psutil.Process``, for a process that lives in ``table``."""

    def __init__(self, table: dict[int, StandIn], pid: int, *, session: int = 1, environ: dict[str, str] | None = None,
                 zombie: bool = False, environ_hidden: bool = False, outlives_sigterm: bool = False,
                 on_sigterm: Callable[[], None] | None = None):
        self.table, self.pid, self.session, self.zombie = table, pid, session, zombie
        self._environ, self.environ_hidden = environ or {}, environ_hidden
        self.outlives_sigterm, self.on_sigterm = outlives_sigterm, on_sigterm
        self.signals: list[int] = []
        table[pid] = self

    def _exists(self) -> None:
        if self.pid not in self.table:
            raise psutil.NoSuchProcess(self.pid)

    def status(self) -> str:
        self._exists()
        return psutil.STATUS_ZOMBIE if self.zombie else psutil.STATUS_SLEEPING

    def environ(self) -> dict[str, str]:
        self._exists()
        if self.environ_hidden:
            raise psutil.AccessDenied(self.pid)
        return dict(self._environ)

    def send_signal(self, signum: int) -> None:
        self._exists()
        self.signals.append(signum)
        if signum == signal.SIGTERM and self.on_sigterm:
            self.on_sigterm()
        if signum == signal.SIGKILL or not self.outlives_sigterm:
            del self.table[self.pid]

    def cmdline(self) -> list[str]:
        self._exists()
        return ["/project/.venv/bin/python", "/project/.venv/bin/airflow", f"component-{self.pid}"]

    def is_running(self) -> bool:
        return self.pid in self.table

    def wait(self, timeout: float | None = None) -> int | None:
        if self.is_running():
            time.sleep(min(timeout or 0.0, 0.01))
            raise psutil.TimeoutExpired(timeout or 0.0, self.pid)
        return None


@pytest.fixture()
def table(monkeypatch: pytest.MonkeyPatch) -> dict[int, StandIn]:
    processes: dict[int, StandIn] = {}

    def getsid(pid: int) -> int:
        if pid not in processes:
            raise ProcessLookupError(pid)
        return processes[pid].session

    def process(pid: int) -> StandIn:
        if pid not in processes:
            raise psutil.NoSuchProcess(pid)
        return processes[pid]

    monkeypatch.setattr(psutil, "process_iter", lambda: list(processes.values()))
    monkeypatch.setattr(psutil, "Process", process)
    monkeypatch.setattr(os, "getsid", getsid)
    return processes


def test_the_servers_processes_are_those_of_its_session_or_carrying_its_marker(table, tmp_path: Path) -> None:
    home, other_home = tmp_path / "home", tmp_path / "other"
    StandIn(table, os.getpid(), session=SESSION, environ={MARKER: str(home)})  # `make stop` itself
    StandIn(table, 11, session=SESSION)  # rewrote its title over its environment, still in the session
    StandIn(table, 12, environ={MARKER: str(home)})  # left the session, kept the marker
    StandIn(table, 13, environ={MARKER: str(other_home)})  # another project's server
    StandIn(table, 14, session=SESSION, zombie=True)  # ended; only its parent can clear it
    StandIn(table, 15, environ_hidden=True)  # another user's
    StandIn(table, 16)

    assert sorted(process.pid for process in standalone._processes_of(home, SESSION)) == [11, 12]
    assert [process.pid for process in standalone._processes_of(home, None)] == [12], "no pid file: the marker"


def leader(table: dict[int, StandIn], home: Path) -> StandIn:
    """`airflow standalone`, whose pid is the session's id, with the home's marker."""
    return StandIn(table, SESSION, session=SESSION, environ={MARKER: str(home)})


def test_stop_terminates_everything_and_kills_what_outlives_the_grace_period(table, tmp_path: Path, capsys) -> None:
    (tmp_path / PID_FILE).write_text(str(SESSION))
    leader(table, tmp_path)
    polite = StandIn(table, 21, session=SESSION)
    stubborn = StandIn(table, 22, environ={MARKER: str(tmp_path)}, outlives_sigterm=True)
    bystander = StandIn(table, 23)

    assert standalone.stop(tmp_path, grace=0.3) == 3

    assert polite.signals == [signal.SIGTERM]
    assert stubborn.signals == [signal.SIGTERM, signal.SIGKILL], "SIGTERM once: a second cuts its shutdown short"
    assert bystander.signals == [] and list(table) == [23]
    said = capsys.readouterr().out
    assert said.startswith(f"stopped Airflow standalone of {tmp_path}: 3 processes (airflow component-")
    assert ", 1 of them killed after 0 s" in said
    assert not (tmp_path / PID_FILE).exists()


def test_a_normal_stop_takes_as_long_as_the_processes_take_not_the_grace_period(table, tmp_path: Path,
                                                                                capsys) -> None:
    (tmp_path / PID_FILE).write_text(str(SESSION))
    leader(table, tmp_path)
    for pid in range(51, 60):
        StandIn(table, pid, session=SESSION)

    started = time.monotonic()
    assert standalone.stop(tmp_path, grace=30) == 10
    assert time.monotonic() - started < 2 and table == {}
    assert "killed" not in capsys.readouterr().out


def test_a_stale_pid_file_whose_id_is_now_another_process_session_ends_nothing_of_it(table, tmp_path: Path,
                                                                                    capsys) -> None:
    """The id in standalone.pid was reused: that session's leader and members carry no marker of this home."""
    (tmp_path / PID_FILE).write_text(str(SESSION))
    unrelated = [StandIn(table, SESSION, session=SESSION), StandIn(table, 61, session=SESSION)]
    ours = StandIn(table, 62, environ={MARKER: str(tmp_path)})  # a process of the server that is still marked

    assert standalone.stop(tmp_path, grace=1) == 1

    assert [process.signals for process in unrelated] == [[], []] and ours.signals == [signal.SIGTERM]
    assert f"names process {SESSION}, which is not this home's Airflow: ignoring it" in capsys.readouterr().err


def test_a_worker_started_while_the_others_stop_is_stopped_too(table, tmp_path: Path) -> None:
    (tmp_path / PID_FILE).write_text(str(SESSION))
    leader(table, tmp_path)
    started: list[StandIn] = []
    StandIn(table, 31, session=SESSION, on_sigterm=lambda: started.append(StandIn(table, 32, session=SESSION)))

    standalone.stop(tmp_path, grace=5)

    assert [worker.signals for worker in started] == [[signal.SIGTERM]] and table == {}


def test_with_nothing_running_stop_says_so_and_clears_a_stale_pid_file(table, tmp_path: Path, capsys) -> None:
    (tmp_path / PID_FILE).write_text(str(SESSION))
    StandIn(table, 41)

    assert standalone.stop(tmp_path) == 0

    assert f"no Airflow standalone of {tmp_path} is running" in capsys.readouterr().out
    assert not (tmp_path / PID_FILE).exists() and table[41].signals == []


def test_the_admin_password_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    created = standalone.private_passwords_file(tmp_path, {})
    assert created == tmp_path / standalone.PASSWORDS_FILE and created.read_text() == ""
    assert created.stat().st_mode & 0o777 == 0o600
    created.write_text('{"admin": "secret"}\n')
    created.chmod(0o644)  # as an earlier Airflow left it
    assert standalone.private_passwords_file(tmp_path, {}).stat().st_mode & 0o777 == 0o600
    assert created.read_text() == '{"admin": "secret"}\n', "the password is kept"
