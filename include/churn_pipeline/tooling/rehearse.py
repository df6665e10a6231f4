"""Rehearse the production path: the MWAA bundle, in a twin of MWAA's worker, driving SageMaker jobs
that really run in the AWS emulation (``churn_pipeline.tooling.aws_emulation``).

For each MWAA Airflow version the project supports (``bundle.MWAA_VERSIONS``; ``--version`` picks):

1. builds the bundle with its requirements as wheels in plugins.zip, from the settings a deployment
   gives (region, role, topic, bucket, group), which reach the twin through startup.sh alone;
2. builds the twin (``churn_pipeline.tooling.mwaa_twin``): the image's packages exactly, the bundle
   applied as MWAA applies it, requirements.txt installed with no package index reachable;
3. checks what the components see: no DAG import error, no plugin;
4. starts the emulation and, in the twin with the sagemaker backend, runs the training DAG twice (a run
   that registers a version, and one whose gate rejects the model and notifies once), approves the
   version in SageMaker as a person would, runs scoring, and prints what each run did, read back from
   the emulated AWS (SageMaker's registry, S3, the team's topic).

    make rehearse [MWAA_VERSION=3.3.1]      (python -m churn_pipeline.tooling.rehearse [--version V])

Each Airflow run's log is in logs/rehearse/<version>-<run>.log; a failed step says which in one line.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from churn_pipeline.domain.settings import PROJECT_DIR
from churn_pipeline.local.image_twin import find_python
from churn_pipeline.tooling.bundle import MWAA_VERSIONS, BundleError, build, check_buildable
from churn_pipeline.tooling.mwaa_twin import Twin, TwinError, apply_bundle, build_venv, image_packages

REGION, ACCOUNT = "us-east-1", "123456789012"  # the emulation's account
BUCKET, PREFIX, GROUP = "churn-rehearsal", "ml/churn", "churn-rehearsal"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:churn-team"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/churn-sagemaker-execution"
SAMPLE = PROJECT_DIR / "include" / "data" / "customer_data.csv"
WORK = PROJECT_DIR / "build" / "rehearse"
LOGS = PROJECT_DIR / "logs" / "rehearse"
# What a deployment gives when it builds the bundle; the twin gets them from startup.sh alone
DEPLOYMENT = {"CHURN_REGION": REGION, "CHURN_ROLE_ARN": ROLE, "CHURN_SNS_TOPIC_ARN": TOPIC, "CHURN_BUCKET": BUCKET,
              "CHURN_PREFIX": PREFIX, "CHURN_MODEL_PACKAGE_GROUP": GROUP, "CHURN_RETRIES": "0",
              "CHURN_POLL_SECONDS": "1", "CHURN_RETRY_DELAY_SECONDS": "0"}
TRAINING, SCORING = "customer_churn_pipeline", "customer_churn_scoring"


class RehearsalFailed(Exception):
    """A step of the rehearsal did not do what production needs; the message names it."""


def say(line: str) -> None:
    print(line, flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def emulation(log: Path) -> Iterator[str]:
    """The AWS emulation on a loopback port for the rehearsal's lifetime; yields its URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "churn_pipeline.tooling.aws_emulation", "-H", "127.0.0.1",
                                    "-p", str(port)], stdout=output, stderr=subprocess.STDOUT, cwd=log.parent)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RehearsalFailed(f"the AWS emulation did not start (its log: {log})") from None
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def clients(url: str) -> dict[str, Any]:
    import boto3

    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    return {name: session.client(name, endpoint_url=url) for name in ("s3", "sns", "sqs", "sagemaker")}


def account_as_deployed(aws: dict[str, Any]) -> str:
    """The bucket with the customers, the team's topic and a queue subscribed to it; returns the queue."""
    aws["s3"].create_bucket(Bucket=BUCKET)
    aws["s3"].upload_file(str(SAMPLE), BUCKET, f"{PREFIX}/input-data/customer_data.csv")
    topic = aws["sns"].create_topic(Name=TOPIC.rsplit(":", 1)[1])["TopicArn"]
    queue = aws["sqs"].create_queue(QueueName="churn-team-inbox")["QueueUrl"]
    queue_arn = aws["sqs"].get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws["sns"].subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    return str(queue)


def airflow(twin: Twin, log: Path, *arguments: str, timeout: int = 1800) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        return subprocess.run([twin.airflow, *arguments], env=twin.env, stdout=output, stderr=subprocess.STDOUT,
                              cwd=twin.home, timeout=timeout).returncode


