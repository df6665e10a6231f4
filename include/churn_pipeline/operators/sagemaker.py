"""The ``sagemaker`` backend's job tasks: the amazon provider's operators, made resumable.

They send the requests from ``churn_pipeline.requests`` through ``SageMakerProcessingOperator``
and ``SageMakerTrainingOperator``, with three changes the provider's defaults need for a nightly
pipeline (docs/aws.md, "Running on AWS"): an existing job of this run is reused or awaited instead of
renamed and paid again; a job that ends ``Stopped`` fails the task (the provider's synchronous path can
count it as success); and killing the task stops the job instead of leaving it running.

On the Spark engine the train task runs a Processing job of the Spark image, and so does the score
task for a Spark champion: ``ChurnTrainingOperator`` and ``ChurnTransformOperator`` then create it
through the same hook as the processing operator, and wait, defer, reuse, judge and stop it by the
same rules as every other job.

Waiting is synchronous unless ``CHURN_DEFERRABLE`` is true; the choice is always passed to the
provider explicitly, so Airflow's ``[operators] default_deferrable`` (common on MWAA) cannot switch it
behind the pipeline's back. Deferred, the job is watched by the provider's ``SageMakerTrigger`` in the
triggerer, with enough polls to outwait the job's own time limit (the provider's default gives up
after 30 minutes), and the task resumes in ``execute_complete``, which judges the job exactly as the
synchronous path does and hands on the same ``JobResult``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerProcessingOperator,
    SageMakerTrainingOperator,
    SageMakerTransformOperator,
)
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.sdk.exceptions import AirflowException
from botocore.exceptions import ClientError

from churn_pipeline.domain.sagemaker_api import RUNNING_STATES, JobKind
from churn_pipeline.domain.settings import Settings, load_settings
from churn_pipeline.operators.links import SageMakerProcessingJobLink, SageMakerTrainingJobLink
from churn_pipeline.operators.resumable import JOB_INPUT_FIELDS, ResumableJobMixin

# SageMaker writes each job's lines to CloudWatch Logs here, one stream per instance, named "<job>/<host>-<epoch>"
LOG_GROUPS = {JobKind.PROCESSING: "/aws/sagemaker/ProcessingJobs", JobKind.TRAINING: "/aws/sagemaker/TrainingJobs",
              JobKind.TRANSFORM: "/aws/sagemaker/TransformJobs"}


class JobLogReader:
    """Reads a job's CloudWatch log lines as they come, each line once, from every stream of the job.

    The provider's ``print_log`` covers training jobs only and only on its own wait; this reads the
    streams of any kind of job, so the task log holds the job's own lines (a failed job's traceback
    among them) on the synchronous path while it waits and on the deferred one when the task resumes.
    """

    def __init__(self, logs_client: Any, kind: JobKind, job_name: str) -> None:
        self.client = logs_client
        self.group = LOG_GROUPS[kind]
        self.job_name = job_name
        self._tokens: dict[str, str | None] = {}

    def _streams(self) -> list[str]:
        try:
            answer = self.client.describe_log_streams(logGroupName=self.group, logStreamNamePrefix=f"{self.job_name}/")
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":  # no job has written yet
                return []
            raise
        return sorted(stream["logStreamName"] for stream in answer.get("logStreams", []))

    def new_lines(self) -> list[str]:
        lines: list[str] = []
        for stream in self._streams():
            token = self._tokens.get(stream)
            while True:
                request = {"logGroupName": self.group, "logStreamName": stream, "startFromHead": True}
                if token:
                    request["nextToken"] = token
                answer = self.client.get_log_events(**request)
                lines += [event["message"].rstrip("\n") for event in answer.get("events", [])]
                if answer.get("nextForwardToken") in (None, token):  # the same token again: the stream's end
                    break
                token = answer["nextForwardToken"]
            self._tokens[stream] = token
        return lines


def trigger_max_attempts(settings: Settings) -> int:
    """Polls the trigger may make: enough, one every ``CHURN_POLL_SECONDS``, to outwait the job's wait."""
    return math.ceil(settings.job_wait_seconds / max(settings.poll_seconds, 1)) + 1


