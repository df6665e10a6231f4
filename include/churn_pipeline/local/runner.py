"""Run SageMaker ``CreateProcessingJob`` / ``CreateTrainingJob`` / ``CreateModel`` +
``CreateTransformJob`` request dicts on this machine.

The runner honours the SageMaker container contract with the image twin (``.venv-container``, the
scikit-learn image's own Python environment; see ``churn_pipeline.local.image_twin``) instead of a
container. Inputs are copied from the object store into a per-job workspace that stands in for
``/opt/ml`` (``SAGEMAKER_BASE_DIR``); the job's process gets the image's environment plus the
request's ``Environment``, not the worker's; outputs are stored only when it exits 0; and a job
description with status, times and failure reason is kept at ``<local root>/jobs/<job name>/
description.json`` in the shape of SageMaker's ``Describe*Job`` answers.

- Processing jobs run the request's ``ContainerEntrypoint + ContainerArguments``, ``python3`` being
  the twin's, as the image's ``PATH`` makes it.
- Processing jobs of SageMaker's Spark processing image run in the Spark twin (``.venv-spark``; see
  ``churn_pipeline.local.spark_twin``), whose ``bin`` holds the ``smspark-submit`` stand-in: their
  ``s3://`` arguments become the ``file://`` locations of those objects in the store (the twin's
  Spark has no S3A), and their event-log output, continuous on SageMaker, is stored at the end with
  the others. Every processing job gets ``config/processingjobconfig.json`` and
  ``resourceconfig.json``, as SageMaker writes them.
- Training jobs run the image's entry point, the ``sagemaker-training`` toolkit's ``train``, over a
  workspace laid out as SageMaker lays out ``/opt/ml``: ``input/config/{hyperparameters,
  inputdataconfig,resourceconfig}.json`` (the host is this machine, so the toolkit's host check
  passes), ``input/data/<channel>/``, empty ``code/``, ``model/`` and ``output/``. The toolkit then
  passes the hyperparameters to the script and writes the failure file as it does on SageMaker. The
  one translation: ``sagemaker_submit_directory`` names the code archive in the local store.
- Transform jobs serve the model as the image does, through the model's own inference module
  (``model_fn`` / ``input_fn`` / ``predict_fn`` / ``output_fn``) in the twin, with Batch Transform's
  splitting, batching, joining and filtering around it (``churn_pipeline.local.transform``). Their
  Model, created from a registered package, is recorded at ``<local root>/models/<name>/``.
- ``StoppingCondition.MaxRuntimeInSeconds`` holds: a job still running then is stopped (its process
  tree gets SIGTERM, then SIGKILL) and recorded ``Stopped`` with ``MaxRuntimeExceeded``.
- A job outlives its task, as on SageMaker: its process writes to its log file (not to a pipe of
  the task's) and records its exit code when it ends, and its description records both processes'
  identities (pid and start time, so a reused pid is not mistaken for them). When the task's
  process is lost while the job runs, the next attempt finds the job ``InProgress`` and awaits it;
  once the job's process has ended, whoever describes it next finishes it as its task would have
  (outputs stored, status from the exit code). Only a job whose own process is gone without an exit
  code (killed with its task's process group) is ``Failed``, and the next attempt starts ``-r2``.

Without the twin (no Python 3.12 on this machine) jobs run in the project's environment, training
through a stand-in for the toolkit, and every job log says so first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churn_pipeline.domain.sagemaker_api import COMPLETED, FAILED, IN_PROGRESS, STOPPED, JobKind
from churn_pipeline.domain.text import shown
from churn_pipeline.local.container import (
    CONTAINER_ROOT,
    IMAGE_ENVIRONMENT,
    PASSED_THROUGH,
    SYSTEM_PATH,
    TRAINING_TOOLKIT,
    container_env,
    in_workspace,
    local_store_uri,
    remove_checksum_files,
    resolvable_hostname,
    spark_container_env,
    stage,
    stage_training_workspace,
    training_command,
    write_processing_config,
)
from churn_pipeline.local.image_twin import JobPython, job_python
from churn_pipeline.local.job_process import (
    MAX_RUNTIME_REASON,
    STOP_GRACE_SECONDS,
    USAGE_RECORDER,
    ScriptRun,
    now,
    process_started,
    read_usage,
    scrape_metrics,
    stop_process_tree,
)
from churn_pipeline.local.spark_twin import TWIN_DIR as SPARK_TWIN_DIR
from churn_pipeline.local.spark_twin import (
    TWIN_IMAGE_TAG,
    find_java,
    image_tag,
    is_spark_processing_image,
    spark_job_python,
)
from churn_pipeline.services.archives import deterministic_tar
from churn_pipeline.services.objectstore import LocalObjectStore, atomic_write, upload_tree

# Importers of this module find here what it used to define itself.
__all__ = [
    "CONTAINER_ROOT", "IMAGE_ENVIRONMENT", "MAX_RUNTIME_REASON", "PASSED_THROUGH", "STOP_GRACE_SECONDS",
    "SYSTEM_PATH", "TRAINING_TOOLKIT", "LocalJobRunner", "ScriptRun", "resolvable_hostname", "scrape_metrics",
    "stop_process_tree",
]


_ECHO_SECONDS = 0.2  # how often the task copies new lines of the job's log into its own
# The job's process as started: the command, then its exit code recorded atomically beside its log
_RECORDING_EXIT = ["/bin/sh", "-c", 'code=0; "$@" || code=$?; echo "$code" > "$0.partial" && mv "$0.partial" "$0"; '
                   'exit "$code"']


def _started(pid: int) -> float | None:
    return process_started(pid)


def _same_process(pid: Any, started: Any) -> bool:
    """Whether ``pid`` still names the process recorded with start time ``started`` (not a reuse)."""
    if not isinstance(pid, int):
        return False
    current = process_started(pid)
    return current is not None and (started is None or abs(current - float(started)) < 0.01)


class LocalJobRunner:
    """Executes job requests against a ``LocalObjectStore``; one workspace and description per job."""

    def __init__(self, store: LocalObjectStore, log: Callable[[str], None] = print, python: JobPython | None = None):
        self.store = store
        self.jobs_root = store.root / "jobs"
        self.log = log
        self.python = python or job_python()
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ descriptions

    def _description_path(self, name: str) -> Path:
        return self.jobs_root / name / "description.json"

    def _save(self, description: dict[str, Any]) -> None:
        name = next(description[kind.name_field] for kind in JobKind if kind.name_field in description)
        atomic_write(self._description_path(name), json.dumps(description, indent=2, sort_keys=True).encode())

    def describe(self, kind: JobKind, name: str) -> dict[str, Any] | None:
        """The job's description, or None if no such job. A job whose process died is ``Failed``."""
        path = self._description_path(name)
        if not path.is_file():
            return None
        description = json.loads(path.read_text(encoding="utf-8"))
        owner = description.get("LocalProcess", {})
        if (description[kind.status_field] != IN_PROGRESS or owner.get("host") != socket.gethostname()
                or _same_process(owner.get("pid"), owner.get("started"))):
            return description  # finished, elsewhere, or its task is still with it
        if _same_process(owner.get("job_pid"), owner.get("job_started")):  # the task is lost, the job runs on
            return self._stop_if_out_of_time(kind, description)
        workspace = self.jobs_root / name / "ml"
        exit_file = self._exit_file(name)
        if exit_file.is_file():  # the job ended after its task was lost: finish it as its task would have
            self.log(f"{name} ended after the task that started it was lost; storing what it left")
            log_text = self._log_path(name).read_text(encoding="utf-8", errors="replace")
            run = ScriptRun(int(exit_file.read_text().strip() or 1), log_text, ran_out_of_time=False,
                            usage=read_usage(self._usage_file(name)))
            return self._finish(description, kind, workspace, run)
        description[kind.status_field] = FAILED
        description["FailureReason"] = "the process running this job ended before the job did (killed or crashed)"
        description[kind.end_time_field] = now()
        self._save(description)
        return description

    def stop(self, kind: JobKind, name: str, reason: str) -> dict[str, Any]:
        """``Stop*Job``: end the job's process tree, if it still runs, and record it ``Stopped``."""
        description = self.describe(kind, name)
        if description is None:
            raise FileNotFoundError(f"no job {name} to stop")
        if description[kind.status_field] != IN_PROGRESS:
            return description
        owner = description.get("LocalProcess", {})
        if _same_process(owner.get("job_pid"), owner.get("job_started")):
            stop_process_tree(owner["job_pid"])
        description[kind.status_field] = STOPPED
        description["FailureReason"] = f"stopped: {reason}"
        description[kind.end_time_field] = now()
        description.pop("LocalProcess", None)
        self._save(description)
        shutil.rmtree(self.jobs_root / name / "ml", ignore_errors=True)
        return description

    def _stop_if_out_of_time(self, kind: JobKind, description: dict[str, Any]) -> dict[str, Any]:
        """A job whose task was lost is held to its MaxRuntimeInSeconds by whoever awaits it."""
        limit = self._max_runtime(description)
        started = datetime.fromisoformat(description[f"{kind.value}StartTime"])
        if limit and (datetime.now(UTC) - started).total_seconds() > limit:
            stop_process_tree(description["LocalProcess"]["job_pid"])
            workspace = self.jobs_root / description[kind.name_field] / "ml"
            return self._finish(description, kind, workspace, ScriptRun(-1, "", ran_out_of_time=True))
        return description

    def _log_path(self, name: str) -> Path:
        return self.jobs_root / name / "output.log"

    def _exit_file(self, name: str) -> Path:
        """Where the job's process records its exit code as it ends, read by whoever finishes the job."""
        return self.jobs_root / name / "exit_code"

    def _usage_file(self, name: str) -> Path:
        """Where the job records its process tree's peak memory and CPU time as it ends."""
        return self.jobs_root / name / "usage.json"

    # ------------------------------------------------------------------ running

    def _workspace(self, name: str) -> Path:
        workspace = self.jobs_root / name / "ml"
        shutil.rmtree(workspace, ignore_errors=True)
        workspace.mkdir(parents=True)
        return workspace

    def _run_script(self, description: dict[str, Any], command: list[str], env: dict[str, str], cwd: Path,
                    max_runtime: int | None, python: JobPython | None = None,
                    notes: tuple[str, ...] = ()) -> ScriptRun:
        """Run the job's process to its end, echoing its log into the task's; the process writes to its
        log file itself and records its exit code, so that it can outlive this task (see the module).
        ``python`` is the twin the job runs in (the scikit-learn twin's unless said), ``notes`` lines
        that open its log."""
        python = python or self.python
        name = next(description[kind.name_field] for kind in JobKind if kind.name_field in description)
        log_path, exit_file = self._log_path(name), self._exit_file(name)
        usage_file = self._usage_file(name)
        exit_file.unlink(missing_ok=True)
        usage_file.unlink(missing_ok=True)
        twin = "the Spark twin" if python.executable.is_relative_to(SPARK_TWIN_DIR) else "the image twin"
        with log_path.open("w", encoding="utf-8") as log_file:
            for line in ([python.warning] if python.warning else []) + [
                    f"job python: {python.executable} (Python {python.version}"
                    + (f", {twin})" if python.is_twin else ", the project's environment)"), *notes]:
                log_file.write(line.rstrip("\n") + "\n")
            log_file.flush()
            recorded = [str(python.executable), "-c", USAGE_RECORDER, str(usage_file), *command]
            process = subprocess.Popen([*_RECORDING_EXIT, str(exit_file), *recorded], cwd=cwd, env=env,
                                       stdout=log_file, stderr=subprocess.STDOUT)
        self._process = process
        description["LocalProcess"].update(job_pid=process.pid, job_started=_started(process.pid))
        self._save(description)
        out_of_time = threading.Event()

        def stop_at_max_runtime() -> None:
            if process.poll() is None:
                out_of_time.set()
                stop_process_tree(process.pid)

        timer = threading.Timer(max_runtime, stop_at_max_runtime) if max_runtime else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            with log_path.open(encoding="utf-8", errors="replace") as reader:
                partial = ""
                while True:
                    ended = process.poll() is not None
                    partial += reader.read()
                    *complete, partial = partial.split("\n")
                    for line in complete:
                        self.log(f"[{name}] {shown(line.rstrip())}")
                    if ended:
                        break
                    time.sleep(_ECHO_SECONDS)
                if partial:
                    self.log(f"[{name}] {shown(partial.rstrip())}")
            exit_code = process.wait()
            if exit_code == 0 and not exit_file.is_file():
                # Stopped, not done: stop_process_tree reaped the process before Popen could, and Popen
                # reports 0 for a child it cannot wait for; an ended job always records its exit code.
                exit_code = -signal.SIGTERM
        finally:
            if timer:
                timer.cancel()
            self._process = None
        if out_of_time.is_set():
            with log_path.open("a", encoding="utf-8") as log_file:
                log_file.write(f"stopped: the job ran past its MaxRuntimeInSeconds ({max_runtime} s)\n")
            self.log(f"[{name}] stopped: the job ran past its MaxRuntimeInSeconds ({max_runtime} s)")
        return ScriptRun(exit_code, log_path.read_text(encoding="utf-8", errors="replace"), out_of_time.is_set(),
                         read_usage(usage_file))

    def kill(self) -> None:
        """Stop the running job (the task was killed); its job then ends Failed, as on SageMaker."""
        if self._process is not None and self._process.poll() is None:
            stop_process_tree(self._process.pid)

    def _store_outputs(self, kind: JobKind, description: dict[str, Any], workspace: Path, run: ScriptRun) -> None:
        """What a job that exited 0 leaves, stored as SageMaker stores it; read from its description
        alone, so that the job is finished the same way by its task or by whoever awaited it."""
        if kind is JobKind.PROCESSING:
            for item in description["ProcessingOutputConfig"]["Outputs"]:
                upload_tree(self.store, Path(in_workspace(item["S3Output"]["LocalPath"], workspace)),
                            item["S3Output"]["S3Uri"])
        elif kind is JobKind.TRAINING:
            name = description["TrainingJobName"]
            artifact_uri = f"{description['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output/model.tar.gz"
            self.store.write_bytes(artifact_uri, deterministic_tar(workspace / "model"))
            description["ModelArtifacts"] = {"S3ModelArtifacts": artifact_uri}
            description["FinalMetricDataList"] = scrape_metrics(
                run.log_text, description["AlgorithmSpecification"].get("MetricDefinitions", []))
        else:
            upload_tree(self.store, workspace / "output" / "data", description["TransformOutput"]["S3OutputPath"])

    def _output_uris(self, kind: JobKind, description: dict[str, Any]) -> list[str]:
        if kind is JobKind.PROCESSING:
            return [item["S3Output"]["S3Uri"] for item in description["ProcessingOutputConfig"]["Outputs"]]
        if kind is JobKind.TRAINING:
            return [f"{description['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{description['TrainingJobName']}"]
        return [description["TransformOutput"]["S3OutputPath"]]

    def _remove_outputs(self, kind: JobKind, description: dict[str, Any]) -> None:
        """What a job stored before storing failed: removed, so no reader finds part of its outputs."""
        for prefix in self._output_uris(kind, description):
            for uri in self.store.list_uris(prefix):
                self.store.delete(uri)

    def _finish(self, description: dict[str, Any], kind: JobKind, workspace: Path, run: ScriptRun) -> dict[str, Any]:
        if run.ran_out_of_time:  # as SageMaker records it; nothing is stored
            limit = description.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
            description[kind.status_field] = STOPPED
            description["FailureReason"] = (f"{MAX_RUNTIME_REASON}: the job ran past its MaxRuntimeInSeconds "
                                            f"({limit} s) and was stopped")
            if kind is JobKind.TRAINING:
                description["SecondaryStatus"] = MAX_RUNTIME_REASON
        elif run.exit_code == 0:
            try:
                self._store_outputs(kind, description, workspace, run)
                description[kind.status_field] = COMPLETED
            except OSError as error:  # a full disk, a store gone read-only: the job fails, nothing half-stored
                self._remove_outputs(kind, description)
                description[kind.status_field] = FAILED
                description["FailureReason"] = (f"ClientError: the job's outputs could not be stored: "
                                                f"{error.strerror or error} ({error.filename or 'the store'})")
        else:
            reason_path = workspace / "output" / ("message" if kind is JobKind.PROCESSING else "failure")
            message = (reason_path.read_text(encoding="utf-8").strip() if reason_path.is_file()
                       else f"the job's process exited with code {run.exit_code} without writing a reason")
            description[kind.status_field] = FAILED
            description["FailureReason"] = f"AlgorithmError: {message}"
            if kind is JobKind.PROCESSING:
                description["ExitMessage"] = message
        description[kind.end_time_field] = now()
        description.pop("LocalProcess", None)
        if run.usage:  # what SageMaker shows as the instance's memory graph: the sizing evidence
            description["LocalResourceUsage"] = run.usage.as_description()
        self._save(description)
        shutil.rmtree(workspace, ignore_errors=True)  # scratch only: outputs are in the store
        return description

    def _start(self, kind: JobKind, request: dict[str, Any]) -> dict[str, Any]:
        description = {
            **request,  # a Describe*Job answer repeats the request's fields, so readers need one shape
            kind.status_field: IN_PROGRESS,
            "CreationTime": now(),
            f"{kind.value}StartTime": now(),
            "LocalProcess": {"pid": os.getpid(), "started": _started(os.getpid()), "host": socket.gethostname()},
        }
        self._save(description)
        return description

    @staticmethod
    def _max_runtime(request: dict[str, Any]) -> int | None:
        return request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")

    def _spark_python(self, image_uri: str) -> tuple[JobPython, tuple[str, ...]]:
        """The Spark twin a job of the Spark processing image runs in, and what its log says first; a
        missing twin or Java fails the job before it starts (there is nothing to fall back to)."""
        python = spark_job_python()
        if python is None:
            raise FileNotFoundError(f"no Spark twin at {SPARK_TWIN_DIR} for the image {image_uri}: "
                                    "make setup builds it")
        if find_java(os.environ) is None:
            raise FileNotFoundError("no Java for the Spark twin (JAVA_HOME, or java on the PATH): make setup "
                                    "installs Debian's openjdk-17-jre-headless as root")
        tag = image_tag(image_uri)
        if tag != TWIN_IMAGE_TAG:
            return python, (f"WARNING: the request's image tag is {tag or 'none'}; the Spark twin holds "
                            f"{TWIN_IMAGE_TAG}'s versions (requirements-spark.txt)",)
        return python, ()

    def run_processing(self, request: dict[str, Any]) -> dict[str, Any]:
        """A processing job; one of the Spark processing image runs in the Spark twin (see
        ``churn_pipeline.local.spark_twin``): its ``s3://`` arguments name the store's files, and its
        event-log output (``S3UploadMode: Continuous`` on SageMaker) is stored at the end with the others."""
        name = request["ProcessingJobName"]
        description = self._start(JobKind.PROCESSING, request)
        workspace = self._workspace(name)
        python = self.python
        notes: tuple[str, ...] = ()
        try:
            app = request["AppSpecification"]
            spark = is_spark_processing_image(app["ImageUri"])
            if spark:
                python, notes = self._spark_python(app["ImageUri"])
                env = spark_container_env(python, workspace, request)
            else:
                env = container_env(self.python, workspace, request)
            write_processing_config(request, workspace)
            for item in request.get("ProcessingInputs", []):
                s3_input = item["S3Input"]
                stage(self.store, s3_input["S3Uri"], Path(in_workspace(s3_input["LocalPath"], workspace)),
                            f"input '{item['InputName']}'")
            outputs = request["ProcessingOutputConfig"]["Outputs"]
            for item in outputs:
                Path(in_workspace(item["S3Output"]["LocalPath"], workspace)).mkdir(parents=True, exist_ok=True)
            command = [in_workspace(part, workspace)
                       for part in app["ContainerEntrypoint"] + app.get("ContainerArguments", [])]
            if spark:  # PyPI's Spark has no S3A: the job reads and writes the store's files instead
                command = [local_store_uri(part, self.store) for part in command]
            executable = shutil.which(command[0], path=env["PATH"])  # as the image's PATH resolves it
            if executable is None:
                raise FileNotFoundError(f"the entry point {command[0]!r} is not in the image")
            command[0] = executable
        except (OSError, KeyError, ValueError) as error:
            return self._fail_before_start(description, JobKind.PROCESSING, workspace, error)

        run = self._run_script(description, command, env, cwd=workspace, max_runtime=self._max_runtime(request),
                               python=python, notes=notes)
        if spark and run.exit_code == 0 and not run.ran_out_of_time:
            remove_checksum_files(self.store, app["ContainerEntrypoint"] + app.get("ContainerArguments", []))
        return self._finish(description, JobKind.PROCESSING, workspace, run)

    def run_training(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["TrainingJobName"]
        description = self._start(JobKind.TRAINING, request)
        workspace = self._workspace(name)
        env = container_env(self.python, workspace, request)
        try:
            hyperparameters = stage_training_workspace(self.store, request, workspace)
            command = training_command(self.python, hyperparameters, workspace, env)
        except (OSError, KeyError, ValueError, tarfile.TarError) as error:
            return self._fail_before_start(description, JobKind.TRAINING, workspace, error)

        run = self._run_script(description, command, env, cwd=workspace, max_runtime=self._max_runtime(request))
        return self._finish(description, JobKind.TRAINING, workspace, run)

    # ------------------------------------------------------------------ models and transforms

    def _model_path(self, name: str) -> Path:
        return self.store.root / "models" / name / "description.json"

    def describe_model(self, name: str) -> dict[str, Any] | None:
        path = self._model_path(name)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def create_model(self, request: dict[str, Any],
                     resolve_package: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        """``CreateModel``: a container naming a model package gets the package's image, model data and
        environment, as SageMaker resolves it; a Model that exists is kept (one per scoring run)."""
        existing = self.describe_model(request["ModelName"])
        if existing is not None:
            return existing
        container = dict(request["PrimaryContainer"])
        if "ModelPackageName" in container:
            container.update(resolve_package(container["ModelPackageName"]))
        description = {**request, "PrimaryContainer": container, "CreationTime": now()}
        atomic_write(self._model_path(request["ModelName"]),
                     json.dumps(description, indent=2, sort_keys=True).encode())
        return description

    def run_transform(self, request: dict[str, Any]) -> dict[str, Any]:
        """``CreateTransformJob`` with the request's Model (created first with ``create_model``)."""
        name = request["TransformJobName"]
        description = self._start(JobKind.TRANSFORM, request)
        workspace = self._workspace(name)
        env = container_env(self.python, workspace, {})
        try:
            model = self.describe_model(request["ModelName"])
            if model is None:
                raise FileNotFoundError(f"no model {request['ModelName']}: create it first")
            container = model["PrimaryContainer"]
            model_dir = workspace / "model"
            stage(self.store, container["ModelDataUrl"], workspace / "model-archive", "the model's data")
            with tarfile.open(next((workspace / "model-archive").iterdir())) as archive:
                archive.extractall(model_dir, filter="data")
            env.update({key: in_workspace(value, workspace) for key, value in container.get("Environment", {}).items()})
            env.update(request.get("Environment", {}))
            stage(self.store, request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"], workspace / "input",
                        "the transform input")
            processing = request.get("DataProcessing", {})
            command = [str(self.python.executable), str(Path(__file__).with_name("transform.py")),
                       "--model-dir", str(model_dir), "--input-dir", str(workspace / "input"),
                       "--output-dir", str(workspace / "output" / "data"),
                       "--content-type", request["TransformInput"].get("ContentType", ""),
                       "--accept", request["TransformOutput"].get("Accept", ""),
                       "--max-payload-mb", str(request.get("MaxPayloadInMB", 6)),
                       "--input-filter", processing.get("InputFilter", "$"),
                       "--join-source", processing.get("JoinSource", "None"),
                       "--output-filter", processing.get("OutputFilter", "$"),
                       "--failure-file", str(workspace / "output" / "failure")]
        except (OSError, KeyError, ValueError, StopIteration, tarfile.TarError) as error:
            return self._fail_before_start(description, JobKind.TRANSFORM, workspace, error)

        run = self._run_script(description, command, env, cwd=workspace, max_runtime=None)
        return self._finish(description, JobKind.TRANSFORM, workspace, run)

    def _fail_before_start(self, description: dict[str, Any], kind: JobKind, workspace: Path,
                           error: Exception) -> dict[str, Any]:
        """SageMaker fails a job whose inputs cannot be staged with a ClientError; so does the runner."""
        description[kind.status_field] = FAILED
        description["FailureReason"] = f"ClientError: {error}"
        description[kind.end_time_field] = now()
        description.pop("LocalProcess", None)
        self._save(description)
        shutil.rmtree(workspace, ignore_errors=True)
        return description

