"""The ``sagemaker`` backend's job tasks: the amazon provider's operators, made resumable.

They send the requests from ``churn_pipeline.job_requests`` through ``SageMakerProcessingOperator``
and ``SageMakerTrainingOperator``, with three changes the provider's defaults need for a nightly
pipeline (see ../shared/PITFALLS.md): an existing job of this run is reused or awaited instead of
renamed and paid again; a job that ends ``Stopped`` fails the task (the provider's synchronous path can
count it as success); and killing the task stops the job instead of leaving it running.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerProcessingOperator, SageMakerTrainingOperator
from airflow.sdk.exceptions import AirflowException
from botocore.exceptions import ClientError

from churn_pipeline.job_operator import ChurnJobMixin
from churn_pipeline.jobs import KIND_OF_STEP, PROCESSING, TRAINING
from churn_pipeline.links import SageMakerProcessingJobLink, SageMakerTrainingJobLink
from churn_pipeline.settings import Settings

# Wait at most the job's own runtime limit plus time for start-up and upload.
WAIT_SLACK_SECONDS = 1800


class SageMakerJobMixin(ChurnJobMixin):
    _provider_execute: Any
    _current_job: str | None = None

    def _describe_function(self) -> Any:
        if self.kind == PROCESSING:
            return self.hook.describe_processing_job
        return self.hook.describe_training_job

    def _remember(self, name: str, context: Any) -> None:
        """The job this task now owns: stopped by on_kill, linked from the UI."""
        self._current_job = name
        link = SageMakerProcessingJobLink if self.kind == PROCESSING else SageMakerTrainingJobLink
        link.persist(context=context, operator=self, region_name=self.hook.conn_region_name,
                     aws_partition=self.hook.conn_partition, job_name=name)

    def describe_job(self, name: str) -> Mapping[str, Any] | None:
        try:
            return self._describe_function()(name)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ValidationException":  # SageMaker's "no such job"
                return None
            raise

    def await_job(self, name: str, context: Any) -> Mapping[str, Any]:
        self._remember(name, context)
        try:
            self.hook.check_status(name, f"{self.kind}JobStatus", self._describe_function(), self.check_interval,
                                   self.max_ingestion_time, non_terminal_states={"InProgress", "Stopping"})
        except AirflowException as error:  # Failed: the description below carries the reason
            self.log.info("waiting ended: %s", error)
        return self._describe_function()(name)

    def run_job(self, request: dict[str, Any], context: Any) -> Mapping[str, Any]:
        name = request[f"{self.kind}JobName"]
        self.config = request
        self._remember(name, context)
        try:
            self._provider_execute(context)
        except AirflowException as error:
            self.log.info("the provider operator reported: %s", error)
            if self.describe_job(name) is None:  # the job was never created: let the error speak
                raise
        return self._describe_function()(name)

    def on_kill(self) -> None:
        if not self._current_job:
            return
        stop = self.hook.conn.stop_processing_job if self.kind == PROCESSING else self.hook.conn.stop_training_job
        try:
            stop(**{f"{self.kind}JobName": self._current_job})
            self.log.info("stopped %s after the task was killed", self._current_job)
        except ClientError as error:
            self.log.warning("could not stop %s: %s", self._current_job, error)


def _provider_kwargs(settings: Settings) -> dict[str, Any]:
    return {
        "config": {},  # built at run time from the upstream results
        "aws_conn_id": settings.aws_conn_id,
        "region_name": settings.region,
        "wait_for_completion": True,
        "check_interval": settings.poll_seconds,
        "max_ingestion_time": settings.max_runtime_seconds + WAIT_SLACK_SECONDS,
        "action_if_job_exists": "fail",  # names are planned per attempt: a clash is a bug, not a rename
    }


class ChurnProcessingOperator(SageMakerJobMixin, SageMakerProcessingOperator):
    operator_extra_links = (SageMakerProcessingJobLink(),)

    def __init__(self, *, step: str, settings: Settings, **kwargs: Any):
        super().__init__(**_provider_kwargs(settings), **kwargs)
        self.step, self.kind = step, KIND_OF_STEP[step]

    def _provider_execute(self, context: Any) -> Any:
        return SageMakerProcessingOperator.execute(self, context)


class ChurnTrainingOperator(SageMakerJobMixin, SageMakerTrainingOperator):
    operator_extra_links = (SageMakerTrainingJobLink(),)

    def __init__(self, *, step: str, settings: Settings, **kwargs: Any):
        super().__init__(**_provider_kwargs(settings), print_log=False, check_if_job_exists=True, **kwargs)
        self.step, self.kind = step, KIND_OF_STEP[step]

    def _provider_execute(self, context: Any) -> Any:
        return SageMakerTrainingOperator.execute(self, context)


SAGEMAKER_OPERATORS = {PROCESSING: ChurnProcessingOperator, TRAINING: ChurnTrainingOperator}