def airflow_json(twin: Twin, *arguments: str) -> Any:
    completed = subprocess.run([twin.airflow, *arguments, "--output", "json"], env=twin.env, capture_output=True,
                               text=True, cwd=twin.home, timeout=600)
    if completed.returncode != 0:
        raise RehearsalFailed(f"airflow {' '.join(arguments)} failed in the twin: "
                              f"{(completed.stderr.strip().splitlines() or ['?'])[-1]}")
    for line in reversed(completed.stdout.strip().splitlines()):  # the JSON comes last, after any log line
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return []  # Airflow prints no JSON when there is nothing to list


def build_twin(version: str, emulation_url: str) -> Twin:
    bundle_env = {**{k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}, **DEPLOYMENT}
    bundle = build(WORK / f"bundle-{version}", check_buildable(bundle_env), wheels=True, airflow_version=version,
                   environ=bundle_env)
    import zipfile

    with zipfile.ZipFile(bundle / "plugins.zip") as plugins:
        wheels = len(plugins.namelist())
    say(f"  bundle: {bundle.relative_to(PROJECT_DIR)} ({wheels} wheels in plugins.zip for the requirements)")
    python312 = find_python()
    if python312 is None:
        raise RehearsalFailed("no Python 3.12 on this machine: MWAA's workers run 3.12 (pyenv install 3.12)")
    uv = str(Path(sys.executable).with_name("uv"))
    venv = build_venv(version, WORK / f"twin-{version}", str(python312), uv, index=None)
    say(f"  twin: {venv.relative_to(PROJECT_DIR)}, the {len(image_packages(version))} packages of MWAA {version}'s "
        "image")
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION, "AWS_ENDPOINT_URL": emulation_url, "AIRFLOW_CONN_AWS_DEFAULT": "aws://"}
    twin = apply_bundle(version, venv, bundle, WORK / f"home-{version}", None, base)
    exported = sorted(name for name in twin.env if name.startswith("CHURN_"))
    say(f"  startup.sh exported {len(exported)} settings ({', '.join(exported[:4])}, ...); requirements.txt "
        "installed from plugins.zip with no package index reachable")
    return twin


# The DAG processor's parse (airflow/dag_processing/processor.py): a BundleDagBag of the dags-folder
# bundle, which puts the DAGs folder on sys.path only for the parse; the CLI's `dags list --local` does not.
PARSE_AS_THE_DAG_PROCESSOR = """
import json, os, pathlib
from airflow.dag_processing.dagbag import BundleDagBag
dags = pathlib.Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
bag = BundleDagBag(dags, bundle_path=dags, bundle_name="dags-folder")
try:  # Airflow 3.1+ with a standard provider that has human-in-the-loop operators: the review DAG exists
    import airflow.providers.standard.operators.hitl
    hitl = True
except Exception:
    hitl = False
print(json.dumps({"dags": sorted(bag.dag_ids), "hitl": hitl,
                  "errors": {path: error.strip().splitlines()[-1] for path, error in bag.import_errors.items()}}))
"""


def check_components(twin: Twin, version: str) -> None:
    if airflow(twin, LOGS / f"{version}-db-migrate.log", "db", "migrate") != 0:
        raise RehearsalFailed(f"airflow db migrate failed in the twin (log: {LOGS / f'{version}-db-migrate.log'})")
    completed = subprocess.run([str(twin.venv / "bin" / "python"), "-c", PARSE_AS_THE_DAG_PROCESSOR], env=twin.env,
                               capture_output=True, text=True, cwd=twin.home, timeout=600)
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["?"])[-1]
        raise RehearsalFailed(f"parsing the DAGs failed in the twin: {last}")
    parsed = json.loads(completed.stdout.strip().splitlines()[-1])
    if parsed["errors"]:
        path, error = next(iter(parsed["errors"].items()))
        raise RehearsalFailed(f"DAG import error on MWAA {version}: {Path(path).name}: {error}")
    dags = parsed["dags"]
    plugins = airflow_json(twin, "plugins")
    say(f"  DAGs: {', '.join(dags)}; import errors: none; plugins: {len(plugins) if plugins else 'none'}")
    review = ["customer_churn_review"] if parsed["hitl"] else []  # absent before Airflow 3.1 (MWAA 3.0.6)
    expected = sorted(["customer_churn_approval", "customer_churn_outcomes", TRAINING, SCORING, *review])
    if dags != expected:
        raise RehearsalFailed(f"the twin holds the DAGs {dags}, not {expected}")


def _key(date: str) -> str:
    return date.replace("-", "").replace(":", "")[:15] + "Z"


