"""A stand-in for ``smspark-submit``, the entry point of SageMaker's Spark processing image, for the
Spark twin (``.venv-spark``; ``make setup`` installs it there as ``bin/smspark-submit``).

It takes smspark-submit's own options (``--class``, ``--jars``, ``--py-files``, ``--files``,
``--spark-event-logs-s3-uri``, ``--local-spark-event-logs-dir``, ``-v``), then the app and its
arguments, as the image's ``src/smspark/cli.py`` does: a directory given to ``--jars``,
``--py-files`` or ``--files`` stands for its top-level files. Where the image configures YARN and
HDFS from the job's ``configuration.json`` and instance type, this runs the twin's ``spark-submit``:

- every ``spark-defaults`` property of ``<job>/processing/input/conf/configuration.json`` becomes a
  ``--conf`` (the other classifications configure daemons this twin does not run: one log line
  names them); the sizes of the driver and executors are this machine's, not the instance type's;
- ``--local-spark-event-logs-dir DIR`` turns Spark's event log on, into ``DIR``;
- on ``local[*]``, or, when the job's ``config/processingjobconfig.json`` asks for more than one
  instance, on a Spark standalone cluster on 127.0.0.1 with one worker per instance, started
  before the app and stopped after it whatever happens (a signal, a failure, this process killed);
- nothing listens off loopback (``SPARK_LOCAL_IP``, the driver's host and bind address, no UI);
- the exit status is the app's; when the app failed without writing ``output/message`` (the
  reason SageMaker reports), this writes one, as the image does.

The job's root (``/opt/ml`` in the image) is ``$SAGEMAKER_BASE_DIR``. Standard library only: it
runs in the twin, where the project's package is not installed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from urllib.parse import urlparse

LOOPBACK = "127.0.0.1"
CONTAINER_ROOT = "/opt/ml"
CONFIGURATION_FILE = Path("processing") / "input" / "conf" / "configuration.json"
PROCESSING_JOB_CONFIG = Path("config") / "processingjobconfig.json"
REASON_FILE = Path("output") / "message"  # where SageMaker reads a processing job's failure reason
MAX_REASON_BYTES = 1024  # what the image writes at most
# The classifications smspark accepts (src/smspark/config.py); only spark-defaults means something here.
KNOWN_CLASSIFICATIONS = (
    "core-site", "hadoop-env", "hadoop-log4j", "hive-env", "hive-log4j", "hive-exec-log4j", "hive-site",
    "spark-defaults", "spark-env", "spark-log4j", "spark-hive-site", "spark-metrics", "yarn-env", "yarn-site",
)
# Properties this machine decides: where the app runs and how big its JVMs are. On SageMaker smspark
# sizes them from the instance type; here they must fit a laptop, whatever the request's cluster is.
LOCAL_ONLY_PROPERTIES = (
    "spark.master", "spark.submit.deployMode", "spark.driver.memory", "spark.driver.cores",
    "spark.executor.memory", "spark.executor.cores", "spark.executor.instances", "spark.executor.memoryOverhead",
    "spark.cores.max", "spark.dynamicAllocation.enabled", "spark.ui.enabled", "spark.driver.host",
    "spark.driver.bindAddress", "spark.eventLog.enabled", "spark.eventLog.dir",
)
# Each loopback worker's memory and each executor's share of it: small enough for a laptop running tests
# beside them, too small for millions of rows. The machine's owner sets Spark's own variables for more
# (SPARK_WORKER_MEMORY, SPARK_EXECUTOR_MEMORY; spark-submit itself reads SPARK_DRIVER_MEMORY).
WORKER_MEMORY = "1g"
EXECUTOR_MEMORY = "512m"
_JVM_MEMORY = re.compile(r"([1-9][0-9]*)([kmgt]?)", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
CLUSTER_START_SECONDS = 180  # for the master and every worker to register (measured ~15 s on 2 busy cores)
STOP_GRACE_SECONDS = 10
_REGISTERED = re.compile(r"Registering worker ")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class SubmitError(Exception):
    """Bad input to the stand-in: one message, no traceback; the job fails with it as its reason."""


# ---------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class SubmitOptions:
    app: str
    app_arguments: tuple[str, ...] = ()
    main_class: str | None = None
    jars: str | None = None
    py_files: str | None = None
    files: str | None = None
    spark_event_logs_s3_uri: str | None = None
    local_spark_event_logs_dir: str | None = None
    verbose: bool = False


_VALUE_OPTIONS = {
    "--class": "main_class", "--jars": "jars", "--py-files": "py_files", "--files": "files",
    "--spark-event-logs-s3-uri": "spark_event_logs_s3_uri",
    "--local-spark-event-logs-dir": "local_spark_event_logs_dir",
}
_FLAG_OPTIONS = {"-v": "verbose", "--verbose": "verbose"}


def parse_arguments(argv: Sequence[str]) -> SubmitOptions:
    """smspark-submit's command line: its options, then the app; everything after the app is the
    app's, options included (click's ``allow_interspersed_args=False``)."""
    values: dict[str, str | bool] = {}
    remaining = list(argv)
    while remaining and remaining[0].startswith("-") and remaining[0] != "-":
        option = remaining.pop(0)
        if option == "--":
            break
        name, has_value, inline = option.partition("=")
        if name in _FLAG_OPTIONS and not has_value:
            values[_FLAG_OPTIONS[name]] = True
        elif name in _VALUE_OPTIONS:
            if has_value:
                values[_VALUE_OPTIONS[name]] = inline
            elif remaining:
                values[_VALUE_OPTIONS[name]] = remaining.pop(0)
            else:
                raise SubmitError(f"option {name} needs a value")
        else:
            known = ", ".join([*_VALUE_OPTIONS, "-v"])
            raise SubmitError(f"no such option: {name} (smspark-submit takes {known}; Spark settings go in "
                              "configuration.json's spark-defaults)")
    if not remaining:
        raise SubmitError("missing the app: smspark-submit [options] <app.py or app.jar> [app arguments]")
    app, *app_arguments = remaining
    return SubmitOptions(app=app, app_arguments=tuple(app_arguments), **values)  # type: ignore[arg-type]


def expand_files(value: str) -> str:
    """A ``--jars`` / ``--py-files`` / ``--files`` value as spark-submit takes it: a directory becomes
    its top-level files (what smspark's code includes, whatever its help says), ``s3://`` and
    ``file://`` URIs stay as they are, other paths must be absolute and exist."""
    if not value:
        raise SubmitError("an empty path was given to --jars, --py-files or --files")
    expanded = []
    for item in value.split(","):
        parsed = urlparse(item)
        if parsed.scheme in ("s3", "s3a", "file"):
            path = Path(parsed.path) if parsed.scheme == "file" else None
            if path is None or not path.is_dir():
                expanded.append(item)
                continue
        elif parsed.scheme:
            raise SubmitError(f"{item}: not a file, a directory or an s3:// URI")
        else:
            path = Path(item)
        if not path.is_absolute():
            raise SubmitError(f"file path {path} must be an absolute path to a file or directory")
        if not path.exists():
            raise SubmitError(f"file path {path} does not exist")
        if path.is_dir():
            found = sorted(str(child.resolve()) for child in path.iterdir() if child.is_file())
            if not found:
                raise SubmitError(f"found zero files in {path}")
            expanded += found
        else:
            expanded.append(str(path.resolve()))
    return ",".join(expanded)


# ---------------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class SparkConfiguration:
    properties: dict[str, str] = field(default_factory=dict)  # spark-defaults
    ignored: tuple[str, ...] = ()  # classifications that configure what this twin does not run


def read_configuration(path: Path) -> SparkConfiguration:
    """``configuration.json`` (EMR's classifications, a list or one of them), as smspark reads it."""
    if not path.is_file():
        return SparkConfiguration()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise SubmitError(f"{path.name} is not JSON: {error}") from None
    entries = document if isinstance(document, list) else [document]
    properties: dict[str, str] = {}
    ignored = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("Classification"), str):
            raise SubmitError(f"{path.name}: entry {index + 1} is not a {{\"Classification\": ..., \"Properties\": "
                              "{...}} object")
        classification = entry["Classification"]
        if classification not in KNOWN_CLASSIFICATIONS:
            raise SubmitError(f"{path.name}: {classification!r} is not a classification smspark knows "
                              f"({', '.join(KNOWN_CLASSIFICATIONS)})")
        entry_properties = entry.get("Properties", {})
        if not isinstance(entry_properties, dict) or not all(
                isinstance(key, str) and isinstance(value, str) for key, value in entry_properties.items()):
            raise SubmitError(f"{path.name}: the Properties of {classification} must map names to strings")
        if classification == "spark-defaults":
            properties.update(entry_properties)
        else:
            ignored.append(classification)
    return SparkConfiguration(properties, tuple(dict.fromkeys(ignored)))


