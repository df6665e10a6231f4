"""A local job's process, seen from outside: whether it still runs, stopping it with its children,
what it ran to, and what SageMaker's metric definitions would scrape from its log
(``churn_pipeline.local.runner`` starts it and keeps its description).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

STOP_GRACE_SECONDS = 10  # SIGTERM first, SIGKILL after this, as SageMaker does when it stops a job
MAX_RUNTIME_REASON = "MaxRuntimeExceeded"


def now() -> str:
    """A job description's timestamp: ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_started(pid: int) -> float | None:
    """When the process ``pid`` started (seconds since the epoch), None when there is none or it has
    ended (a zombie has ended): with the pid, the process's identity, which a reused pid does not share."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def stop_process_tree(pid: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to a process and all its descendants (the toolkit runs the script as its child), then
    SIGKILL to whatever still runs after ``grace`` seconds."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=grace)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


@dataclass(frozen=True)
class ScriptRun:
    exit_code: int
    log_text: str
    ran_out_of_time: bool  # stopped at MaxRuntimeInSeconds
    # The job's peak resident memory and CPU time, its process tree's, from wait4; None when another
    # process reaped it first (a job finished by whoever described it after its task was lost)
    usage: JobUsage | None = None


@dataclass(frozen=True)
class JobUsage:
    peak_rss_mb: float
    cpu_seconds: float

    def as_description(self) -> dict[str, float]:
        return {"PeakRssMB": round(self.peak_rss_mb, 1), "CpuSeconds": round(self.cpu_seconds, 2)}


def reap(process: subprocess.Popen[bytes]) -> JobUsage | None:
    """Reap the job's process if it has ended, keeping its resource usage, which Popen.poll discards.

    Linux's wait4 gives the child's usage with that of every descendant it waited for (the job under
    its recording shell), and ru_maxrss is the largest of them, in KiB (bytes on macOS). Returns None
    while it runs; sets ``process.returncode`` once it has ended.
    """
    if process.returncode is not None:
        return None
    try:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
    except ChildProcessError:  # reaped elsewhere (Popen.poll in the max-runtime timer): usage is lost
        process.poll()
        return None
    if pid == 0:
        return None
    process.returncode = os.waitstatus_to_exitcode(status)
    rss_mb = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
    return JobUsage(rss_mb, usage.ru_utime + usage.ru_stime)


def scrape_metrics(log_text: str, definitions: list[dict[str, str]]) -> list[dict[str, Any]]:
    """What SageMaker's metric definitions would scrape from the log: the last value of each."""
    found = []
    for definition in definitions:
        values = re.findall(definition["Regex"], log_text)
        if values:
            found.append({"MetricName": definition["Name"], "Value": float(values[-1]), "Timestamp": now()})
    return found