def read(aws: dict[str, Any], key: str) -> bytes:
    return bytes(aws["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read())


def run_dag(twin: Twin, version: str, name: str, dag: str, date: str, conf: dict[str, Any] | None = None) -> int:
    log = LOGS / f"{version}-{name}.log"
    arguments = ["dags", "test", dag, date] + (["--conf", json.dumps(conf)] if conf else [])
    say(f"  running {dag} for {date[:10]}{' with ' + json.dumps(conf) if conf else ''} (log: "
        f"{log.relative_to(PROJECT_DIR)}) ...")
    return airflow(twin, log, *arguments)


def rehearse_training(twin: Twin, version: str, aws: dict[str, Any], queue: str) -> str:
    date = "2026-11-20T02:00:00+00:00"
    status = run_dag(twin, version, "training-1", TRAINING, date)
    key = _key(date)
    packages = aws["sagemaker"].list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"] \
        if status == 0 else []
    if status != 0 or len(packages) != 1:
        raise RehearsalFailed(f"the first training run did not register a version (exit {status}; log: "
                              f"{LOGS / f'{version}-training-1.log'})")
    package = aws["sagemaker"].describe_model_package(ModelPackageName=packages[0]["ModelPackageArn"])
    evaluation = json.loads(read(aws, f"{PREFIX}/runs/{key}/evaluation/evaluation.json"))  # the job's own output
    report = read(aws, f"{PREFIX}/runs/{key}/report/report.html")
    jobs = [summary["ProcessingJobStatus"] for summary in aws["sagemaker"].list_processing_jobs()[
        "ProcessingJobSummaries"]] + [summary["TrainingJobStatus"] for summary in aws["sagemaker"].list_training_jobs()[
            "TrainingJobSummaries"]]
    say(f"    registered version {package['ModelPackageVersion']} ({package['ModelApprovalStatus']}): accuracy "
        f"{evaluation['metrics']['accuracy']:.3f}, roc_auc {evaluation['metrics']['roc_auc']:.3f} from the evaluation "
        f"job's evaluation.json; {len(jobs)} jobs ran ({', '.join(sorted(set(jobs)))}); report {len(report)} bytes")

    date = "2026-11-21T02:00:00+00:00"
    status = run_dag(twin, version, "training-2", TRAINING, date, {"accuracy_threshold": 0.99})
    messages = aws["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    packages = aws["sagemaker"].list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    if status == 0 or len(messages) != 1 or len(packages) != 1:
        raise RehearsalFailed(f"the second run was not rejected with one notification (exit {status}, "
                              f"{len(messages)} messages, {len(packages)} versions; log: "
                              f"{LOGS / f'{version}-training-2.log'})")
    body = json.loads(messages[0]["Body"])
    say(f"    rejected: accuracy {body['accuracy']:.3f} is below the threshold {body['threshold']}; one notification "
        f"to the team's topic ({body['reason']}); no version registered")
    return str(packages[0]["ModelPackageArn"])


def rehearse_scoring(twin: Twin, version: str, aws: dict[str, Any], package: str) -> None:
    aws["sagemaker"].update_model_package(ModelPackageArn=package, ModelApprovalStatus="Approved")
    say(f"  approved {package.rsplit('/', 2)[-2]} version {package.rsplit('/', 1)[-1]} in SageMaker's registry")
    date = "2026-11-22T06:00:00+00:00"
    status = run_dag(twin, version, "scoring", SCORING, date)
    if status != 0:
        raise RehearsalFailed(f"scoring failed (exit {status}; log: {LOGS / f'{version}-scoring.log'})")
    scores = list(csv.DictReader(io.StringIO(read(aws, f"{PREFIX}/scoring/{_key(date)}/scores.csv").decode())))
    top = ", ".join(f"{next(iter(row.values()))} {float(row['churn_probability']):.2f}" for row in scores[:3])
    say(f"    scored {len(scores)} customers with version {scores[0]['model_version']} (the transform job's output); "
        f"most at risk: {top}")


def rehearse(version: str) -> None:
    say(f"rehearsing the MWAA bundle on MWAA Airflow {version}, its SageMaker jobs run in the AWS emulation")
    with emulation(LOGS / f"{version}-emulation.log") as url:
        twin = build_twin(version, url)
        check_components(twin, version)
        aws = clients(url)
        queue = account_as_deployed(aws)
        package = rehearse_training(twin, version, aws, queue)
        rehearse_scoring(twin, version, aws, package)
    say(f"MWAA {version}: the bundle ran the whole path")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m churn_pipeline.tooling.rehearse",
                                     description="Rehearse the MWAA bundle in a twin of MWAA against the emulation.")
    parser.add_argument("--version", choices=MWAA_VERSIONS, action="append",
                        help="an MWAA Airflow version to rehearse (default: every one the project supports)")
    args = parser.parse_args(argv)
    try:
        for version in args.version or MWAA_VERSIONS:
            rehearse(version)
    except (RehearsalFailed, BundleError, TwinError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
