"""Least-privilege IAM policies for this pipeline, rendered from the deployment settings.

``deploy/iam/airflow-policy.json`` is for the Airflow side (the MWAA execution role, or the
identity behind the ``aws_default`` connection); ``deploy/iam/sagemaker-execution-policy.json`` is
for the role in ``CHURN_ROLE_ARN`` that the jobs run as. Each allows exactly the calls the code makes,
on the configured bucket, prefix, job names, model package group and topic.

    CHURN_BACKEND=sagemaker CHURN_ROLE_ARN=... CHURN_SNS_TOPIC_ARN=... \\
        python -m churn_pipeline.tooling.iam --account-id 123456789012 --output-dir build/iam
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from churn_pipeline.domain.settings import PROJECT_DIR, Settings, SettingsError, load_settings

POLICY_DIR = PROJECT_DIR / "deploy" / "iam"
AIRFLOW_POLICY = "airflow-policy.json"
EXECUTION_POLICY = "sagemaker-execution-policy.json"


def _fill(template: str, values: dict[str, str]) -> Any:
    text = re.sub(r"\$\{([A-Z_]+)\}", lambda match: values[match.group(1)], template)
    return json.loads(text)


def queue_arn(queue_url: str, partition: str = "aws") -> str:
    """``https://sqs.<region>.amazonaws.com/<account>/<name>`` -> ``arn:aws:sqs:<region>:<account>:<name>``."""
    match = re.fullmatch(r"https://sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(\d{12})/([A-Za-z0-9_-]+(?:\.fifo)?)",
                         queue_url)
    if not match:
        raise ValueError(f"CHURN_APPROVAL_QUEUE_URL must be an SQS queue URL, got {queue_url!r}")
    region, account, name = match.groups()
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


def render_policies(settings: Settings, account_id: str, partition: str = "aws",
                    policy_dir: Path = POLICY_DIR) -> dict[str, dict[str, Any]]:
    """Both policy documents with every placeholder filled from ``settings``."""
    if not re.fullmatch(r"\d{12}", account_id):
        raise ValueError(f"the AWS account id must be 12 digits, got {account_id!r}")
    settings.require_sagemaker_resources()
    assert settings.role_arn is not None and settings.sns_topic_arn is not None  # required just above
    values = {
        "PARTITION": partition, "REGION": settings.region, "ACCOUNT_ID": account_id, "BUCKET": settings.bucket,
        "PREFIX": settings.prefix, "JOB_PREFIX": settings.job_prefix, "ROLE_ARN": settings.role_arn,
        "MODEL_PACKAGE_GROUP": settings.model_package_group, "SNS_TOPIC_ARN": settings.sns_topic_arn,
        "KMS_KEY_ID": settings.kms_key_id or "",
    }
    airflow = _fill((policy_dir / AIRFLOW_POLICY).read_text(), values)
    execution = _fill((policy_dir / EXECUTION_POLICY).read_text(), values)
    if settings.kms_key_id:
        kms = _fill((policy_dir / "kms-statement.json").read_text(), values)
        airflow["Statement"].append(kms)
        execution["Statement"].append(kms)
    if settings.subnets:
        execution["Statement"].append(_fill((policy_dir / "vpc-statement.json").read_text(), values))
    if settings.approval_queue_url:  # the champion asset's watcher reads SageMaker's approvals from SQS
        values["APPROVAL_QUEUE_ARN"] = queue_arn(settings.approval_queue_url, partition)
        airflow["Statement"].append(_fill((policy_dir / "approval-queue-statement.json").read_text(), values))
    return {AIRFLOW_POLICY: airflow, EXECUTION_POLICY: execution}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the pipeline's IAM policies from CHURN_* settings.")
    parser.add_argument("--account-id", required=True)
    parser.add_argument("--partition", default="aws")
    parser.add_argument("--output-dir", type=Path, default=Path("build/iam"))
    args = parser.parse_args(argv)
    try:
        policies = render_policies(load_settings(), args.account_id, args.partition)
    except (SettingsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, document in policies.items():
        (args.output_dir / name).write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.output_dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
