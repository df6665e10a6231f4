"""The local backend's job task: the same requests as on SageMaker, run by ``LocalJobRunner``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from churn_pipeline.domain.sagemaker_api import JobKind
from churn_pipeline.domain.settings import Settings
from churn_pipeline.operators.resumable import JOB_INPUT_FIELDS, ResumableJobMixin

if TYPE_CHECKING:
    from churn_pipeline.local.runner import LocalJobRunner

LOCAL_POLL_SECONDS = 1.0


class LocalJobOperator(ResumableJobMixin, BaseOperator):
    """Runs a step's job on this machine under the SageMaker container contract."""

    ui_color = "#e8f4ea"
    template_fields = JOB_INPUT_FIELDS

    def __init__(self, *, step: str, staged: Any, inputs: Mapping[str, Any] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._wire(step, staged, inputs)
        self._runner: LocalJobRunner | None = None

    def _runner_for(self, settings: Settings) -> LocalJobRunner:
        if self._runner is None:
            from churn_pipeline.local.runner import LocalJobRunner  # at run time: parsing the DAG stays light
            from churn_pipeline.services.objectstore import LocalObjectStore

            self._runner = LocalJobRunner(LocalObjectStore(settings.local_root), log=self.log.info)
        return self._runner

    def describe_job(self, name: str, settings: Settings) -> Mapping[str, Any] | None:
        return self._runner_for(settings).describe(self.kind, name)

    def await_job(self, name: str, settings: Settings, context: Any) -> Mapping[str, Any]:
        from churn_pipeline.domain.attempt_planning import is_running

        runner = self._runner_for(settings)
        while True:
            description = runner.describe(self.kind, name)
            if description is None:
                raise FileNotFoundError(f"the description of {name} disappeared while waiting for it")
            if not is_running(self.kind, description):
                return description
            time.sleep(LOCAL_POLL_SECONDS)

    def replace_running_job(self, name: str, request: dict[str, Any], description: Mapping[str, Any],
                            settings: Settings) -> bool:
        """A local job left running by a lost task is stopped when this attempt would send another
        request (the code or an upstream result changed since): its outputs would not be this run's."""
        from churn_pipeline.domain.attempt_planning import changed_fields

        sent = request["Transform"] if self.kind is JobKind.TRANSFORM else request
        changed = changed_fields(sent, description)
        if not changed:
            return False
        self.log.info("%s runs another request than this attempt's (%s differ); stopping it and starting the next "
                      "attempt", name, ", ".join(changed))
        self._runner_for(settings).stop(self.kind, name, f"its request differs from the next attempt's in "
                                                          f"{', '.join(changed)}")
        return True

    def run_job(self, request: dict[str, Any], settings: Settings, context: Any) -> Mapping[str, Any]:
        runner = self._runner_for(settings)
        if self.kind is JobKind.PROCESSING:
            description = runner.run_processing(request)
        elif self.kind is JobKind.TRANSFORM:  # the provider's pair: the run's Model, then the transform job
            from churn_pipeline.services.registry import MlflowRegistry

            runner.create_model(request["Model"], MlflowRegistry(settings.local_root).package_container)
            description = runner.run_transform(request["Transform"])
        else:
            description = runner.run_training(request)
        usage = description.get("LocalResourceUsage")
        if usage:  # what SageMaker's instance metrics would show: the evidence for choosing an instance type
            self.log.info("the job's peak memory %s MB, CPU %s s", f"{usage['PeakRssMB']:,.0f}",
                          f"{usage['CpuSeconds']:,.1f}")
        return description

    def on_kill(self) -> None:
        if self._runner is not None:
            self._runner.kill()
