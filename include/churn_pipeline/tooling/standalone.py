"""``make standalone`` and ``make stop``: Airflow's all-in-one server for this project, started so that
it can be stopped whole.

    python -m churn_pipeline.tooling.standalone start     # in the foreground; Ctrl-C stops every process of it
    python -m churn_pipeline.tooling.standalone stop      # from another shell

``airflow standalone`` starts its scheduler, dag-processor, API server and triggerer as a bare
``airflow`` looked up on ``PATH``; started as ``.venv/bin/airflow`` from a shell whose ``PATH`` lacks
``.venv/bin``, all four die at once. So the interpreter's own folder goes first on ``PATH``.
Stopping it is the other trap: a SIGTERM to ``airflow standalone`` alone leaves the scheduler's
workers, the API server and the triggerer running. So it runs in a session of its own, every process
of which carries a marker in its environment, and stopping signals every process in that session or
carrying the marker (SIGTERM, then SIGKILL after a grace period). The session's id is kept in
``$AIRFLOW_HOME/standalone.pid``. Processes are found through psutil, so this works wherever psutil
does (Linux and macOS), not only where ``/proc`` exists.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

MARKER = "CHURN_STANDALONE_HOME"  # every process of the server has it, set to the Airflow home
PID_FILE = "standalone.pid"
GRACE_SECONDS = 30


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", Path.cwd())).resolve()


def _in_session(pid: int, session: int | None) -> bool:
    if session is None:
        return False
    try:
        return os.getsid(pid) == session
    except OSError:  # gone meanwhile, or a system that will not tell
        return False


def _processes_of(home: Path, session: int | None) -> list[psutil.Process]:
    """Every running process of the server: in its session, or carrying this home's marker (a process
    that left the session keeps the marker; one that rewrote its title to ``airflow worker -- ...``
    may have overwritten its environment, but not its session). The caller is excluded, and so are
    zombies: they have ended, and only their parent can clear them."""
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if _in_session(process.pid, session) or process.environ().get(MARKER) == str(home):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # gone meanwhile, or another user's
            continue
    return found


def _signal_all(processes: Sequence[psutil.Process], signum: int) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):  # psutil also refuses a pid reused meanwhile
            process.send_signal(signum)


def stop(home: Path, grace: float = GRACE_SECONDS, quiet: bool = False) -> int:
    """Stop every process of this home's server; the number that were running."""
    pid_file = home / PID_FILE
    session = int(pid_file.read_text()) if pid_file.is_file() else None
    running = _processes_of(home, session)
    if not running:
        pid_file.unlink(missing_ok=True)
        if not quiet:
            print(f"no Airflow standalone of {home} is running")
        return 0
    deadline = time.monotonic() + grace
    left = running
    while left and time.monotonic() < deadline:
        _signal_all(left, signal.SIGTERM)
        psutil.wait_procs(left, timeout=max(0.0, min(0.5, deadline - time.monotonic())))
        left = _processes_of(home, session)  # workers started while the others were stopping, too
    if left:
        print(f"{len(left)} processes still running after {grace:.0f} s: killing them")
        while left:
            _signal_all(left, signal.SIGKILL)
            psutil.wait_procs(left, timeout=0.2)
            left = _processes_of(home, session)
    pid_file.unlink(missing_ok=True)
    print(f"stopped Airflow standalone of {home}")
    return len(running)


def start(home: Path) -> int:
    """Run ``airflow standalone`` in the foreground until it ends or is interrupted, then stop it whole."""
    pid_file = home / PID_FILE
    if _processes_of(home, int(pid_file.read_text()) if pid_file.is_file() else None):
        print(f"Airflow standalone of {home} is already running; stop it with `make stop`", file=sys.stderr)
        return 1
    bin_dir = Path(sys.executable).parent
    environment = {**os.environ, MARKER: str(home), "AIRFLOW_HOME": str(home),
                   "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])}
    port = environment.get("AIRFLOW__API__PORT", "8080")
    print(f"starting Airflow standalone on http://localhost:{port} (home {home}); the login is in "
          f"{home / 'simple_auth_manager_passwords.json.generated'} once it is up.\n"
          "Stop it with Ctrl-C here, or `make stop` from another shell.", flush=True)
    server = subprocess.Popen([str(bin_dir / "airflow"), "standalone"], env=environment, cwd=home,
                              start_new_session=True)
    pid_file.write_text(str(server.pid))  # the session's id: start_new_session makes it the leader

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)  # also when started in the background, which ignores Ctrl-C
    try:
        ended = server.wait()
        return 0 if ended < 0 else ended  # < 0: ended by a signal, as `make stop` ends it
    except KeyboardInterrupt:
        print("\nstopping Airflow standalone ...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stopping short
        stop(home, quiet=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m churn_pipeline.tooling.standalone",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("start", "stop"))
    args = parser.parse_args(argv)
    home = airflow_home()
    if args.action == "start":
        return start(home)
    stop(home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