class SageMakerJobMixin(ResumableJobMixin):
    """Mixed into the provider's operator classes, whose ``hook`` (a SageMakerHook), ``check_interval``
    and ``max_ingestion_time`` it uses."""

    check_interval: int
    max_ingestion_time: int | None
    max_attempts: int
    deferrable: bool
    _current_job: str | None = None

    def _provider_execute(self, context: Any) -> Any:
        raise NotImplementedError  # each concrete class calls its provider operator's execute

    @property
    def _sagemaker(self) -> Any:
        return self.hook  # type: ignore[attr-defined]  # the provider operator's SageMakerHook

    def _describe_function(self) -> Callable[[str], Mapping[str, Any]]:
        describe: Callable[[str], Mapping[str, Any]] = getattr(self._sagemaker, f"describe_{self.kind.lower()}_job")
        return describe

    def _remember(self, name: str, context: Any) -> None:
        """The job this task now owns: stopped by on_kill, linked from the UI."""
        self._current_job = name
        link = JOB_LINKS.get(self.kind)
        if link is None:  # the provider's transform operator links its job itself
            return
        link.persist(context=context, operator=self, region_name=self._sagemaker.conn_region_name,
                     aws_partition=self._sagemaker.conn_partition, job_name=name)

    def describe_job(self, name: str, settings: Settings) -> Mapping[str, Any] | None:
        try:
            return self._describe_function()(name)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ValidationException":  # SageMaker's "no such job"
                return None
            raise

    def await_job(self, name: str, settings: Settings, context: Any) -> Mapping[str, Any]:
        self._remember(name, context)
        if self.deferrable:
            self._defer_until_stopped(name)  # the task resumes in execute_complete
        return self._wait_showing_the_log(name)

    def run_job(self, request: dict[str, Any], settings: Settings, context: Any) -> Mapping[str, Any]:
        name = job_name_of(self.kind, request)
        self.config = self._provider_config(request)
        self._remember(name, context)
        # Deferred, the provider creates the job and hands the wait to its trigger; otherwise it only
        # creates the job, and the wait below shows the job's log lines as they come.
        provider: Any = self
        provider.wait_for_completion = self.deferrable
        try:
            self._provider_execute(context)
        except AirflowException as error:  # Failed, or waiting gave up: the description below tells which
            self.log.info("the provider operator reported: %s", error)
            if self.describe_job(name, settings) is None:  # the job was never created: let the error speak
                raise
        return self._wait_showing_the_log(name)

    def _log_reader(self, name: str) -> JobLogReader:
        from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

        provider: Any = self  # the provider operator's connection fields
        hook = AwsLogsHook(aws_conn_id=provider.aws_conn_id, region_name=provider.region_name,
                           verify=provider.verify, config=provider.botocore_config)
        return JobLogReader(hook.conn, self.kind, name)

    def _show(self, reader: JobLogReader) -> None:
        for line in reader.new_lines():
            self.log.info("[%s] %s", reader.job_name, line)

    def _wait_showing_the_log(self, name: str, reader: JobLogReader | None = None) -> Mapping[str, Any]:
        """Poll the job every ``check_interval`` seconds until it stops running (or the wait's limit,
        ``max_ingestion_time``, passes: the caller judges a job still running), putting its new log
        lines into the task log at each poll and once more at the end."""
        reader = reader or self._log_reader(name)
        describe = self._describe_function()
        started, waited = time.monotonic(), 0  # the provider's wait counts its sleeps; real time counts too
        while True:
            description = describe(name)
            self._show(reader)
            status = description[self.kind.status_field]
            if status not in RUNNING_STATES:
                break
            if self.max_ingestion_time and max(waited, time.monotonic() - started) >= self.max_ingestion_time:
                self.log.info("waiting ended: %s is still %s after %s s", name, status, self.max_ingestion_time)
                break
            time.sleep(self.check_interval)
            waited += self.check_interval
        self._show(reader)  # the lines written as the job ended
        return description

    def _provider_config(self, request: dict[str, Any]) -> dict[str, Any]:
        return request

    def _start_processing_job(self) -> None:
        """Create a Spark engine's job that the task's provider operator does not run (training, or
        scoring a Spark champion), a processing job, as the provider's processing operator would (the
        attempt's name was planned unused; the request holds whole numbers and a role ARN already),
        then hand a deferred wait to the triggerer; run_job waits otherwise."""
        name = job_name_of(JobKind.PROCESSING, self.config)
        self.log.info("Creating SageMaker processing job %s for the Spark engine's %s step.", name, self.step)
        response = self._sagemaker.create_processing_job(self.config, wait_for_completion=False)
        if response["ResponseMetadata"]["HTTPStatusCode"] != 200:
            raise AirflowException(f"Sagemaker Processing Job creation failed: {response}")
        if self.deferrable:
            self._defer_until_stopped(name)

    def _defer_until_stopped(self, name: str) -> None:
        """Hand the wait for a running job of this run to the triggerer, as the provider does for a new one."""
        provider: Any = self  # the provider operator's connection fields
        self.defer(  # type: ignore[attr-defined]  # BaseOperator.defer
            trigger=SageMakerTrigger(
                job_name=name, job_type=self.kind.value, waiter_delay=self.check_interval,
                waiter_max_attempts=self.max_attempts, aws_conn_id=provider.aws_conn_id,
                region_name=provider.region_name, verify=provider.verify, botocore_config=provider.botocore_config),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.max_ingestion_time) if self.max_ingestion_time else None,
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger saw the job stop running, or ran out of polls: the job's own
        description is judged as on the synchronous path (same result, same retry rules)."""
        validated = validate_execute_complete_event(event)
        name = validated.get("job_name")
        if not name:
            raise AirflowException(f"the trigger's event names no job: {validated}")
        self.log.info("resumed after the trigger reported %s for %s", validated.get("status"), name)
        self._follow_rendered_engine()
        self._remember(name, context)
        self._show(self._log_reader(name))  # what the job wrote while the triggerer watched it
        description = self._describe_function()(name)
        from churn_pipeline.domain.attempt_planning import Action
        from churn_pipeline.domain.layout import attempt_of

        return self._judge(name, Action.AWAIT, attempt_of(name), description, context["ti"],
                           load_settings().instance_prices)

    def _follow_rendered_engine(self) -> None:
        """On resuming, take the kind of job the run's engine runs, as execute did (the staged payload
        is rendered again for the resumed task)."""
        from churn_pipeline.domain.payloads import PayloadError
        from churn_pipeline.requests.steps import STAGED_PAYLOAD

        try:
            self._follow_engine(STAGED_PAYLOAD[self.step].from_xcom(self.staged))
        except PayloadError as error:
            raise AirflowException(f"the {self.step} task resumed without its staged run: {error}") from None

    def on_kill(self) -> None:
        if not self._current_job:
            return
        stop = getattr(self._sagemaker.conn, f"stop_{self.kind.lower()}_job")
        try:
            stop(**{self.kind.name_field: self._current_job})
            self.log.info("stopped %s after the task was killed", self._current_job)
        except ClientError as error:
            self.log.warning("could not stop %s: %s", self._current_job, error)


def job_name_of(kind: JobKind, request: Mapping[str, Any]) -> str:
    """The job a request starts; a transform's request is the provider's ``{"Model", "Transform"}`` pair."""
    return str((request["Transform"] if kind is JobKind.TRANSFORM else request)[kind.name_field])


def _provider_kwargs(settings: Settings) -> dict[str, Any]:
    return {
        "config": {},  # built at run time from the upstream results
        "aws_conn_id": settings.aws_conn_id,
        "region_name": settings.region,
        "wait_for_completion": True,
        "check_interval": settings.poll_seconds,
        "max_ingestion_time": settings.job_wait_seconds,
        "action_if_job_exists": "fail",  # names are planned per attempt: a clash is a bug, not a rename
        # explicit, so that Airflow's [operators] default_deferrable cannot choose for the pipeline
        "deferrable": settings.deferrable,
        "max_attempts": trigger_max_attempts(settings),
    }


class ChurnProcessingOperator(SageMakerJobMixin, SageMakerProcessingOperator):
    operator_extra_links = (SageMakerProcessingJobLink(),)

    template_fields = (*SageMakerProcessingOperator.template_fields, *JOB_INPUT_FIELDS)
    def __init__(self, *, step: str, settings: Settings, staged: Any, inputs: Mapping[str, Any] | None = None,
                 **kwargs: Any):
        super().__init__(**_provider_kwargs(settings), **kwargs)
        self._wire(step, staged, inputs)

    def _provider_execute(self, context: Any) -> Any:
        return SageMakerProcessingOperator.execute(self, context)


class ChurnTrainingOperator(SageMakerJobMixin, SageMakerTrainingOperator):
    """The train task: a training job of the scikit-learn image, or, when the run's engine is Spark, a
    processing job of the Spark image (the request's kind follows the staged engine)."""

    operator_extra_links = (SageMakerTrainingJobLink(), SageMakerProcessingJobLink())

    template_fields = (*SageMakerTrainingOperator.template_fields, *JOB_INPUT_FIELDS)
    def __init__(self, *, step: str, settings: Settings, staged: Any, inputs: Mapping[str, Any] | None = None,
                 **kwargs: Any):
        super().__init__(**_provider_kwargs(settings), print_log=False, check_if_job_exists=True, **kwargs)
        self._wire(step, staged, inputs)

    def _provider_execute(self, context: Any) -> Any:
        if self.kind is JobKind.PROCESSING:
            return self._start_processing_job()
        return SageMakerTrainingOperator.execute(self, context)



class ChurnTransformOperator(SageMakerJobMixin, SageMakerTransformOperator):
    """Batch Transform with the champion: the provider creates the run's Model from the approved
    package, then the transform job. A later attempt of the same run finds that Model and reuses it
    (the provider would otherwise fail on, or rename, a Model that exists). A Spark champion is
    scored by a processing job of the Spark image instead (the request's kind follows the staged
    scoring run's engine), created as the train task creates a Spark training job."""

    # the provider types its links as its transform link alone; a Spark champion's job is a processing job
    operator_extra_links = (*SageMakerTransformOperator.operator_extra_links,  # type: ignore[assignment]
                            SageMakerProcessingJobLink())

    template_fields = (*SageMakerTransformOperator.template_fields, *JOB_INPUT_FIELDS)
    def __init__(self, *, step: str, settings: Settings, staged: Any, inputs: Mapping[str, Any] | None = None,
                 **kwargs: Any):
        super().__init__(**_provider_kwargs(settings), check_if_job_exists=True, check_if_model_exists=True,
                         action_if_model_exists="fail", **kwargs)
        self._wire(step, staged, inputs)

    def _provider_config(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.kind is JobKind.PROCESSING:  # a Spark champion's scoring job: no Model to create
            return request
        model = request["Model"]["ModelName"]
        try:
            self._sagemaker.describe_model(model)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ValidationException":  # anything but "no such model"
                raise
            return request
        self.log.info("the model %s exists from an earlier attempt of this run: reusing it", model)
        return {"Transform": request["Transform"]}

    def _provider_execute(self, context: Any) -> Any:
        if self.kind is JobKind.PROCESSING:
            return self._start_processing_job()
        return SageMakerTransformOperator.execute(self, context)


SAGEMAKER_OPERATORS = {JobKind.PROCESSING: ChurnProcessingOperator, JobKind.TRAINING: ChurnTrainingOperator,
                       JobKind.TRANSFORM: ChurnTransformOperator}
JOB_LINKS: dict[JobKind, type[SageMakerProcessingJobLink] | type[SageMakerTrainingJobLink]] = {
    JobKind.PROCESSING: SageMakerProcessingJobLink, JobKind.TRAINING: SageMakerTrainingJobLink}
