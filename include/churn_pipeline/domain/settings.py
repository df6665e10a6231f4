"""Deployment settings: ``CHURN_*`` environment variables read once into one frozen object.

Per-run choices (input, schema, thresholds) are DAG ``Params``, not settings. Nothing here is secret:
AWS credentials come from the Airflow connection (``CHURN_AWS_CONN_ID``) or the standard chain.
Reading settings is cheap (no AWS call, no heavy import), so the DAG file may do it at parse time;
each task reads them once when it starts and passes them down.

Every field is the variable ``CHURN_<FIELD>`` (``CHURN_REGION`` falls back to ``AWS_DEFAULT_REGION``);
an empty variable counts as unset. A bad value fails with one ``SettingsError`` that lists every bad
variable, so a deployment is fixed in one round.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from churn_pipeline.domain.costs import DEFAULT_INSTANCE_PRICES
from churn_pipeline.domain.s3_uris import BUCKET_NAME
from churn_pipeline.domain.sagemaker_api import RESOURCE_NAME
from churn_pipeline.domain.settings_sources import (
    comma_list,
    parse_risk_bands,
    parse_tags,
    problems,
    variable_values,
)
from churn_pipeline.domain.spark_image import spark_image_uri
from churn_pipeline.domain.steps import EVALUATE, PREPROCESS, SCORE, STEPS, TRAIN

INCLUDE_DIR = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = INCLUDE_DIR / "scripts"
CONFIG_DIR = INCLUDE_DIR / "config"
DEFAULT_SCHEMA_FILE = CONFIG_DIR / "schema.json"
SAMPLE_DATA_FILE = INCLUDE_DIR / "data" / "customer_data.csv"
PROJECT_DIR = INCLUDE_DIR.parent

DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
# The engines a run may ask for: auto chooses per run (domain.engine), the other two are taken as asked.
ENGINE_CHOICES = ("auto", "sklearn", "spark")
# The Spark cluster of each step on SageMaker, unless set: the research's sizing for 100 M customers
# (docs/aws.md, "The Spark engine"). ml.m5.4xlarge: 16 vCPU and 64 GiB, the type the Spark image's
# resource table sizes executors for; training holds the bagged points of every tree, so it gets most.
DEFAULT_SPARK_INSTANCE_TYPE = "ml.m5.4xlarge"
DEFAULT_SPARK_INSTANCE_COUNTS = {PREPROCESS: 2, TRAIN: 4, EVALUATE: 2, SCORE: 2}
# The local backend runs one Spark worker per instance on this machine: unless asked, one (local[*]).
LOCAL_SPARK_INSTANCE_COUNT = 1
DEFAULT_RISK_BANDS = {"high": 0.7, "medium": 0.4, "low": 0.0}
JOB_WAIT_SLACK_SECONDS = 1800  # provisioning an instance, pulling the image, uploading outputs
TASK_TIMEOUT_SLACK_SECONDS = 600
NON_JOB_TASK_TIMEOUT = timedelta(minutes=30)  # staging, gate, registration, notification
DAGRUN_TIMEOUT = timedelta(hours=23)
MAX_JOB_PREFIX_LENGTH = 20  # leaves room for "-preprocess-<run key>-r<attempt>" within SageMaker's 63
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]{1,200}$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_JOB_PREFIX = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
_CONN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")  # what Airflow accepts as a connection id
# Airflow 3.2 made retry_exponential_backoff the factor each retry multiplies the delay by (True
# still means 2.0 there); Airflow 3.0, which MWAA runs, takes only a bool and rejects a number when
# the DAG is parsed. So the number goes where the Task SDK takes it, True elsewhere.
RETRY_BACKOFF_FACTOR = 2.0
FIRST_TASK_SDK_WITH_BACKOFF_FACTOR = (1, 2)  # apache-airflow-task-sdk 1.2 came with Airflow 3.2


class SettingsError(ValueError):
    """One or more ``CHURN_*`` variables hold values that cannot work; the message names each."""


@dataclass(frozen=True)
class StepResources:
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1


@cache
def _task_sdk_version() -> str | None:
    """The installed Task SDK's version, read from its metadata: importing Airflow here would make
    reading settings heavy, and this module is Airflow-free."""
    try:
        return version("apache-airflow-task-sdk")
    except PackageNotFoundError:
        return None


def retry_exponential_backoff() -> float | bool:
    """``default_args["retry_exponential_backoff"]``: the delay doubles with each retry, said as the
    installed Airflow says it."""
    installed = _task_sdk_version()
    parts = re.match(r"(\d+)\.(\d+)", installed or "")
    if parts and (int(parts[1]), int(parts[2])) < FIRST_TASK_SDK_WITH_BACKOFF_FACTOR:
        return True
    return RETRY_BACKOFF_FACTOR


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    backend: Literal["local", "sagemaker"] = "local"
    local_root: Path = PROJECT_DIR / "local-store"
    bucket: str = "customer-churn-pipeline"
    prefix: str = "churn-pipeline"
    role_arn: str | None = None
    region: str = "us-east-1"  # CHURN_REGION, else AWS_DEFAULT_REGION
    aws_conn_id: str = "aws_default"
    instance_type: str = DEFAULT_INSTANCE_TYPE
    preprocess_instance_type: str | None = None  # None: instance_type
    train_instance_type: str | None = None
    evaluate_instance_type: str | None = None
    score_instance_type: str | None = None
    preprocess_instance_count: int = Field(1, ge=1)
    train_instance_count: int = Field(1, ge=1)
    evaluate_instance_count: int = Field(1, ge=1)
    score_instance_count: int = Field(1, ge=1)
    volume_size_gb: int = Field(30, ge=1)
    max_runtime_seconds: int = Field(3600, ge=60)
    framework_version: str = "1.9-0"  # the scikit-learn image whose versions requirements pin
    image_uri: str | None = None
    # Which engine runs the jobs: auto (per run: scikit-learn while every job fits its instance, Spark
    # past it), sklearn or spark; the run param engine overrides it per run
    engine: Literal["auto", "sklearn", "spark"] = "auto"
    spark_image_uri: str | None = None  # None: SageMaker's Spark processing image, pinned tag, for the region
    spark_preprocess_instance_type: str = DEFAULT_SPARK_INSTANCE_TYPE
    spark_train_instance_type: str = DEFAULT_SPARK_INSTANCE_TYPE
    spark_evaluate_instance_type: str = DEFAULT_SPARK_INSTANCE_TYPE
    spark_score_instance_type: str = DEFAULT_SPARK_INSTANCE_TYPE
    # None: DEFAULT_SPARK_INSTANCE_COUNTS on SageMaker, LOCAL_SPARK_INSTANCE_COUNT on the local backend
    spark_preprocess_instance_count: int | None = Field(None, ge=1, le=100)
    spark_train_instance_count: int | None = Field(None, ge=1, le=100)
    spark_evaluate_instance_count: int | None = Field(None, ge=1, le=100)
    spark_score_instance_count: int | None = Field(None, ge=1, le=100)
    model_package_group: str = "customer-churn"
    sns_topic_arn: str | None = None
    kms_key_id: str | None = None
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = Field((), validate_default=True)
    network_isolation: bool = False
    tags: Mapping[str, str] = Field(default_factory=dict)
    job_prefix: str = "churn"
    timezone: str = "UTC"
    retries: int = Field(2, ge=0)
    retry_delay_seconds: int = Field(300, ge=0)
    poll_seconds: int = Field(30, ge=0)
    # SageMaker job tasks wait in the triggerer instead of holding a worker slot (needs a triggerer)
    deferrable: bool = False
    # The scores' risk bands: a customer is in the first band whose lower bound its probability reaches
    risk_bands: Mapping[str, float] = Field(default_factory=lambda: dict(DEFAULT_RISK_BANDS))
    # A scored customer's value at risk is probability x the schema's value_column x this many periods
    # (MonthlyCharges x 12: a year of revenue)
    value_horizon_periods: float = Field(12.0, gt=0)
    # Outcomes of past scores (the customer_churn_outcomes DAG): the share of each scoring run's customers
    # held out of the campaign ("do not contact"), so that realised quality is measured unbiased by offers
    holdout_share: float = Field(0.05, ge=0.0, lt=1.0)
    # How long after scoring a cohort's churn labels are known (a churn shows when the period ends)
    label_horizon_days: int = Field(30, ge=0)
    # A cohort fails when realised ROC AUC or top-decile lift is below the promise by more than this share of it
    outcome_margin: float = Field(0.15, ge=0.0, lt=1.0)
    # A sustained failure (2 of the last 5 cohorts) also emits the churn_retrain asset, which starts training
    outcome_retrain: bool = False
    # Price per hour of each instance type, for each run's cost (domain.costs): "ml.m5.xlarge=0.23,..."
    instance_prices: Mapping[str, float] = Field(default_factory=lambda: dict(DEFAULT_INSTANCE_PRICES))
    # An SQS queue that EventBridge fills when a model package is approved in SageMaker; when set, the
    # scoring DAG's champion asset watches it, so that an approval schedules scoring (deploy/eventbridge/)
    approval_queue_url: str | None = None
    # Who may answer a version's review in Airflow (customer_churn_review): Airflow user ids, comma-
    # separated; none: anyone allowed to edit the DAG's required actions
    review_approvers: tuple[str, ...] = ()
    # A review unanswered this long rejects its version, saying so: a nightly pipeline would otherwise
    # leave a year's worth of versions waiting. A fraction of a day is allowed (0.5: twelve hours).
    review_timeout_days: float = Field(7.0, gt=0, le=365)
    # Where extract_customers reads the customers (unset: the run reads input_uri, a CSV by default).
    # The connection's type picks the transfer at run time; credentials stay in the connection.
    source_conn_id: str | None = None
    source_query: str | None = None  # SQL for a database connection (the source_query param overrides it)
    source_endpoint: str | None = None  # path of the export for an HTTP connection
    source_unload_conn_id: str | None = None  # Redshift: AWS connection whose extra names the UNLOAD role
    # The folders a plain-path input_uri / schema_uri may name (local backend), after symlinks are
    # resolved: set it on an Airflow that others trigger, so that a run reads only what was put there
    # for runs, not whatever the worker may read. Unset (a laptop): the operator's own files, anywhere.
    plain_path_roots: tuple[Path, ...] = ()

    # ------------------------------------------------------------------ parsing and checks

    @field_validator("backend", "engine", mode="before")
    @classmethod
    def _backend_in_any_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("local_root")
    @classmethod
    def _absolute_root(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        value = value.strip("/")
        if not _PREFIX.match(value) or ".." in value.split("/"):
            raise ValueError(f"must be a plain S3 key prefix, got {value!r}")
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if not BUCKET_NAME.match(value) or ".." in value:
            raise ValueError(f"must be a valid S3 bucket name, got {value!r}")
        return value

    @field_validator("instance_type", "preprocess_instance_type", "train_instance_type", "evaluate_instance_type",
                     "score_instance_type", "spark_preprocess_instance_type", "spark_train_instance_type",
                     "spark_evaluate_instance_type", "spark_score_instance_type")
    @classmethod
    def _instance_type(cls, value: str | None) -> str | None:
        if value is not None and not _INSTANCE_TYPE.match(value):
            raise ValueError(f"must look like ml.m5.xlarge, got {value!r}")
        return value

    @field_validator("plain_path_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("plain_path_roots")
    @classmethod
    def _resolved_roots(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        relative = [str(root) for root in value if not root.expanduser().is_absolute()]
        if relative:
            raise ValueError(f"must be absolute folders, separated by commas; not absolute: {', '.join(relative)}")
        return tuple(root.expanduser().resolve() for root in value)

    @field_validator("subnets", "security_group_ids", "review_approvers", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("tags", mode="before")
    @classmethod
    def _parse_tags(cls, value: Any) -> Any:
        return parse_tags(value)

    @field_validator("risk_bands", mode="before")
    @classmethod
    def _parse_bands(cls, value: Any) -> Any:
        return parse_risk_bands(value)

    @field_validator("instance_prices", mode="before")
    @classmethod
    def _parse_prices(cls, value: Any) -> Any:
        try:
            return parse_risk_bands(value)  # the same "name=number,..." form
        except ValueError:
            raise ValueError(f"must look like 'ml.m5.xlarge=0.23,ml.m5.large=0.115', got {value!r}") from None

    @field_validator("instance_prices")
    @classmethod
    def _prices_are_positive(cls, value: Mapping[str, float]) -> Mapping[str, float]:
        bad = {name: price for name, price in value.items() if not price > 0 or not _INSTANCE_TYPE.match(name)}
        if bad:
            raise ValueError(f"must be instance types with positive prices per hour, got {bad}")
        return value

    @field_validator("risk_bands")
    @classmethod
    def _bands_cover_every_probability(cls, value: Mapping[str, float]) -> Mapping[str, float]:
        bounds = list(value.values())
        if not value or any(not 0.0 <= bound <= 1.0 for bound in bounds) or bounds != sorted(bounds, reverse=True):
            raise ValueError(f"must be bands with lower bounds from high to low between 0 and 1, got {dict(value)}")
        if bounds[-1] != 0.0:
            raise ValueError(f"the last band must start at 0 so that every customer has one, got {dict(value)}")
        return value

    @field_validator("job_prefix")
    @classmethod
    def _job_prefix(cls, value: str) -> str:
        if len(value) > MAX_JOB_PREFIX_LENGTH or not _JOB_PREFIX.match(value):
            raise ValueError(f"must be 1-{MAX_JOB_PREFIX_LENGTH} letters, digits or hyphens, got {value!r}")
        return value

    @field_validator("role_arn")
    @classmethod
    def _role_arn(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_ARN.match(value):
            raise ValueError(f"must be an IAM role ARN, got {value!r}")
        return value

    @field_validator("source_conn_id", "source_unload_conn_id")
    @classmethod
    def _connection_id(cls, value: str | None) -> str | None:
        if value is not None and not _CONN_ID.match(value):
            raise ValueError(f"must be an Airflow connection id (letters, digits, '_', '-', '.'), got {value!r}")
        return value

    @field_validator("source_query", "source_endpoint", "source_unload_conn_id")
    @classmethod
    def _needs_a_source(cls, value: str | None, info: ValidationInfo) -> str | None:
        # an invalid CHURN_SOURCE_CONN_ID is absent from info.data and already reported on its own
        if value is not None and "source_conn_id" in info.data and not info.data["source_conn_id"]:
            raise ValueError("is set but CHURN_SOURCE_CONN_ID is not: name the Airflow connection of the source")
        return value

    @field_validator("model_package_group")
    @classmethod
    def _group(cls, value: str) -> str:
        if not RESOURCE_NAME.match(value):
            raise ValueError(f"must be 1-63 letters, digits or hyphens, got {value!r}")
        return value

    @field_validator("sns_topic_arn")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("arn:"):
            raise ValueError(f"must be an SNS topic ARN, got {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"must be an IANA time zone such as UTC or Europe/Berlin, got {value!r}") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _per_step_fallbacks(cls, values: Any) -> Any:
        """``CHURN_<STEP>_INSTANCE_TYPE`` falls back to ``CHURN_INSTANCE_TYPE``."""
        if isinstance(values, dict):
            shared = values.get("instance_type") or DEFAULT_INSTANCE_TYPE
            for step in STEPS:
                if not values.get(f"{step}_instance_type"):
                    values[f"{step}_instance_type"] = shared
        return values

    @field_validator("security_group_ids")
    @classmethod
    def _vpc_needs_both(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if bool(info.data.get("subnets")) != bool(value):
            raise ValueError("and CHURN_SUBNETS must be set together (a VPC needs both)")
        return value

    # ------------------------------------------------------------------ derived values

    @property
    def base_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def default_input_uri(self) -> str:
        return f"{self.base_uri}/input-data/customer_data.csv"

    @property
    def source_configured(self) -> bool:
        """True when extract_customers reads a source; otherwise the run reads ``input_uri``."""
        return self.source_conn_id is not None

    @property
    def review_timeout(self) -> timedelta:
        return timedelta(days=self.review_timeout_days)

    @property
    def job_wait_seconds(self) -> int:
        """How long a task waits for a job: its own runtime limit plus start-up and upload."""
        return self.max_runtime_seconds + JOB_WAIT_SLACK_SECONDS

    @property
    def job_task_timeout(self) -> timedelta:
        """A job task's ``execution_timeout``: past the wait, so that the wait's own message comes first."""
        return timedelta(seconds=self.job_wait_seconds + TASK_TIMEOUT_SLACK_SECONDS)

    @property
    def dagrun_timeout(self) -> timedelta:
        """A run never outlives the next night's: whatever hangs is failed before the next 02:00."""
        return DAGRUN_TIMEOUT

    @property
    def task_defaults(self) -> dict[str, Any]:
        """The DAGs' ``default_args``: retries with backoff, and a time limit on every task (job tasks
        set their own, longer one)."""
        return {"owner": "ml-platform", "retries": self.retries,
                "retry_delay": timedelta(seconds=self.retry_delay_seconds),
                "retry_exponential_backoff": retry_exponential_backoff(),
                "execution_timeout": NON_JOB_TASK_TIMEOUT}

    def resources_for(self, step: str) -> StepResources:
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; one of {', '.join(STEPS)}")
        return StepResources(instance_type=getattr(self, f"{step}_instance_type") or self.instance_type,
                             instance_count=getattr(self, f"{step}_instance_count"))

    def spark_resources_for(self, step: str) -> StepResources:
        """The Spark cluster of ``step``: ``CHURN_SPARK_<STEP>_INSTANCE_TYPE`` and ``_COUNT``."""
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; one of {', '.join(STEPS)}")
        count = getattr(self, f"spark_{step}_instance_count")
        if count is None:
            count = LOCAL_SPARK_INSTANCE_COUNT if self.backend == "local" else DEFAULT_SPARK_INSTANCE_COUNTS[step]
        return StepResources(instance_type=getattr(self, f"spark_{step}_instance_type"), instance_count=count)

    def spark_image(self) -> str:
        """The image of the Spark engine's jobs: ``CHURN_SPARK_IMAGE_URI``, else SageMaker's own Spark
        processing image (pinned tag) for the region; a region without one is a SettingsError."""
        if self.spark_image_uri:
            return self.spark_image_uri
        try:
            return spark_image_uri(self.region)
        except ValueError as error:
            raise SettingsError(f"{error}: set CHURN_SPARK_IMAGE_URI, or CHURN_REGION to one of those") from None

    def risk_band(self, probability: float) -> str:
        """The first band whose lower bound the probability reaches (the last starts at 0)."""
        for name, lower_bound in self.risk_bands.items():
            if probability >= lower_bound:
                return name
        return list(self.risk_bands)[-1]

    def missing_for_sagemaker(self) -> list[str]:
        """The settings the ``sagemaker`` backend cannot run without: the only place that rule lives."""
        required = (("CHURN_ROLE_ARN", self.role_arn), ("CHURN_SNS_TOPIC_ARN", self.sns_topic_arn))
        return [name for name, value in required if not value]

    def require_sagemaker_resources(self) -> None:
        missing = self.missing_for_sagemaker()
        if missing:
            raise SettingsError(f"the sagemaker backend needs {' and '.join(missing)} (the SageMaker execution "
                                "role the jobs run as, and the SNS topic the team is told on); see the settings table "
                                "in docs/settings.md")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check every ``CHURN_*`` variable (of ``environ``, default ``os.environ``)."""
    try:
        return Settings.model_validate(variable_values(Settings.model_fields, environ))
    except ValidationError as error:
        raise SettingsError("invalid churn pipeline settings:\n  - " + "\n  - ".join(problems(error))) from None
