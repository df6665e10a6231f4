"""Which IAM permission each recorded AWS call needs, and whether a policy document allows it."""

from __future__ import annotations

import itertools
import json
from fnmatch import fnmatchcase
from typing import Any

from tests.e2e.moto_server import RecordedCall

JOB_RESOURCE = {"Processing": "processing-job", "Training": "training-job", "Transform": "transform-job"}
# What SageMaker itself does with the execution role while it runs a job, which no recorder here can
# see: list the S3Prefix inputs, pull the image from ECR, write the job's logs, publish the metrics
# that MetricDefinitions scrape (AWS: "SageMaker Roles", CreateProcessingJob / CreateTrainingJob).
SAGEMAKER_PLATFORM_ACTIONS = frozenset({
    "s3:ListBucket", "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
    "ecr:GetAuthorizationToken", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
    "logs:DescribeLogStreams", "cloudwatch:PutMetricData",
})


def _sagemaker_arn(region: str, account: str, resource: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:{resource}"


def required_permissions(call: RecordedCall, region: str, account: str) -> list[tuple[str, str]]:
    """(IAM action, resource ARN) pairs the call needs; unknown calls raise so policies stay complete."""
    params = call.params
    if call.service == "sts":
        return []  # GetCallerIdentity needs no permission
    if call.service == "s3":
        bucket, _, key = call.path.lstrip("/").partition("/")
        object_arn, bucket_arn = f"arn:aws:s3:::{bucket}/{key}", f"arn:aws:s3:::{bucket}"
        action = {"PutObject": "s3:PutObject", "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
                  "CompleteMultipartUpload": "s3:PutObject", "AbortMultipartUpload": "s3:AbortMultipartUpload",
                  "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject", "DeleteObject": "s3:DeleteObject",
                  "ListBucket": "s3:ListBucket", "HeadBucket": "s3:ListBucket"}
        if call.action not in action:
            raise AssertionError(f"no IAM mapping for S3 call {call.action} {call.path}")
        return [(action[call.action], bucket_arn if call.action in ("ListBucket", "HeadBucket") else object_arn)]
    if call.service == "sns" and call.action == "Publish":
        return [("sns:Publish", params["TopicArn"])]
    if call.service == "logs" and call.action in ("DescribeLogStreams", "GetLogEvents"):
        group = f"arn:aws:logs:{region}:{account}:log-group:{params['logGroupName']}"
        if call.action == "DescribeLogStreams":  # IAM names a group by its ARN with ":*" for this action
            return [("logs:DescribeLogStreams", f"{group}:*")]
        return [("logs:GetLogEvents", f"{group}:log-stream:{params['logStreamName']}")]
    if call.service != "sagemaker":
        raise AssertionError(f"no IAM mapping for {call.service}:{call.action}")
    for kind, resource in JOB_RESOURCE.items():
        if call.action.endswith(f"{kind}Job"):
            arn = _sagemaker_arn(region, account, f"{resource}/{params[f'{kind}JobName']}")
            needed = [(f"sagemaker:{call.action}", arn)]
            if params.get("Tags"):
                needed.append(("sagemaker:AddTags", arn))
            if params.get("RoleArn"):
                needed.append(("iam:PassRole", params["RoleArn"]))
            return needed
    if call.action in ("CreateModel", "DescribeModel"):
        arn = _sagemaker_arn(region, account, f"model/{params['ModelName']}")
        needed = [(f"sagemaker:{call.action}", arn)]
        if params.get("Tags"):
            needed.append(("sagemaker:AddTags", arn))
        if params.get("ExecutionRoleArn"):
            needed.append(("iam:PassRole", params["ExecutionRoleArn"]))
        return needed
    group = params.get("ModelPackageGroupName")
    if call.action in ("CreateModelPackageGroup", "DescribeModelPackageGroup"):
        return [(f"sagemaker:{call.action}", _sagemaker_arn(region, account, f"model-package-group/{group}"))]
    if call.action == "CreateModelPackage":
        arn = _sagemaker_arn(region, account, f"model-package/{group}/next")
        return [("sagemaker:CreateModelPackage", arn)] + ([("sagemaker:AddTags", arn)] if params.get("Tags") else [])
    if call.action == "UpdateModelPackage":
        return [("sagemaker:UpdateModelPackage", params["ModelPackageArn"])]
    if call.action == "DescribeModelPackage":
        return [("sagemaker:DescribeModelPackage", params["ModelPackageName"])]
    if call.action == "UpdateModelPackage":
        return [("sagemaker:UpdateModelPackage", params["ModelPackageArn"])]
    if call.action == "ListModelPackages":
        return [("sagemaker:ListModelPackages", "*")]
    raise AssertionError(f"no IAM mapping for sagemaker:{call.action}")


def granted_actions(policy: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for statement in policy["Statement"]:
        if statement["Effect"] == "Allow":
            found |= set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    return found


def allows(policy: dict[str, Any], action: str, resource: str) -> bool:
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if any(fnmatchcase(action, pattern) for pattern in actions) and \
                any(fnmatchcase(resource, pattern) for pattern in resources):
            return True
    return False


def job_data_permissions(call: RecordedCall) -> list[tuple[str, str]]:
    """What the execution role needs for a job's own reads and writes."""
    def object_arn(uri: str, below: bool) -> str:
        return "arn:aws:s3:::" + uri.removeprefix("s3://") + ("/part-0" if below else "")

    params, needed = call.params, []
    for item in params.get("ProcessingInputs", []):
        needed.append(("s3:GetObject", object_arn(item["S3Input"]["S3Uri"], True)))
    for item in params.get("ProcessingOutputConfig", {}).get("Outputs", []):
        needed.append(("s3:PutObject", object_arn(item["S3Output"]["S3Uri"], True)))
    for channel in params.get("InputDataConfig", []):
        needed.append(("s3:GetObject", object_arn(channel["DataSource"]["S3DataSource"]["S3Uri"], True)))
    if "TransformInput" in params:
        source = params["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        needed.append(("s3:GetObject", object_arn(source, True)))
        needed.append(("s3:PutObject", object_arn(params["TransformOutput"]["S3OutputPath"], True)))
    if "OutputDataConfig" in params:
        needed.append(("s3:PutObject", object_arn(params["OutputDataConfig"]["S3OutputPath"], True)))
    needed += spark_data_permissions(params)
    submit = params.get("HyperParameters", {}).get("sagemaker_submit_directory")
    if submit and json.loads(submit).startswith("s3://"):
        needed.append(("s3:GetObject", object_arn(json.loads(submit), False)))
    return needed


def spark_data_permissions(params: dict) -> list[tuple[str, str]]:
    """A Spark job's own reads and writes: the data sets its arguments name, which Spark reads and
    writes through S3A (not through ProcessingInputs). Writing commits through a ``_temporary`` folder
    that Spark then deletes, and an overwrite deletes the output's earlier parts: both DeleteObject."""
    from churn_pipeline.requests import spark

    entrypoint = params.get("AppSpecification", {}).get("ContainerEntrypoint", [])
    if not entrypoint or entrypoint[0] != spark.SMSPARK_SUBMIT:
        return []
    arguments = params["AppSpecification"].get("ContainerArguments", [])
    needed = []
    for option, value in itertools.pairwise(arguments):
        if not value.startswith("s3://"):
            continue
        arn = "arn:aws:s3:::" + value.removeprefix("s3://").rstrip("/") + "/part-0"
        if option in spark.READ_ARGUMENTS:
            needed.append(("s3:GetObject", arn))
        elif option in spark.WRITTEN_ARGUMENTS:
            needed += [("s3:PutObject", arn), ("s3:DeleteObject", arn)]
        else:
            raise AssertionError(f"a Spark job's argument {option} names {value}: is it read or written?")
    return needed
