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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from churn_pipeline.domain.settings import PROJECT_DIR, Settings, SettingsError, load_settings

POLICY_DIR = PROJECT_DIR / "deploy" / "iam"
AIRFLOW_POLICY = "airflow-policy.json"
EXECUTION_POLICY = "sagemaker-execution-policy.json"
# statements added to the policies above when the setting they serve is set
KMS_STATEMENT = "kms-statement.json"
VPC_STATEMENT = "vpc-statement.json"
APPROVAL_QUEUE_STATEMENT = "approval-queue-statement.json"
# ``${NAME}`` in a string of a template; IAM's own policy variables (``${aws:username}``) are not ours
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def _filled(node: Any, values: Mapping[str, str], source: str) -> Any:
    """``node`` with every placeholder in its strings replaced: the values go in as data, so a quote or
    a backslash in a setting stays part of its string and cannot change the document around it."""
    if isinstance(node, dict):
        return {_filled(key, values, source): _filled(value, values, source) for key, value in node.items()}
    if isinstance(node, list):
        return [_filled(item, values, source) for item in node]
    if not isinstance(node, str):
        return node

    def value_of(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ValueError(f"{source} names ${{{match.group(1)}}}, which is not one of {', '.join(sorted(values))}")
        return values[match.group(1)]

    return PLACEHOLDER.sub(value_of, node)


def _document(policy_dir: Path, name: str, values: Mapping[str, str]) -> Any:
    """The template ``policy_dir/name`` as JSON data, its placeholders filled."""
    path = policy_dir / name
    try:
        template = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not JSON: {error}") from None
    return _filled(template, values, str(path))


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
    if settings.approval_queue_url:  # the champion asset's watcher reads SageMaker's approvals from SQS
        values["APPROVAL_QUEUE_ARN"] = queue_arn(settings.approval_queue_url, partition)
    airflow = _document(policy_dir, AIRFLOW_POLICY, values)
    execution = _document(policy_dir, EXECUTION_POLICY, values)
    if settings.kms_key_id:
        airflow["Statement"].append(_document(policy_dir, KMS_STATEMENT, values))
        execution["Statement"].append(_document(policy_dir, KMS_STATEMENT, values))
    if settings.subnets:
        execution["Statement"].append(_document(policy_dir, VPC_STATEMENT, values))
    if settings.approval_queue_url:
        airflow["Statement"].append(_document(policy_dir, APPROVAL_QUEUE_STATEMENT, values))
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
