"""A throwaway PostgreSQL cluster for the tests: ``initdb`` into a temporary folder, ``pg_ctl`` on a
loopback port with password authentication, stopped and removed afterwards.

PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user (which the
Debian package creates) and its commands run through ``runuser``. ``make test`` installs the server
(``make test-deps``); where it is absent the tests skip with the reason, except where
``CHURN_TESTS_REQUIRE_POSTGRES`` is set (CI), where they fail.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.e2e.moto_server import free_port

REQUIRE_POSTGRES = "CHURN_TESTS_REQUIRE_POSTGRES"
SERVER_USER = "postgres"  # who owns the cluster when the tests run as root


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian's layout), or the one on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def require_server() -> Path:
    binaries = server_binaries()
    if binaries is None:
        message = "no PostgreSQL server is installed (`make test-deps` installs it as root)"
        if os.environ.get(REQUIRE_POSTGRES):
            pytest.fail(f"{message}, and {REQUIRE_POSTGRES} says this machine must have it")
        pytest.skip(message)
    return binaries


class PostgresCluster:
    """One cluster, one superuser with a password, listening on 127.0.0.1 only."""

    def __init__(self, user: str = "churn", password: str = "Pg-s3cret-for-churn", database: str = "crm"):
        self.binaries = require_server()
        self.user, self.password, self.database = user, password, database
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        # /tmp rather than pytest's folder: the postgres user must reach it (pytest's is root's, mode 700)
        self.folder = Path(tempfile.mkdtemp(prefix="churn-postgres-"))
        self.data = self.folder / "data"
        password_file = self.folder / "password"
        password_file.write_text(self.password + "\n")
        if self.as_root:
            shutil.chown(self.folder, SERVER_USER)
            shutil.chown(password_file, SERVER_USER)
        self._run("initdb", "-D", str(self.data), "-U", user, "--auth=scram-sha-256",
                  f"--pwfile={password_file}", "--encoding=UTF8", "--locale=C")
        password_file.unlink()
        self.start()

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.binaries / program), *args]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if completed.returncode != 0:
            raise RuntimeError(f"{program} failed: {completed.stdout[-2000:]}{completed.stderr[-2000:]}")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w", "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def uri(self, database: str | None = None) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database or self.database}"

    def connect(self, database: str = "postgres"):
        import psycopg

        return psycopg.connect(self.uri(database), autocommit=True)

    def airflow_connection(self) -> str:
        """The connection as Airflow reads it from an ``AIRFLOW_CONN_*`` variable (password inside)."""
        return self.uri()
