"""The unit tier's rule, kept by the suite itself: a unit test starts no process and reaches no other
machine. Code that runs in processes is tested in tests/scripts/; real Airflow, servers and browsers
in tests/e2e/. A unit test that breaks the rule fails with a message saying where it belongs, instead
of quietly making the fast tier slow and dependent on this machine."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

WHERE_IT_BELONGS = ("unit tests start no process and use no network: move this test to tests/scripts/ (code run "
                    "in processes) or tests/e2e/ (real Airflow, servers, browsers)")


class UnitTierViolation(AssertionError):
    """A unit test tried to start a process or reach another machine."""


def _asked_by_the_platform_module() -> bool:
    """The standard library's ``platform`` module runs ``uname -p`` and ``file -b`` to describe the
    machine, and libraries ask it at import (MLflow, croniter): no process of the test's own."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__") == "platform":
            return True
        frame = frame.f_back
    return False


def _refuse_subprocesses(original: Callable[..., Any]) -> Callable[..., Any]:
    def execute_child(self: subprocess.Popen, args: Any, *rest: Any, **kwargs: Any) -> Any:
        if not _asked_by_the_platform_module():
            raise UnitTierViolation(f"{WHERE_IT_BELONGS}; it started the process {args!r}")
        return original(self, args, *rest, **kwargs)

    return execute_child


def _refuse(name: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise UnitTierViolation(f"{WHERE_IT_BELONGS}; it called {name}{args!r}")

    return refused


def _is_local(address: Any) -> bool:
    """Loopback, or a Unix socket's path: nothing leaves this machine."""
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths (str or bytes)
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a name to resolve is a name on the network


def _guard_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    def connect(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            raise UnitTierViolation(f"{WHERE_IT_BELONGS}; it connected to {address!r}")
        return original(self, address)

    return connect


@pytest.fixture(autouse=True)
def no_process_and_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    # Popen._execute_child is where every subprocess call ends (run, check_output, Popen imported by
    # name, asyncio's subprocesses); the os functions are the ways around it.
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse_subprocesses(subprocess.Popen._execute_child))
    for name in ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp", "spawnv", "spawnve",
                 "spawnvp", "spawnvpe"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse(f"os.{name}"))
    monkeypatch.setattr(socket.socket, "connect", _guard_connect(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _guard_connect(socket.socket.connect_ex))
