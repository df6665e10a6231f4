"""An AWS emulation on loopback that really runs SageMaker jobs: moto's server, extended.

moto accepts ``CreateProcessingJob``, ``CreateTrainingJob`` and ``CreateTransformJob`` and reports
them ``Completed`` at once without running anything. Here each accepted job runs for real, in a
thread of the server, through the project's local runner (``churn_pipeline.local.runner``) in the
image twin:

- its inputs (every ``s3://`` URI the request names, the code archive of a training job's
  hyperparameters and the model data of a transform's model package included) are copied from the
  emulated S3 into a scratch store the runner reads, and what the job wrote is put back into the
  emulated S3 when it completes, so a reader downstream gets exactly what the job produced; a job of
  SageMaker's Spark processing image, which reads and writes its data sets itself through ``s3://``
  arguments, gets them the same way: they are staged like every other URI, the runner points them at
  the scratch store's files (the Spark twin has no S3A), and the files Spark wrote there are put back
  as objects (Spark's ``_SUCCESS`` markers included, as on S3);
- ``Describe*Job`` says ``InProgress`` while the job runs, then ``Completed``, ``Failed`` (with
  SageMaker's ``FailureReason``, ``ExitMessage`` for processing) or ``Stopped``; a training job's
  ``ModelArtifacts`` and ``FinalMetricDataList`` are what the run produced;
- ``Stop{Processing,Training,Transform}Job`` stops the job's process tree; the job ends ``Stopped``;
- every line the job prints goes to the emulated CloudWatch Logs, in the log group and stream
  SageMaker uses: ``/aws/sagemaker/ProcessingJobs`` (stream ``<job>/algo-1-<epoch>``),
  ``/aws/sagemaker/TrainingJobs`` (``<job>/algo-1-<epoch>``) and ``/aws/sagemaker/TransformJobs``
  (``<job>/<instance id>-<epoch>``).

The emulation reads and writes S3 and CloudWatch Logs through moto's backends in this process, not
through its HTTP API, so moto's request recorder sees only the calls of the pipeline itself.

    python -m churn_pipeline.tooling.aws_emulation -H 127.0.0.1 -p PORT   (moto's server options)
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.core.responses import EmptyResult
from moto.logs.models import logs_backends
from moto.s3.models import s3_backends
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from churn_pipeline.domain.s3_uris import parse_s3_uri
from churn_pipeline.domain.sagemaker_api import COMPLETED, FAILED, IN_PROGRESS, STOPPED, STOPPING, JobKind
from churn_pipeline.local.image_twin import job_python
from churn_pipeline.local.runner import LocalJobRunner
from churn_pipeline.services.objectstore import LocalObjectStore

LOG_GROUPS = {JobKind.PROCESSING: "/aws/sagemaker/ProcessingJobs", JobKind.TRAINING: "/aws/sagemaker/TrainingJobs",
              JobKind.TRANSFORM: "/aws/sagemaker/TransformJobs"}
# The fields of a Describe*Job answer that the run decides; moto's own values for them are invented.
DECIDED_BY_THE_RUN = ("FailureReason", "ExitMessage", "ModelArtifacts", "FinalMetricDataList", "SecondaryStatus")
JOB_TABLES = {JobKind.PROCESSING: "processing_jobs", JobKind.TRAINING: "training_jobs",
              JobKind.TRANSFORM: "transform_jobs"}


def log_stream_name(kind: JobKind, job_name: str, started: float) -> str:
    """The stream SageMaker writes a job's first instance to."""
    host = "i-0emulated000000001" if kind is JobKind.TRANSFORM else "algo-1"
    return f"{job_name}/{host}-{int(started)}"


def s3_uris_in(value: Any) -> Iterator[str]:
    """Every ``s3://`` URI in a request, JSON-quoted hyperparameter values included."""
    if isinstance(value, dict):
        for item in value.values():
            yield from s3_uris_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from s3_uris_in(item)
    elif isinstance(value, str):
        text = value.strip('"')
        if text.startswith("s3://"):
            yield text