def instance_count(base_dir: Path) -> int:
    """``ProcessingResources.ClusterConfig.InstanceCount`` of the job's processingjobconfig.json (1 without)."""
    path = base_dir / PROCESSING_JOB_CONFIG
    if not path.is_file():
        return 1
    try:
        count = json.loads(path.read_text(encoding="utf-8"))["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
    except (ValueError, KeyError, TypeError):
        raise SubmitError(f"{path} holds no ProcessingResources.ClusterConfig.InstanceCount") from None
    if not isinstance(count, int) or count < 1:
        raise SubmitError(f"{path}: InstanceCount must be a positive integer, not {count!r}")
    return count


# ---------------------------------------------------------------------------------- the command


@dataclass(frozen=True)
class Placement:
    """Where the app runs: ``local[*]``, or a loopback standalone master with ``workers`` workers."""

    master: str
    workers: int = 0
    cores_per_worker: int = 0
    worker_memory: str = WORKER_MEMORY
    executor_memory: str = EXECUTOR_MEMORY


def memory_bytes(name: str, value: str) -> int:
    match = _JVM_MEMORY.fullmatch(value.strip())
    if match is None:
        raise SubmitError(f"{name}={value!r} is not a JVM memory size such as 512m or 4g")
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()]


def placement_for(instances: int, master_url: str = "", cpus: int | None = None,
                  environ: Mapping[str, str] | None = None) -> Placement:
    if instances <= 1:
        return Placement("local[*]")
    environ = os.environ if environ is None else environ
    cores = max(1, (cpus or os.cpu_count() or 1) // instances)
    worker = environ.get("SPARK_WORKER_MEMORY", "").strip() or WORKER_MEMORY
    executor = environ.get("SPARK_EXECUTOR_MEMORY", "").strip() or EXECUTOR_MEMORY
    if memory_bytes("SPARK_EXECUTOR_MEMORY", executor) > memory_bytes("SPARK_WORKER_MEMORY", worker):
        # a worker never launches an executor larger than itself: the app would wait for one forever
        raise SubmitError(f"SPARK_EXECUTOR_MEMORY={executor} does not fit a loopback worker of "
                          f"SPARK_WORKER_MEMORY={worker}: raise the worker's or lower the executor's")
    return Placement(master_url, workers=instances, cores_per_worker=cores, worker_memory=worker,
                     executor_memory=executor)


def spark_properties(configuration: SparkConfiguration, placement: Placement,
                     event_log_dir: Path | None) -> tuple[dict[str, str], list[str]]:
    """The ``--conf``s of the submit: the job's spark-defaults, then what this machine decides; and
    the job's properties that this machine replaced (said in the log)."""
    local = {"spark.ui.enabled": "false", "spark.driver.host": LOOPBACK, "spark.driver.bindAddress": LOOPBACK}
    if placement.workers:
        local.update({
            "spark.executor.cores": str(placement.cores_per_worker), "spark.executor.memory": placement.executor_memory,
            "spark.cores.max": str(placement.workers * placement.cores_per_worker),
            "spark.dynamicAllocation.enabled": "false",
            # every executor registered before the first task, so the work spreads as on the cluster
            "spark.scheduler.minRegisteredResourcesRatio": "1.0",
            "spark.scheduler.maxRegisteredResourcesWaitingTime": f"{CLUSTER_START_SECONDS}s",
        })
    if event_log_dir is not None:
        local.update({"spark.eventLog.enabled": "true", "spark.eventLog.dir": event_log_dir.as_uri()})
    replaced = sorted(key for key in configuration.properties
                      if key in LOCAL_ONLY_PROPERTIES and configuration.properties[key] != local.get(key))
    kept = {key: value for key, value in configuration.properties.items() if key not in LOCAL_ONLY_PROPERTIES}
    return {**kept, **local}, replaced


def submit_command(spark_home: Path, options: SubmitOptions, placement: Placement,
                   properties: Mapping[str, str]) -> list[str]:
    """The twin's spark-submit, in client mode as the image runs it (the driver on this host)."""
    command = [str(spark_home / "bin" / "spark-submit"), "--master", placement.master, "--deploy-mode", "client"]
    if options.verbose:
        command.append("--verbose")
    if options.main_class:
        command += ["--class", options.main_class]
    for option, value in (("--jars", options.jars), ("--files", options.files), ("--py-files", options.py_files)):
        if value:
            command += [option, expand_files(value)]
    for key, value in properties.items():
        command += ["--conf", f"{key}={value}"]
    return [*command, options.app, *options.app_arguments]


# ---------------------------------------------------------------------------------- processes


def find_java(environ: Mapping[str, str]) -> Path | None:
    """The ``java`` Spark's launch scripts use: ``$JAVA_HOME/bin/java``, else ``java`` on the PATH."""
    java_home = environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        return candidate if os.access(candidate, os.X_OK) else None
    found = shutil.which("java", path=environ.get("PATH", os.defpath))
    return Path(found) if found else None


def twin_spark_home() -> Path:
    """SPARK_HOME of the twin: the installed ``pyspark`` package (it holds ``bin/`` and ``jars/``)."""
    return Path(sysconfig.get_paths()["purelib"]) / "pyspark"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """In a child before exec: SIGTERM when this stand-in dies, even by SIGKILL, so no JVM outlives it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _start(command: list[str], env: Mapping[str, str], log_path: Path | None = None) -> subprocess.Popen[bytes]:
    output = log_path.open("wb") if log_path else None
    try:
        return subprocess.Popen(command, env=dict(env), stdout=output, stderr=subprocess.STDOUT if output else None,
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    finally:
        if output:
            output.close()


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL after a grace period, to every process still running; then reap them."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def loopback_cluster(spark_home: Path, placement: Placement, scratch: Path, env: Mapping[str, str],
                     log: Callable[[str], None]) -> Iterator[str]:
    """A Spark standalone master and the placement's workers on 127.0.0.1; yields the master's URL once
    every worker registered, and stops them all on the way out, however the block ends."""
    workers, cores, memory = placement.workers, placement.cores_per_worker, placement.worker_memory
    scratch.mkdir(parents=True, exist_ok=True)
    spark_class = str(spark_home / "bin" / "spark-class")
    port = free_port()
    url = f"spark://{LOOPBACK}:{port}"
    master_log = scratch / "master.log"
    processes = [_start([spark_class, "org.apache.spark.deploy.master.Master", "--host", LOOPBACK, "--port",
                         str(port), "--webui-port", str(free_port())], env, master_log)]
    try:
        for index in range(1, workers + 1):
            work_dir = scratch / f"worker-{index}"
            work_dir.mkdir(exist_ok=True)
            processes.append(_start([spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", LOOPBACK,
                                     "--cores", str(cores), "--memory", memory, "--webui-port",
                                     str(free_port()), "--work-dir", str(work_dir)],
                                    env, scratch / f"worker-{index}.log"))
        deadline = time.monotonic() + CLUSTER_START_SECONDS
        while True:
            registered = len(_REGISTERED.findall(master_log.read_text(errors="replace"))) if master_log.exists() else 0
            if registered >= workers:
                break
            ended = [process.args[1] for process in processes if process.poll() is not None]  # type: ignore[index]
            if ended or time.monotonic() > deadline:
                raise SubmitError(f"the loopback Spark cluster did not start: {registered} of {workers} workers "
                                  f"registered{' (ended: ' + ', '.join(map(str, ended)) + ')' if ended else ''}; "
                                  f"its logs are in {scratch}")
            time.sleep(0.5)
        log(f"loopback Spark cluster: master {url}, {workers} workers of {cores} core(s) and {memory} "
            f"(logs in {scratch})")
        yield url
    finally:
        _stop(processes[1:])  # workers first: a master stopping before them makes them retry for a while
        _stop(processes[:1])


class _Terminated(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    raise _Terminated(signum)


# ---------------------------------------------------------------------------------- main


def write_reason(base_dir: Path, message: str, overwrite: bool = True) -> None:
    """The failure reason SageMaker reports, unless the app wrote its own (``overwrite=False``)."""
    path = base_dir / REASON_FILE
    if path.is_file() and path.stat().st_size and not overwrite:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(message[:MAX_REASON_BYTES], encoding="utf-8")


def _log(message: str) -> None:
    print(f"smspark-submit (local twin): {message}", file=sys.stderr, flush=True)


def _run(options: SubmitOptions, base_dir: Path, environ: Mapping[str, str]) -> int:
    if find_java(environ) is None:
        raise SubmitError("no Java: set JAVA_HOME or put java on the PATH (make setup installs Debian's "
                          "openjdk-17-jre-headless as root)")
    spark_home = twin_spark_home()
    if not (spark_home / "bin" / "spark-submit").is_file():
        raise SubmitError(f"no Spark at {spark_home}: this is not the Spark twin's interpreter ({sys.executable})")
    configuration = read_configuration(base_dir / CONFIGURATION_FILE)
    if configuration.ignored:
        _log(f"ignored locally, no daemon here reads them: the classifications {', '.join(configuration.ignored)}")
    if options.spark_event_logs_s3_uri:
        _log(f"ignored locally: --spark-event-logs-s3-uri {options.spark_event_logs_s3_uri} (the request's event-log "
             "output is stored from --local-spark-event-logs-dir)")
    event_log_dir = Path(options.local_spark_event_logs_dir) if options.local_spark_event_logs_dir else None
    if event_log_dir is not None:
        event_log_dir.mkdir(parents=True, exist_ok=True)
    scratch = base_dir / "spark-local"
    env = {**environ, "SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": LOOPBACK,
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SPARK_LOCAL_DIRS": str(scratch / "tmp"), "SPARK_NO_DAEMONIZE": "true"}
    instances = instance_count(base_dir)
    with contextlib.ExitStack() as stack:
        placement = placement_for(instances, environ=env)
        if placement.workers:
            master_url = stack.enter_context(loopback_cluster(spark_home, placement, scratch / "cluster", env, _log))
            placement = replace(placement, master=master_url)
        properties, replaced = spark_properties(configuration, placement, event_log_dir)
        if replaced:
            _log(f"replaced locally (this machine's sizes and loopback): {', '.join(replaced)}")
        command = submit_command(spark_home, options, placement, properties)
        _log(f"running on {placement.master}: {' '.join(command[1:5])} ... {options.app}")
        submit = _start(command, env)
        stack.callback(_stop, [submit])
        return submit.wait()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    base_dir = Path(os.environ.get("SAGEMAKER_BASE_DIR", CONTAINER_ROOT))
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        options = parse_arguments(arguments)
        code = _run(options, base_dir, os.environ)
    except SubmitError as error:
        _log(str(error))
        write_reason(base_dir, f"Algorithm Error: {error}")
        return 1
    except _Terminated as stopped:
        _log(f"stopped by {stopped}")
        return 128 + stopped.signum
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code != 0:
        write_reason(base_dir, f"Algorithm Error: spark failed with a non-zero exit code {code} ({options.app})",
                     overwrite=False)
    return code


if __name__ == "__main__":
    sys.exit(main())
