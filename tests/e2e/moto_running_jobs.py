"""moto's server, with SageMaker jobs that run for a moment as real ones do.

moto completes a job the moment it is created, so a waiting task would never wait and a deferrable
one would never defer. Here each job's first description says ``InProgress`` and later ones tell
moto's own status: the synchronous wait polls again, the deferrable path hands the job to its
trigger, which polls through aiobotocore. Started by ``moto_server.MotoServer`` as

    python -m tests.e2e.moto_running_jobs -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from moto.sagemaker.models import SageMakerModelBackend
from moto.server import main

DESCRIPTIONS_WHILE_RUNNING = 1


def running_at_first(describe: Callable[..., dict[str, Any]], jobs: str,
                     status_field: str) -> Callable[..., dict[str, Any]]:
    # counted per job object: a job created again after a reset of the server runs again
    seen: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    def describe_as_running_at_first(backend: Any, *args: str, **kwargs: str) -> dict[str, Any]:
        answer = describe(backend, *args, **kwargs)  # raises for an unknown job, as SageMaker does
        (name,) = (*args, *kwargs.values())  # moto passes the job name by position or by keyword
        job = getattr(backend, jobs)[name]
        seen[job] = seen.get(job, 0) + 1
        if seen[job] <= DESCRIPTIONS_WHILE_RUNNING:
            return {**answer, status_field: "InProgress"}
        return answer

    return describe_as_running_at_first


SageMakerModelBackend.describe_processing_job = running_at_first(  # type: ignore[method-assign]
    SageMakerModelBackend.describe_processing_job, "processing_jobs", "ProcessingJobStatus")
SageMakerModelBackend.describe_training_job = running_at_first(  # type: ignore[method-assign]
    SageMakerModelBackend.describe_training_job, "training_jobs", "TrainingJobStatus")
SageMakerModelBackend.describe_transform_job = running_at_first(  # type: ignore[method-assign]
    SageMakerModelBackend.describe_transform_job, "transform_jobs", "TransformJobStatus")

if __name__ == "__main__":
    main()
