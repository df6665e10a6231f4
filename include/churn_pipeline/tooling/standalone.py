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
carrying the marker: SIGTERM once to each, then SIGKILL to what is left after a grace period. The
session's id is kept in ``$AIRFLOW_HOME/standalone.pid``, and trusted only while the process of that
id still carries this home's marker: a stale file whose id now belongs to another process session ends
nothing. Processes are found through psutil, so this works wherever psutil does (Linux and macOS), not
only where ``/proc`` exists.

The API server listens on 127.0.0.1 unless ``AIRFLOW__API__HOST`` says otherwise (Airflow's default,
0.0.0.0, offers the UI to the whole network), and the generated admin password file is readable by its
owner only.
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
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"  # Airflow's name for it in the home
GRACE_SECONDS = 15  # normally all are gone in under 10 s; one still running then is stuck


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", Path.cwd())).resolve()


def _in_session(pid: int, session: int | None) -> bool:
    if session is None:
        return False
    try:
        return os.getsid(pid) == session
    except OSError:  # gone meanwhile, or a system that will not tell
        return False


def _marked(process: psutil.Process, home: Path) -> bool:
    try:
        return process.environ().get(MARKER) == str(home)
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # gone, or another user's: not ours
        return False


def recorded_session(home: Path) -> int | None:
    """The session id in the pid file while it is still this home's server: the process of that id
    (the session's leader, ``airflow standalone``) carries the marker. A stale id, reused by an unrelated
    process since, is ignored, and said so."""
    pid_file = home / PID_FILE
    try:
        session = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        leader = psutil.Process(session)
    except psutil.NoSuchProcess:
        return None
    if _marked(leader, home):
        return session
    print(f"{pid_file} names process {session}, which is not this home's Airflow: ignoring it", file=sys.stderr)
    return None


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
    session = recorded_session(home)
    running = _processes_of(home, session)
    if not running:
        pid_file.unlink(missing_ok=True)
        if not quiet:
            print(f"no Airflow standalone of {home} is running")
        return 0
    names = {process.pid: _name(process) for process in running}  # while they still run
    started = time.monotonic()
    deadline = started + grace
    signalled: set[int] = set()
    left = running
    while left and time.monotonic() < deadline:
        # SIGTERM once per process: a second one cuts short the shutdown the first began (uvicorn and
        # the scheduler's supervisor then wait for their children again); new ones, started meanwhile, get theirs
        _signal_all([process for process in left if process.pid not in signalled], signal.SIGTERM)
        signalled.update(process.pid for process in left)
        psutil.wait_procs(left, timeout=max(0.0, min(0.5, deadline - time.monotonic())))
        left = _processes_of(home, session)
    killed = sorted(names.get(process.pid) or _name(process) or str(process.pid) for process in left)
    while left:
        _signal_all(left, signal.SIGKILL)
        psutil.wait_procs(left, timeout=0.2)
        left = _processes_of(home, session)
    pid_file.unlink(missing_ok=True)
    kinds = sorted(set(names.values()) - {""})
    print(f"stopped Airflow standalone of {home}: {len(running)} processes ({', '.join(kinds)}) in "
          f"{time.monotonic() - started:.1f} s" + (f", {len(killed)} of them killed after {grace:.0f} s "
                                                   f"({', '.join(killed)})" if killed else ""))
    return len(running)


def _name(process: psutil.Process) -> str:
    """What a process of the server is, as ``ps`` shows it: ``airflow scheduler``, ``airflow api-server`` ..."""
    try:
        words = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""
    for index, word in enumerate(words):
        if word.endswith("airflow") and index + 1 < len(words):
            return f"airflow {words[index + 1]}"
        if word.startswith("airflow "):  # a title the process set itself: "airflow scheduler -- DagFileProcessor"
            return " ".join(word.split()[:2])
    return Path(words[0]).name if words else ""


def private_passwords_file(home: Path, environment: dict[str, str]) -> Path:
    """The admin password file, created empty (Airflow fills it) or narrowed to its owner alone: Airflow
    writes the password in plain text, into a file that its umask would leave readable to everyone."""
    path = Path(environment.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE") or home / PASSWORDS_FILE)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    path.chmod(0o600)
    return path


def start(home: Path) -> int:
    """Run ``airflow standalone`` in the foreground until it ends or is interrupted, then stop it whole."""
    pid_file = home / PID_FILE
    if _processes_of(home, recorded_session(home)):
        print(f"Airflow standalone of {home} is already running; stop it with `make stop`", file=sys.stderr)
        return 1
    bin_dir = Path(sys.executable).parent
    environment = {"AIRFLOW__API__HOST": "127.0.0.1", **os.environ, MARKER: str(home), "AIRFLOW_HOME": str(home),
                   "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])}
    port = environment.get("AIRFLOW__API__PORT", "8080")
    host = environment["AIRFLOW__API__HOST"]
    passwords = private_passwords_file(home, environment)
    dags = environment.get("AIRFLOW__CORE__DAGS_FOLDER", str(home / "dags"))
    print(f"starting Airflow standalone on http://{'localhost' if host == '127.0.0.1' else host}:{port} "
          f"(Airflow home {home}, DAGs {dags}); the login is in {passwords} once it is up.\n"
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
