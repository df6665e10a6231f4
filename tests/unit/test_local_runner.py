"""The local runner executes the very same request dicts SageMaker would get, honouring the container
contract, and records a description with status, times and failure reason."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from churn_pipeline import request_builders
from churn_pipeline.attempt_planning import plan_attempt
from churn_pipeline.layout import RunLayout
from churn_pipeline.local_runner import LocalJobRunner, deterministic_tar
from churn_pipeline.objectstore import LocalObjectStore, upload_tree
from churn_pipeline.sagemaker_api import JobKind
from churn_pipeline.settings import SCRIPTS_DIR, load_settings
from tests.conftest import HEADER, SAMPLE_CSV, make_rows, write_csv

KEY = "20261126T020000Z"
IMAGE = "local/sklearn"


@pytest.fixture()
def world(tmp_path: Path):
    settings = load_settings({"CHURN_LOCAL_ROOT": str(tmp_path / "root")})
    store = LocalObjectStore(settings.local_root)
    layout = RunLayout(settings.base_uri, KEY)
    upload_tree(store, SCRIPTS_DIR, layout.code_uri)
    store.write_bytes(layout.sourcedir_uri, deterministic_tar(SCRIPTS_DIR))
    store.upload_file(Path("include/config/schema.json"), layout.schema_uri)
    lines: list[str] = []
    return settings, store, layout, LocalJobRunner(store, log=lines.append), lines


def preprocess(settings, store, layout, runner, input_uri, name="churn-preprocess-" + KEY):
    request = request_builders.preprocess_request(settings, layout, job_name=name, image_uri=IMAGE,
                                              input_uri=input_uri, schema_uri=layout.schema_uri)
    return runner.run_processing(request)


def test_processing_job_stages_inputs_runs_the_script_and_stores_outputs(world) -> None:
    settings, store, layout, runner, lines = world
    store.upload_file(SAMPLE_CSV, settings.default_input_uri)

    description = preprocess(settings, store, layout, runner, settings.default_input_uri)

    assert description["ProcessingJobStatus"] == "Completed"
    assert description["ProcessingEndTime"] >= description["ProcessingStartTime"]
    assert store.exists(f"{layout.preprocessing_uri('train')}/train.csv")
    assert store.exists(f"{layout.preprocessing_uri('quality')}/data_quality.json")
    assert any("splits: train" in line for line in lines), "the script's output reaches the task log"
    assert runner.describe(JobKind.PROCESSING, description["ProcessingJobName"]) == description
    assert not (store.root / "jobs" / description["ProcessingJobName"] / "ml").exists(), "scratch is removed"


def test_a_failing_script_ends_failed_with_its_message_and_stores_nothing(world, tmp_path: Path) -> None:
    settings, store, layout, runner, _ = world
    store.write_bytes(f"{layout.input_uri}/bad.csv", (HEADER + "\nC1,M,x,1,1,1,a,b,c,d,e,Maybe\n").encode())

    description = preprocess(settings, store, layout, runner, layout.input_uri)

    assert description["ProcessingJobStatus"] == "Failed"
    assert "rejected its input" in description["ExitMessage"]
    assert description["FailureReason"].startswith("AlgorithmError: preprocessing rejected its input")
    assert not store.exists(layout.preprocessing_uri("train"))


def test_a_missing_input_fails_the_job_before_the_script_runs(world) -> None:
    settings, store, layout, runner, _ = world
    description = preprocess(settings, store, layout, runner, f"{layout.run_uri}/nothing-here.csv")
    assert description["ProcessingJobStatus"] == "Failed"
    assert description["FailureReason"].startswith("ClientError: no object at")


def test_training_job_follows_script_mode_and_packs_model_tar_gz(world) -> None:
    settings, store, layout, runner, _ = world
    write_csv(Path(store.root) / "in" / "data.csv", [HEADER] + make_rows(200))
    upload_tree(store, Path(store.root) / "in", layout.input_uri)
    assert preprocess(settings, store, layout, runner, layout.input_uri)["ProcessingJobStatus"] == "Completed"
    name = "churn-train-" + KEY
    request = request_builders.train_request(
        settings, layout, job_name=name, image_uri=IMAGE,
        channels={c: layout.preprocessing_uri(c) for c in request_builders.TRAINING_CHANNELS},
        hyperparameters={"n-estimators": 5, "max-depth": 3, "min-samples-split": 4, "random-state": 1})

    description = runner.run_training(request)

    assert description["TrainingJobStatus"] == "Completed", description.get("FailureReason")
    artifact = description["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"{layout.model_uri}/{name}/output/model.tar.gz"
    archive = store.path_for(artifact)
    with tarfile.open(archive) as bundle:
        assert {"model.joblib", "schema.json", "code/inference.py"} <= set(bundle.getnames())
    metrics = {m["MetricName"]: m["Value"] for m in description["FinalMetricDataList"]}
    assert set(metrics) == {f"validation:{n}" for n in request_builders.metric_names()}


def test_a_job_whose_process_died_reads_as_failed(world) -> None:
    _, store, _, runner, _ = world
    name = "churn-train-" + KEY
    path = store.root / "jobs" / name / "description.json"
    path.parent.mkdir(parents=True)
    import socket

    path.write_text(json.dumps({"TrainingJobName": name, "TrainingJobStatus": "InProgress",
                                "LocalProcess": {"pid": 2 ** 22 + 12345, "host": socket.gethostname()}}))
    description = runner.describe(JobKind.TRAINING, name)
    assert description["TrainingJobStatus"] == "Failed"
    assert "ended before the job did" in description["FailureReason"]


def test_attempts_reuse_completed_await_running_and_retry_after_failed() -> None:
    jobs: dict[str, dict] = {}

    def describe(name: str):
        return jobs.get(name)

    plan = plan_attempt(JobKind.PROCESSING, "churn", "preprocess", KEY, describe)
    assert (plan.action, plan.job_name) == ("start", "churn-preprocess-" + KEY)
    jobs[plan.job_name] = {"ProcessingJobStatus": "InProgress"}
    assert plan_attempt(JobKind.PROCESSING, "churn", "preprocess", KEY, describe).action == "await"
    jobs[plan.job_name] = {"ProcessingJobStatus": "Failed"}
    retry = plan_attempt(JobKind.PROCESSING, "churn", "preprocess", KEY, describe)
    assert (retry.action, retry.job_name, retry.attempt) == ("start", f"churn-preprocess-{KEY}-r2", 2)
    jobs[retry.job_name] = {"ProcessingJobStatus": "Stopped"}
    jobs[f"churn-preprocess-{KEY}-r3"] = {"ProcessingJobStatus": "Completed"}
    reuse = plan_attempt(JobKind.PROCESSING, "churn", "preprocess", KEY, describe)
    assert (reuse.action, reuse.attempt) == ("reuse", 3)


def test_deterministic_tar_is_byte_identical_for_identical_trees(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name / "code").mkdir(parents=True)
        (tmp_path / name / "code" / "x.py").write_text("print(1)\n")
        (tmp_path / name / "model.bin").write_bytes(b"\x00\x01")
    assert deterministic_tar(tmp_path / "a") == deterministic_tar(tmp_path / "b")