@dataclass
class EmulatedJob:
    """A job's run as the emulation tracks it; ``Describe*Job`` overlays it on moto's answer."""

    kind: JobKind
    request: dict[str, Any]
    status: str = IN_PROGRESS
    decided: dict[str, Any] = field(default_factory=dict)
    end_time: datetime | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)
    runner: LocalJobRunner | None = None
    # A stop and the job's own end may race: whichever takes this lock first decides the status.
    status_lock: threading.Lock = field(default_factory=threading.Lock)

    def end(self, status: str, decided: dict[str, Any]) -> None:
        """Record the job's end; its status goes last, so a Describe that sees it ended sees all of it.

        SageMaker records a job stopped on request as Stopped, with no reason, whatever its process did.
        """
        with self.status_lock:
            stopped = self.stop_requested.is_set()
            self.decided = {} if stopped else decided
            self.end_time = datetime.now(UTC)
            self.status = STOPPED if stopped else status

    def request_stop(self) -> None:
        with self.status_lock:
            if self.status != IN_PROGRESS:
                name = self.request[self.kind.name_field]
                raise ValidationError(message=f"The job {name} is not in progress (its status is {self.status}).")
            self.status = STOPPING
            self.stop_requested.set()

    def overlay(self, answer: dict[str, Any]) -> dict[str, Any]:
        answer = {key: value for key, value in answer.items() if key not in DECIDED_BY_THE_RUN}
        answer[self.kind.status_field] = self.status
        if self.end_time is None:
            answer.pop(self.kind.end_time_field, None)
        else:
            answer[self.kind.end_time_field] = self.end_time
        if self.kind is JobKind.TRAINING:  # moto replaces the request's metric definitions with its own
            answer["AlgorithmSpecification"] = self.request["AlgorithmSpecification"]
            answer["SecondaryStatus"] = {IN_PROGRESS: "Training", STOPPING: "Stopping"}.get(self.status, self.status)
        answer.update(self.decided)
        return answer


# Per moto job object: a job created again after a reset of the server is a new run.
JOBS: weakref.WeakKeyDictionary[Any, EmulatedJob] = weakref.WeakKeyDictionary()


class EmulatedS3:
    """The emulated S3 of one account, read and written through moto's backend (not its HTTP API)."""

    def __init__(self, account_id: str) -> None:
        self.backend = s3_backends[account_id]["aws"]

    def keys_under(self, uri: str) -> list[tuple[str, str]]:
        """The objects a SageMaker ``S3Prefix`` of ``uri`` stages: its exact key, or keys below ``key/``."""
        bucket_name, prefix = parse_s3_uri(uri)
        try:
            bucket = self.backend.get_bucket(bucket_name)
        except Exception:
            return []
        prefix = prefix.rstrip("/")
        return [(bucket_name, key) for key in list(bucket.keys.keys())
                if not prefix or key == prefix or key.startswith(f"{prefix}/")]

    def read(self, bucket: str, key: str) -> bytes:
        found = self.backend.get_object(bucket, key)
        if found is None:
            raise FileNotFoundError(f"s3://{bucket}/{key}")
        return bytes(found.value)

    def write(self, bucket: str, key: str, data: bytes) -> None:
        self.backend.put_object(bucket, key, data)


class EmulatedLogs:
    """One job's stream in the emulated CloudWatch Logs."""

    def __init__(self, account_id: str, region: str, kind: JobKind, job_name: str) -> None:
        self.backend = logs_backends[account_id][region]
        self.group = LOG_GROUPS[kind]
        self.stream = log_stream_name(kind, job_name, time.time())
        self.prefix = f"[{job_name}] "  # the runner's prefix of every line, which a job's own log has not
        self._lock = threading.Lock()
        if self.group not in self.backend.groups:
            self.backend.create_log_group(self.group, tags={})
        self.backend.create_log_stream(self.group, self.stream)

    def write(self, line: str) -> None:
        message = line.removeprefix(self.prefix)
        with self._lock:
            self.backend.put_log_events(self.group, self.stream,
                                        [{"timestamp": int(time.time() * 1000), "message": message}])


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}


def run_emulated(job: EmulatedJob, backend: SageMakerModelBackend) -> None:
    """Run one job to its end: stage its inputs, run it with the local runner, store what it wrote."""
    name = job.request[job.kind.name_field]
    s3 = EmulatedS3(backend.account_id)
    logs = EmulatedLogs(backend.account_id, backend.region_name, job.kind, name)
    try:
        with tempfile.TemporaryDirectory(prefix=f"emulated-{name}-") as scratch:
            store = LocalObjectStore(Path(scratch))
            uris = list(s3_uris_in(job.request))
            model_package = _transform_model(job, backend)
            uris += list(s3_uris_in(model_package))
            for uri in dict.fromkeys(uris):
                for bucket, key in s3.keys_under(uri):
                    store.write_bytes(f"s3://{bucket}/{key}", s3.read(bucket, key))
            mirror = Path(scratch) / "s3"
            before = _snapshot(mirror)
            job.runner = LocalJobRunner(store, log=logs.write, python=job_python())
            if job.stop_requested.is_set():
                description = {job.kind.status_field: STOPPED}
            elif job.kind is JobKind.PROCESSING:
                description = job.runner.run_processing(job.request)
            elif job.kind is JobKind.TRAINING:
                description = job.runner.run_training(job.request)
            else:
                job.runner.create_model(model_package["Model"], lambda _name: model_package["Container"])
                description = job.runner.run_transform(job.request)
            if description[job.kind.status_field] == COMPLETED and not job.stop_requested.is_set():
                for path, data in _snapshot(mirror).items():
                    if before.get(path) != data:
                        bucket, _, key = path.relative_to(mirror).as_posix().partition("/")
                        s3.write(bucket, key, data)
            _decide(job, description)
    except Exception as error:
        logs.write(f"the emulation could not run the job: {type(error).__name__}: {error}")
        job.end(FAILED, {"FailureReason": f"InternalServerError: {type(error).__name__}: {error}"})


