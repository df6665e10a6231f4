"""A local job's process, seen from outside: whether it still runs, stopping it with its children,
what it ran to, and what SageMaker's metric definitions would scrape from its log
(``churn_pipeline.local.runner`` starts it and keeps its description).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
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
    usage: JobUsage | None = None  # None where the job recorded none (stopped before it could)


# Runs the job as its child and records the peak resident memory and CPU time of the job's process
# tree as it ends. Measured from a small process of its own, not from the runner: a child forked from
# the Airflow task inherits the task's memory high-water mark across exec, so wait4 in the runner would
# report at least the task's size for every job. ru_maxrss is KiB on Linux, bytes on macOS.
USAGE_RECORDER = (
    "import json, os, resource, signal, sys\n"
    "usage_file, command = sys.argv[1], sys.argv[2:]\n"
    # a stop signals the whole tree: the job decides how it ends, and the recorder outlives it to report
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "pid = os.posix_spawnp(command[0], command, os.environ, setsigdef=(signal.SIGTERM,))\n"
    "_, status = os.waitpid(pid, 0)\n"
    "used = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "scale = 2**20 if sys.platform == 'darwin' else 1024\n"
    "with open(usage_file + '.partial', 'w') as out:\n"
    "    json.dump({'PeakRssMB': round(used.ru_maxrss / scale, 1),\n"
    "               'CpuSeconds': round(used.ru_utime + used.ru_stime, 2)}, out)\n"
    "os.replace(usage_file + '.partial', usage_file)\n"
    "code = os.waitstatus_to_exitcode(status)\n"
    "sys.exit(code if code >= 0 else 128 - code)\n"
)


@dataclass(frozen=True)
class JobUsage:
    peak_rss_mb: float
    cpu_seconds: float

    def as_description(self) -> dict[str, float]:
        return {"PeakRssMB": self.peak_rss_mb, "CpuSeconds": self.cpu_seconds}


def read_usage(path: Path) -> JobUsage | None:
    """What USAGE_RECORDER wrote as the job ended; None if it wrote nothing (the job was killed with it)."""
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        return JobUsage(float(recorded["PeakRssMB"]), float(recorded["CpuSeconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def scrape_metrics(log_text: str, definitions: list[dict[str, str]]) -> list[dict[str, Any]]:
    """What SageMaker's metric definitions would scrape from the log: the last value of each."""
    found = []
    for definition in definitions:
        values = re.findall(definition["Regex"], log_text)
        if values:
            found.append({"MetricName": definition["Name"], "Value": float(values[-1]), "Timestamp": now()})
    return found
