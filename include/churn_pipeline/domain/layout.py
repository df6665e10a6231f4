"""Per-run names and places: the run key, job names and every artefact URI of a run.

A run's key comes from its logical date (or ``run_after`` for a manual run without one), so retries
of a run land in the same place and backfilled dates never collide.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from churn_pipeline.domain.contract import FILES
from churn_pipeline.domain.sagemaker_api import MAX_NAME_LENGTH, RESOURCE_NAME

_RUN_KEY = re.compile(r"^\d{8}T\d{6}Z$")
_ATTEMPT_SUFFIX = re.compile(r"-r(\d+)$")
# The name under which a run's key is recorded on what it creates: job tags, the model package's
# CustomerMetadataProperties, MLflow tags. Registration finds a run's version by it.
RUN_KEY_TAG = "run_key"


def run_key(logical_date: datetime | None, run_after: datetime) -> str:
    """``20261126T020000Z``: the run's moment in UTC, safe in S3 keys and SageMaker job names."""
    moment = logical_date or run_after
    if moment.tzinfo is None:
        raise ValueError(f"run dates must be time-zone aware, got {moment!r}")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def job_name(job_prefix: str, step: str, key: str, attempt: int = 1) -> str:
    """Deterministic per run, step and attempt: ``churn-train-20261126T020000Z`` then ``...-r2``."""
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    name = f"{job_prefix}-{step}-{key}" + (f"-r{attempt}" if attempt > 1 else "")
    if not RESOURCE_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid SageMaker job name (at most {MAX_NAME_LENGTH} of [a-zA-Z0-9-])")
    return name


def attempt_of(name: str) -> int:
    """The attempt number a job name carries (``...-r3`` -> 3; no suffix -> 1), read back on resume."""
    match = _ATTEMPT_SUFFIX.search(name)
    return int(match.group(1)) if match else 1


def registration_token(group: str, key: str) -> str:
    """``CreateModelPackage``'s ``ClientToken`` for a run's version: the same for the same group and
    run, different across groups; at most 36 of ``[a-zA-Z0-9-]``, as the API allows."""
    return f"churn-{key}-{hashlib.sha256(group.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class _KeyedPrefix:
    """A run's own prefix, ``<base>/<area>/<run key>``: a run writes there and nowhere else."""

    base_uri: str
    key: str
    area: ClassVar[str]

    def __post_init__(self) -> None:
        if not _RUN_KEY.match(self.key):
            raise ValueError(f"not a run key: {self.key!r}")

    @property
    def run_uri(self) -> str:
        return f"{self.base_uri}/{self.area}/{self.key}"


class _SparkJobPrefixes(_KeyedPrefix):
    """What a run's Spark jobs read besides their data, and where they write their own traces: the
    same places under a training run's prefix and a scoring run's."""

    @property
    def code_uri(self) -> str:
        """The scripts as shipped to processing jobs (a prefix)."""
        return f"{self.run_uri}/code"

    @property
    def py_files_uri(self) -> str:
        """The Spark engine's ``--py-files`` (a prefix holding ``churn_common.zip`` and nothing else)."""
        return f"{self.code_uri}/py-files"

    def spark_configuration_uri(self, step: str) -> str:
        """The Spark engine's ``configuration.json`` of ``step`` (its cluster sizes it)."""
        return f"{self.code_uri}/spark-conf/{step}/configuration.json"

    def spark_work_uri(self, job: str) -> str:
        """Where a Spark job's executors write what its driver then packs or reads (a saved model): on a
        cluster a folder on one host's disk is not the others'."""
        return f"{self.run_uri}/spark-work/{job}"

    def spark_event_logs_uri(self, job: str) -> str:
        """Where a Spark job's event logs stream to while it runs (what a history server reads)."""
        return f"{self.run_uri}/spark-events/{job}"


class RunLayout(_SparkJobPrefixes):
    """Where one training run reads and writes, under ``s3://<bucket>/<prefix>/runs/<run key>/``."""

    area = "runs"

    @property
    def sourcedir_uri(self) -> str:
        """The same scripts as the training container's ``sagemaker_submit_directory``."""
        return f"{self.run_uri}/code/sourcedir.tar.gz"

    @property
    def input_uri(self) -> str:
        """The run's own copy of its input: what extract_customers wrote (Parquet), or a plain-path
        input staged there (local backend), so that the run keeps what it read."""
        return f"{self.run_uri}/input"

    @property
    def schema_uri(self) -> str:
        return f"{self.run_uri}/schema/schema.json"

    def preprocessing_uri(self, output: str) -> str:
        return f"{self.run_uri}/preprocessing/{output}"

    @property
    def model_uri(self) -> str:
        """Training's ``S3OutputPath``; the archive lands at ``<this>/<job>/output/model.tar.gz``."""
        return f"{self.run_uri}/model"

    @property
    def evaluation_uri(self) -> str:
        return f"{self.run_uri}/evaluation"

    @property
    def champion_scores_uri(self) -> str:
        """The champion of the other engine, scored on this run's held-out customers in its own image."""
        return f"{self.run_uri}/champion-scores"

    @property
    def evaluation_file_uri(self) -> str:
        return f"{self.evaluation_uri}/{FILES['evaluation']}"

    @property
    def report_uri(self) -> str:
        return f"{self.run_uri}/report"

    @property
    def report_file_uri(self) -> str:
        """The run's report: one self-contained HTML file, written by the gate."""
        return f"{self.report_uri}/report.html"

    @property
    def decision_file_uri(self) -> str:
        """The gate's decision as JSON, beside the report: what the CLI and people read later."""
        return f"{self.report_uri}/decision.json"

    @property
    def engine_file_uri(self) -> str:
        """The engine stage_inputs chose for the run, and why (``engine.json``): what the summary and the
        report say, whichever task ends the run."""
        return f"{self.run_uri}/engine.json"

    @property
    def registration_record_uri(self) -> str:
        """Which model package version this run registered (SageMaker backend): found without a listing."""
        return f"{self.run_uri}/registration.json"

    @property
    def outcome_file_uri(self) -> str:
        """How the run ended, written by its last task (``run_summary``)."""
        return f"{self.run_uri}/outcome.json"

    @property
    def notifications_uri(self) -> str:
        """One marker per message the run sent, holding the message: sent at most once. Beside the
        run's prefix, not in it, so that a run whose prefix cannot be written still tells the team."""
        return f"{self.base_uri}/notifications/{self.area}/{self.key}"

    def notification_marker_uri(self, reason: str) -> str:
        return f"{self.notifications_uri}/{reason}.json"


