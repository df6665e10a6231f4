"""What a job task does, independent of the backend: which job to run, reuse or await, which request
to send for each step, and what to hand downstream. Pure functions; no AWS or Airflow call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from churn_pipeline import job_requests
from churn_pipeline.layout import RunLayout, job_name
from churn_pipeline.settings import Settings

PROCESSING = "Processing"
TRAINING = "Training"
KIND_OF_STEP = {"preprocess": PROCESSING, "train": TRAINING, "evaluate": PROCESSING}
RUNNING = ("InProgress", "Stopping")
MAX_ATTEMPTS = 20
# The container scripts put this phrase in the failure reason of input that breaks the contract
# (include/scripts/churn_common.py, BAD_INPUT_PHRASE); such a job is not worth paying for again.
BAD_INPUT_PHRASE = "rejected its input"


@dataclass(frozen=True)
class AttemptPlan:
    action: str  # "reuse" a Completed job, "await" a running one, or "start" a new one
    job_name: str
    attempt: int
    description: Mapping[str, Any] | None = None


def plan_attempt(kind: str, job_prefix: str, step: str, run_key: str,
                 describe: Callable[[str], Mapping[str, Any] | None]) -> AttemptPlan:
    """Walk this run's attempts of a step in order: reuse the Completed one, await a running one, or
    start the next attempt after the last Failed / Stopped one. Never renames unpredictably."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        name = job_name(job_prefix, step, run_key, attempt)
        description = describe(name)
        if description is None:
            return AttemptPlan("start", name, attempt)
        status = description[f"{kind}JobStatus"]
        if status == "Completed":
            return AttemptPlan("reuse", name, attempt, description)
        if status in RUNNING:
            return AttemptPlan("await", name, attempt, description)
    raise RuntimeError(f"{step} failed {MAX_ATTEMPTS} times for run {run_key}; clear the run's jobs before retrying")


def step_request(step: str, settings: Settings, layout: RunLayout, name: str, staged: Mapping[str, Any],
                 upstream: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The request for ``step``, from the staged inputs and the upstream tasks' real results."""
    image_uri = staged["image_uri"]
    if step == "preprocess":
        return job_requests.preprocess_request(settings, layout, job_name=name, image_uri=image_uri,
                                               input_uri=staged["input_uri"], schema_uri=staged["schema_uri"])
    splits = upstream["preprocess"]["outputs"]
    if step == "train":
        channels = {channel: splits[channel] for channel in job_requests.TRAINING_CHANNELS}
        return job_requests.train_request(settings, layout, job_name=name, image_uri=image_uri, channels=channels)
    if step == "evaluate":
        return job_requests.evaluate_request(settings, layout, job_name=name, image_uri=image_uri,
                                             model_artifact_uri=upstream["train"]["outputs"]["model"],
                                             test_uri=splits["test"])
    raise ValueError(f"unknown step {step!r}")


def job_result(kind: str, description: Mapping[str, Any], *, reused: bool, attempt: int) -> dict[str, Any]:
    """The small, JSON-safe summary a job task returns: real job name, status and artefact URIs."""
    if kind == PROCESSING:
        outputs = {item["OutputName"]: item["S3Output"]["S3Uri"]
                   for item in description["ProcessingOutputConfig"]["Outputs"]}
        metrics: dict[str, float] = {}
    else:
        outputs = {"model": description["ModelArtifacts"]["S3ModelArtifacts"]}
        metrics = {item["MetricName"]: float(item["Value"]) for item in description.get("FinalMetricDataList", [])}
    return {
        "job_name": description[f"{kind}JobName"],
        "status": description[f"{kind}JobStatus"],
        "attempt": attempt,
        "reused": reused,
        "outputs": outputs,
        "metrics": metrics,
    }


def failure_reason(kind: str, description: Mapping[str, Any]) -> str:
    status = description.get(f"{kind}JobStatus", "unknown")
    reason = description.get("ExitMessage") or description.get("FailureReason") or "no reason given"
    return f"{kind.lower()} job {description.get(f'{kind}JobName')} ended {status}: {reason}"


def is_bad_input(reason: str) -> bool:
    return BAD_INPUT_PHRASE in reason
