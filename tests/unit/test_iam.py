"""The shipped IAM policies render for any settings. That they grant exactly what the code calls, no
more and no less, is checked against the calls recorded in the moto runs
(tests/e2e/test_sagemaker_backend.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from churn_pipeline.domain.settings import load_settings
from churn_pipeline.tooling.iam import AIRFLOW_POLICY, EXECUTION_POLICY, POLICY_DIR, main, render_policies

SETTINGS = {"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/exec",
            "CHURN_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:team", "CHURN_BUCKET": "acme-ml",
            "CHURN_PREFIX": "churn", "CHURN_KMS_KEY_ID": "arn:aws:kms:us-east-1:123456789012:key/k",
            "CHURN_SUBNETS": "subnet-1", "CHURN_SECURITY_GROUP_IDS": "sg-1"}


def test_policies_render_completely_for_every_option() -> None:
    policies = render_policies(load_settings(SETTINGS), "123456789012")
    text = json.dumps(policies)
    assert "${" not in text
    assert "arn:aws:s3:::acme-ml/churn/*" in text and "kms:Decrypt" in text and "ec2:CreateNetworkInterface" in text
    assert "arn:aws:sagemaker:us-east-1:123456789012:processing-job/churn-*" in text


def test_the_execution_role_only_writes_under_runs_and_scoring() -> None:
    policy = render_policies(load_settings(SETTINGS), "123456789012")[EXECUTION_POLICY]
    writes = [s for s in policy["Statement"] if "s3:PutObject" in json.dumps(s["Action"])]
    assert [s["Resource"] for s in writes] == [["arn:aws:s3:::acme-ml/churn/runs/*",
                                                "arn:aws:s3:::acme-ml/churn/scoring/*"]]


def test_airflow_may_abandon_uploads_only_of_the_extracts_objects() -> None:
    policy = render_policies(load_settings(SETTINGS), "123456789012")[AIRFLOW_POLICY]
    (statement,) = [s for s in policy["Statement"] if "s3:AbortMultipartUpload" in json.dumps(s["Action"])]
    assert statement["Resource"] == "arn:aws:s3:::acme-ml/churn/runs/*/input/*"


def test_cli_names_what_is_missing(capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CHURN_ROLE_ARN", raising=False)
    assert main(["--account-id", "123456789012", "--output-dir", str(tmp_path)]) == 1
    assert "CHURN_ROLE_ARN" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_watching_the_approvals_queue_grants_receiving_and_deleting_on_that_queue_only() -> None:
    queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/churn-approvals"
    with_queue = render_policies(load_settings({**SETTINGS, "CHURN_APPROVAL_QUEUE_URL": queue}), "123456789012")
    without = render_policies(load_settings(SETTINGS), "123456789012")
    added = [s for s in with_queue["airflow-policy.json"]["Statement"]
             if s not in without["airflow-policy.json"]["Statement"]]
    assert added == [{"Sid": "WatchTheApprovalsQueue", "Effect": "Allow",
                      "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
                      "Resource": "arn:aws:sqs:eu-west-1:123456789012:churn-approvals"}]
    with pytest.raises(ValueError, match="CHURN_APPROVAL_QUEUE_URL must be an SQS queue URL"):
        render_policies(load_settings({**SETTINGS, "CHURN_APPROVAL_QUEUE_URL": "churn-approvals"}), "123456789012")


def test_a_setting_goes_into_its_string_and_cannot_rewrite_the_statement_around_it() -> None:
    """Settings are filled in as data: a quote in one stays in its string (rendered as text and parsed,
    this key id would have replaced the statement's Action with "*")."""
    key = 'arn:aws:kms:us-east-1:123456789012:key/k", "Action": "*'
    policies = render_policies(load_settings({**SETTINGS, "CHURN_KMS_KEY_ID": key}), "123456789012")
    for document in policies.values():
        (statement,) = [s for s in document["Statement"] if s["Sid"] == "UseTheConfiguredKmsKey"]
        assert statement["Resource"] == key
        assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:DescribeKey"]


def test_a_placeholder_nothing_fills_is_named_and_iams_own_variables_stay(tmp_path: Path) -> None:
    for template in POLICY_DIR.glob("*.json"):
        shutil.copy(template, tmp_path / template.name)
    airflow = json.loads((tmp_path / AIRFLOW_POLICY).read_text())
    airflow["Statement"].append({"Sid": "OwnPrefix", "Effect": "Allow", "Action": "s3:GetObject",
                                 "Resource": "arn:${PARTITION}:s3:::${BUCKET}/home/${aws:username}/*"})
    (tmp_path / AIRFLOW_POLICY).write_text(json.dumps(airflow))
    rendered = render_policies(load_settings(SETTINGS), "123456789012", policy_dir=tmp_path)[AIRFLOW_POLICY]
    (own,) = [statement for statement in rendered["Statement"] if statement["Sid"] == "OwnPrefix"]
    assert own["Resource"] == "arn:aws:s3:::acme-ml/home/${aws:username}/*"

    airflow["Statement"][-1]["Resource"] = "arn:${PARTITION}:s3:::${BUKET}/*"
    (tmp_path / AIRFLOW_POLICY).write_text(json.dumps(airflow))
    with pytest.raises(ValueError, match=r"airflow-policy\.json names \$\{BUKET\}, which is not one of .*BUCKET"):
        render_policies(load_settings(SETTINGS), "123456789012", policy_dir=tmp_path)
