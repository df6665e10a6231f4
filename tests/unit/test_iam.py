"""The shipped IAM policies render for any settings and grant nothing the code does not call.
(That they grant everything it calls is checked on the recorded calls of the moto runs.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import airflow.providers.amazon.aws.hooks.sagemaker as provider_hook
import pytest

from churn_pipeline.iam import AIRFLOW_POLICY, EXECUTION_POLICY, main, render_policies
from churn_pipeline.settings import load_settings
from tests.conftest import PROJECT

SETTINGS = {"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/exec",
            "CHURN_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:team", "CHURN_BUCKET": "acme-ml",
            "CHURN_PREFIX": "churn", "CHURN_KMS_KEY_ID": "arn:aws:kms:us-east-1:123456789012:key/k",
            "CHURN_SUBNETS": "subnet-1", "CHURN_SECURITY_GROUP_IDS": "sg-1"}


def actions(policy: dict) -> set[str]:
    found = set()
    for statement in policy["Statement"]:
        found |= set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    return found


def test_policies_render_completely_for_every_option() -> None:
    policies = render_policies(load_settings(SETTINGS), "123456789012")
    text = json.dumps(policies)
    assert "${" not in text
    assert "arn:aws:s3:::acme-ml/churn/*" in text and "kms:Decrypt" in text and "ec2:CreateNetworkInterface" in text
    assert "arn:aws:sagemaker:us-east-1:123456789012:processing-job/churn-*" in text


def test_every_sagemaker_action_granted_to_airflow_is_called_by_the_code() -> None:
    code = "\n".join(p.read_text() for p in (PROJECT / "include" / "churn_pipeline").glob("*.py"))
    code += Path(provider_hook.__file__).read_text()
    for action in actions(render_policies(load_settings(SETTINGS), "123456789012")[AIRFLOW_POLICY]):
        service, name = action.split(":")
        if action in ("sagemaker:AddTags", "iam:PassRole") or service == "kms":
            continue  # implied by Tags, RoleArn and KMS keys in the create calls
        method = {"s3:GetObject": "get_object", "s3:PutObject": "put_object", "s3:DeleteObject": "delete_object",
                  "s3:ListBucket": "list_objects_v2", "sns:Publish": "publish"}.get(
            action, re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())
        assert method in code, f"{action} is granted but the code never calls {method}"


def test_the_execution_role_only_writes_under_runs() -> None:
    policy = render_policies(load_settings(SETTINGS), "123456789012")[EXECUTION_POLICY]
    writes = [s for s in policy["Statement"] if "s3:PutObject" in json.dumps(s["Action"])]
    assert [s["Resource"] for s in writes] == ["arn:aws:s3:::acme-ml/churn/runs/*"]


def test_cli_names_what_is_missing(capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CHURN_ROLE_ARN", raising=False)
    assert main(["--account-id", "123456789012", "--output-dir", str(tmp_path)]) == 1
    assert "CHURN_ROLE_ARN" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