def _decide(job: EmulatedJob, description: dict[str, Any]) -> None:
    decided = {key: description[key] for key in DECIDED_BY_THE_RUN if key in description}
    for metric in decided.get("FinalMetricDataList", []):
        metric["Timestamp"] = datetime.fromisoformat(metric["Timestamp"])
    job.end(description[job.kind.status_field], decided)


def _transform_model(job: EmulatedJob, backend: SageMakerModelBackend) -> dict[str, Any]:
    """A transform job's Model as created in moto, and the container its model package resolves to."""
    if job.kind is not JobKind.TRANSFORM:
        return {}
    model = backend.describe_model(job.request["ModelName"]).response_object
    request = {"ModelName": model["ModelName"], "PrimaryContainer": model["PrimaryContainer"],
               "ExecutionRoleArn": model.get("ExecutionRoleArn", "")}
    container: dict[str, Any] = {}
    package_name = model["PrimaryContainer"].get("ModelPackageName")
    if package_name:
        package = backend.describe_model_package(package_name).gen_response_object()
        (first, *_) = package["InferenceSpecification"]["Containers"]
        container = {"Image": first["Image"], "ModelDataUrl": first["ModelDataUrl"],
                     "Environment": first.get("Environment", {})}
    return {"Model": request, "Container": container}


# ---------------------------------------------------------------------------------- moto, extended


def _job(backend: SageMakerModelBackend, kind: JobKind, name: str) -> tuple[Any, EmulatedJob | None]:
    found = getattr(backend, JOB_TABLES[kind]).get(name)
    if found is None:
        arn = f"arn:aws:sagemaker:{backend.region_name}:{backend.account_id}:{kind.value.lower()}-job/{name}"
        raise ValidationError(message=f"Could not find {kind.value.lower()} job '{arn}'.")
    return found, JOBS.get(found)


def _creating(kind: JobKind) -> Callable[[SageMakerResponse], Any]:
    create = getattr(SageMakerResponse, f"create_{kind.value.lower()}_job")

    def create_and_run(response: SageMakerResponse) -> Any:
        answer = create(response)  # moto validates and records the job
        request = json.loads(response.body)
        backend = response.sagemaker_backend
        found, _ = _job(backend, kind, request[kind.name_field])
        job = JOBS[found] = EmulatedJob(kind, request)
        threading.Thread(target=run_emulated, args=(job, backend), name=f"job {request[kind.name_field]}",
                         daemon=True).start()
        return answer

    return create_and_run


def _describing(kind: JobKind) -> Callable[..., dict[str, Any]]:
    describe = getattr(SageMakerModelBackend, f"describe_{kind.value.lower()}_job")

    def describe_as_run(backend: SageMakerModelBackend, *args: str, **kwargs: str) -> dict[str, Any]:
        answer: dict[str, Any] = describe(backend, *args, **kwargs)  # raises for an unknown job, as SageMaker does
        (name,) = (*args, *kwargs.values())  # moto passes the job name by position or by keyword
        _, job = _job(backend, kind, name)
        return job.overlay(answer) if job else answer

    return describe_as_run


def _stopping(kind: JobKind) -> Callable[[SageMakerResponse], Any]:
    def stop(response: SageMakerResponse) -> Any:
        name = response._get_param(kind.name_field)
        _, job = _job(response.sagemaker_backend, kind, name)
        if job is None:
            raise ValidationError(message=f"The job {name} is not in progress (its status is {COMPLETED}).")
        job.request_stop()
        if job.runner is not None:
            job.runner.kill()
        return EmptyResult()

    return stop


def install() -> None:
    """Extend moto's SageMaker so that the jobs it accepts run."""
    for kind in JobKind:
        action = kind.value.lower()
        setattr(SageMakerResponse, f"create_{action}_job", _creating(kind))
        setattr(SageMakerModelBackend, f"describe_{action}_job", _describing(kind))
        setattr(SageMakerResponse, f"stop_{action}_job", _stopping(kind))


def main() -> None:
    from moto.server import main as moto_main

    install()
    moto_main()


if __name__ == "__main__":
    main()