def model_name(job_prefix: str, key: str) -> str:
    """The SageMaker Model a scoring run creates from the champion's package: one per run, reused by
    its attempts (``churn-model-20261126T060000Z``)."""
    name = f"{job_prefix}-model-{key}"
    if not RESOURCE_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid SageMaker model name (at most {MAX_NAME_LENGTH} of [a-zA-Z0-9-])")
    return name


class ScoringLayout(_SparkJobPrefixes):
    """Where one scoring run reads and writes, under ``s3://<bucket>/<prefix>/scoring/<run key>/``."""

    area = "scoring"

    @property
    def input_uri(self) -> str:
        """The customers as the scoring job reads them: JSON lines for Batch Transform, one customer per
        line (``input_file_uri``), or one Parquet file for a Spark champion (``parquet_input_file_uri``)."""
        return f"{self.run_uri}/input"

    @property
    def input_file_uri(self) -> str:
        return f"{self.input_uri}/customers.jsonl"

    @property
    def parquet_input_file_uri(self) -> str:
        return f"{self.input_uri}/customers.parquet"

    @property
    def spark_scores_uri(self) -> str:
        """Where a Spark champion's scoring job writes its joined lines (Spark's ``part-*.json`` files):
        Batch Transform's output, in Spark's parts."""
        return f"{self.run_uri}/spark-scores"

    @property
    def transform_output_uri(self) -> str:
        """The transform job's ``S3OutputPath``: ``customers.jsonl.out`` lands here."""
        return f"{self.run_uri}/transform"

    @property
    def scores_file_uri(self) -> str:
        return f"{self.run_uri}/scores.csv"

    @property
    def summary_file_uri(self) -> str:
        return f"{self.run_uri}/summary.json"

    def notification_marker_uri(self, reason: str) -> str:
        """As ``RunLayout.notification_marker_uri``: beside the scoring run's prefix, not in it."""
        return f"{self.base_uri}/notifications/{self.area}/{self.key}/{reason}.json"


def scored_champion_record_uri(base_uri: str, group: str, version: int) -> str:
    """The record that a scoring run published scores of this approved version
    (``scored-champions/<group>/v<N>.json``): one approval reaches scoring by more than one way on AWS
    (Airflow's own champion event, and SageMaker's EventBridge event of the same change), and this
    record is how the second event starts nothing."""
    return f"{base_uri}/scored-champions/{group}/v{version}.json"


def review_claim_uri(base_uri: str, group: str, version: int) -> str:
    """Which review run asks about this version (``reviews/<group>/v<N>.json``): a version is asked
    once, by the run of its own registration event or, where Airflow lost that event, by the next run."""
    return f"{base_uri}/reviews/{group}/v{version}.json"


class LabelsLayout(_KeyedPrefix):
    """Where an outcome run's ``extract_labels`` writes the labels it read from the source, under
    ``outcomes/labels/<run key>/``: the same extract as training's, kept apart from the training runs."""

    area = "outcomes/labels"

    @property
    def input_uri(self) -> str:
        return self.run_uri


@dataclass(frozen=True)
class OutcomeLayout:
    """Where the outcomes of past scores live, under ``s3://<bucket>/<prefix>/outcomes/``: one record per
    scoring cohort (written once, when its labels have matured) and one page over all of them."""

    base_uri: str

    @property
    def outcomes_uri(self) -> str:
        return f"{self.base_uri}/outcomes"

    def cohort_file_uri(self, cohort_key: str) -> str:
        return f"{self.outcomes_uri}/{cohort_key}/outcome.json"

    @property
    def page_uri(self) -> str:
        """The outcomes page: the cohort table and the realised against promised curves, self-contained."""
        return f"{self.outcomes_uri}/outcomes.html"

    @property
    def scoring_uri(self) -> str:
        """Every scoring run's prefix is below this one: each is a cohort."""
        return f"{self.base_uri}/{ScoringLayout.area}"

    def notification_marker_uri(self, cohort_key: str, reason: str) -> str:
        """A verdict is sent once per newest measured cohort: rerunning the DAG with nothing new sends nothing."""
        return f"{self.base_uri}/notifications/outcomes/{cohort_key}/{reason}.json"
