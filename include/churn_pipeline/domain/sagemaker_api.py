"""Names from SageMaker's API that the pipeline relies on, in one place: job kinds, job statuses and
the pattern of resource names. No AWS call; both backends speak these.
"""

from __future__ import annotations

import re
from enum import StrEnum

MAX_NAME_LENGTH = 63
# Job, model and model package group names: letters, digits and single or repeated hyphens inside.
RESOURCE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class JobKind(StrEnum):
    """The kind of a job, as it appears in the API's field names (``ProcessingJobName``, ...)."""

    PROCESSING = "Processing"
    TRAINING = "Training"
    TRANSFORM = "Transform"

    @property
    def name_field(self) -> str:
        return f"{self.value}JobName"

    @property
    def status_field(self) -> str:
        return f"{self.value}JobStatus"

    @property
    def end_time_field(self) -> str:
        return f"{self.value}EndTime"


IN_PROGRESS = "InProgress"
STOPPING = "Stopping"
COMPLETED = "Completed"
FAILED = "Failed"
STOPPED = "Stopped"
RUNNING_STATES = frozenset({IN_PROGRESS, STOPPING})
