"""Deployment settings: read once from ``CHURN_*`` environment variables into a frozen object.

Per-run choices (input, schema, threshold) are DAG ``Params``, not settings. Nothing here is secret:
AWS credentials come from the Airflow connection (``CHURN_AWS_CONN_ID``) or the standard chain.
Reading settings is cheap (no AWS call, no heavy import), so the DAG file may do it at parse time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

INCLUDE_DIR = Path(__file__).resolve().parent.parent
SCRIPTS_DIR = INCLUDE_DIR / "scripts"
CONFIG_DIR = INCLUDE_DIR / "config"
DEFAULT_SCHEMA_FILE = CONFIG_DIR / "schema.json"
SAMPLE_DATA_FILE = INCLUDE_DIR / "data" / "customer_data.csv"
PROJECT_DIR = INCLUDE_DIR.parent

BACKENDS = ("local", "sagemaker")
STEPS = ("preprocess", "train", "evaluate")
DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
MAX_JOB_PREFIX_LENGTH = 20  # leaves room for "-preprocess-<run key>-r<attempt>" within SageMaker's 63
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]{1,200}$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_JOB_PREFIX = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
_GROUP = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class SettingsError(ValueError):
    """A ``CHURN_*`` variable holds a value that cannot work; the message names it."""


@dataclass(frozen=True)
class StepResources:
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1


@dataclass(frozen=True)
class Settings:
    backend: str = "local"
    local_root: Path = PROJECT_DIR / "local-store"
    bucket: str = "customer-churn-pipeline"
    prefix: str = "churn-pipeline"
    role_arn: str | None = None
    region: str = "us-east-1"
    aws_conn_id: str = "aws_default"
    resources: Mapping[str, StepResources] = field(
        default_factory=lambda: {step: StepResources() for step in STEPS})
    volume_size_gb: int = 30
    max_runtime_seconds: int = 3600
    framework_version: str = "1.9-0"  # matches the pinned scikit-learn, so pickles load
    image_uri: str | None = None
    model_package_group: str = "customer-churn"
    sns_topic_arn: str | None = None
    kms_key_id: str | None = None
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    network_isolation: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    job_prefix: str = "churn"
    timezone: str = "UTC"
    retries: int = 2
    retry_delay_seconds: int = 300
    poll_seconds: int = 30

    @property
    def base_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def default_input_uri(self) -> str:
        return f"{self.base_uri}/input-data/customer_data.csv"

    def resources_for(self, step: str) -> StepResources:
        return self.resources[step]


def _text(environ: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = environ.get(name, "").strip()
    return value if value else default


def _integer(environ: Mapping[str, str], name: str, default: int, minimum: int, problems: list[str]) -> int:
    raw = _text(environ, name, None)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name} must be a whole number, got {raw!r}")
        return default
    if value < minimum:
        problems.append(f"{name} must be at least {minimum}, got {value}")
    return value


def _boolean(environ: Mapping[str, str], name: str, problems: list[str]) -> bool:
    raw = (_text(environ, name, "false") or "").lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        problems.append(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1", "yes")


def _list(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = _text(environ, name, "") or ""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _tags(environ: Mapping[str, str], problems: list[str]) -> dict[str, str]:
    tags = {}
    for item in _list(environ, "CHURN_TAGS"):
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            problems.append(f"CHURN_TAGS must look like 'team=ml,cost-center=42', got the item {item!r}")
            continue
        tags[key.strip()] = value.strip()
    return tags


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check every ``CHURN_*`` variable; one error lists every bad value."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    backend = (_text(environ, "CHURN_BACKEND", "local") or "local").lower()
    if backend not in BACKENDS:
        problems.append(f"CHURN_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}")
    defaults = Settings()
    resources = {}
    for step in STEPS:
        key = step.upper()
        instance_type = _text(environ, f"CHURN_{key}_INSTANCE_TYPE",
                              _text(environ, "CHURN_INSTANCE_TYPE", DEFAULT_INSTANCE_TYPE))
        if not _INSTANCE_TYPE.match(instance_type or ""):
            problems.append(f"CHURN_{key}_INSTANCE_TYPE must look like ml.m5.xlarge, got {instance_type!r}")
        count = _integer(environ, f"CHURN_{key}_INSTANCE_COUNT", 1, 1, problems)
        resources[step] = StepResources(instance_type=instance_type or DEFAULT_INSTANCE_TYPE, instance_count=count)

    settings = Settings(
        backend=backend,
        local_root=Path(_text(environ, "CHURN_LOCAL_ROOT", str(defaults.local_root))).expanduser().absolute(),
        bucket=_text(environ, "CHURN_BUCKET", defaults.bucket),
        prefix=(_text(environ, "CHURN_PREFIX", defaults.prefix) or "").strip("/"),
        role_arn=_text(environ, "CHURN_ROLE_ARN", None),
        region=_text(environ, "CHURN_REGION", _text(environ, "AWS_DEFAULT_REGION", defaults.region)),
        aws_conn_id=_text(environ, "CHURN_AWS_CONN_ID", defaults.aws_conn_id),
        resources=resources,
        volume_size_gb=_integer(environ, "CHURN_VOLUME_SIZE_GB", defaults.volume_size_gb, 1, problems),
        max_runtime_seconds=_integer(environ, "CHURN_MAX_RUNTIME_SECONDS", defaults.max_runtime_seconds, 60,
                                     problems),
        framework_version=_text(environ, "CHURN_FRAMEWORK_VERSION", defaults.framework_version),
        image_uri=_text(environ, "CHURN_IMAGE_URI", None),
        model_package_group=_text(environ, "CHURN_MODEL_PACKAGE_GROUP", defaults.model_package_group),
        sns_topic_arn=_text(environ, "CHURN_SNS_TOPIC_ARN", None),
        kms_key_id=_text(environ, "CHURN_KMS_KEY_ID", None),
        subnets=_list(environ, "CHURN_SUBNETS"),
        security_group_ids=_list(environ, "CHURN_SECURITY_GROUP_IDS"),
        network_isolation=_boolean(environ, "CHURN_NETWORK_ISOLATION", problems),
        tags=_tags(environ, problems),
        job_prefix=_text(environ, "CHURN_JOB_PREFIX", defaults.job_prefix),
        timezone=_text(environ, "CHURN_TIMEZONE", defaults.timezone),
        retries=_integer(environ, "CHURN_RETRIES", defaults.retries, 0, problems),
        retry_delay_seconds=_integer(environ, "CHURN_RETRY_DELAY_SECONDS", defaults.retry_delay_seconds, 0, problems),
        poll_seconds=_integer(environ, "CHURN_POLL_SECONDS", defaults.poll_seconds, 0, problems),
    )
    if not _BUCKET.match(settings.bucket) or ".." in settings.bucket:
        problems.append(f"CHURN_BUCKET must be a valid S3 bucket name, got {settings.bucket!r}")
    if not _PREFIX.match(settings.prefix) or ".." in settings.prefix.split("/"):
        problems.append(f"CHURN_PREFIX must be a plain S3 key prefix, got {settings.prefix!r}")
    if len(settings.job_prefix) > MAX_JOB_PREFIX_LENGTH or not _JOB_PREFIX.match(settings.job_prefix):
        problems.append(f"CHURN_JOB_PREFIX must be 1-{MAX_JOB_PREFIX_LENGTH} letters, digits or hyphens, "
                        f"got {settings.job_prefix!r}")
    if settings.role_arn and not _ROLE_ARN.match(settings.role_arn):
        problems.append(f"CHURN_ROLE_ARN must be an IAM role ARN, got {settings.role_arn!r}")
    if not _GROUP.match(settings.model_package_group):
        problems.append(f"CHURN_MODEL_PACKAGE_GROUP must be 1-63 letters, digits or hyphens, "
                        f"got {settings.model_package_group!r}")
    if bool(settings.subnets) != bool(settings.security_group_ids):
        problems.append("CHURN_SUBNETS and CHURN_SECURITY_GROUP_IDS must be set together (a VPC needs both)")
    if settings.sns_topic_arn and not settings.sns_topic_arn.startswith("arn:"):
        problems.append(f"CHURN_SNS_TOPIC_ARN must be an SNS topic ARN, got {settings.sns_topic_arn!r}")
    if problems:
        raise SettingsError("invalid churn pipeline settings:\n  - " + "\n  - ".join(problems))
    return settings
