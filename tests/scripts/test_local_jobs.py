"""The local runner executes the very same request dicts SageMaker would get, honouring the container
contract: inputs staged, the script run, outputs stored (or none on failure), the model packed as
SageMaker packs it, and a description with status, times and failure reason recorded."""

from __future__ import annotations

import json
import sys
import tarfile
import time
from pathlib import Path

import pytest

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.model_defaults import metric_names
from churn_pipeline.domain.sagemaker_api import JobKind
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.local.image_twin import JobPython
from churn_pipeline.local.runner import LocalJobRunner
from tests.conftest import HEADER, SAMPLE_CSV
from tests.scripts.local_jobs import (
    IMAGE,
    KEY,
    SMALL_FOREST,
    LocalWorld,
    make_world,
    preprocess,
    preprocessed_request,
    run_log,
)

GZIP_MAGIC = b"\x1f\x8b"


@pytest.fixture()
def world(tmp_path: Path) -> LocalWorld:
    return make_world(tmp_path)


def test_processing_job_stages_inputs_runs_the_script_and_stores_outputs(world: LocalWorld) -> None:
    store, layout = world.store, world.layout
    store.upload_file(SAMPLE_CSV, world.settings.default_input_uri)

    description = preprocess(world, world.settings.default_input_uri)

    assert description["ProcessingJobStatus"] == "Completed"
    assert description["ProcessingEndTime"] >= description["ProcessingStartTime"]
    assert store.exists(f"{layout.preprocessing_uri('train')}/train.csv")
    assert store.exists(f"{layout.preprocessing_uri('quality')}/data_quality.json")
    assert any("splits: train" in line for line in world.lines), "the script's output reaches the task log"
    assert world.runner.describe(JobKind.PROCESSING, description["ProcessingJobName"]) == description
    assert not (store.root / "jobs" / description["ProcessingJobName"] / "ml").exists(), "scratch is removed"


def test_a_failing_script_ends_failed_with_its_message_and_stores_nothing(world: LocalWorld) -> None:
    layout = world.layout
    world.store.write_bytes(f"{layout.input_uri}/bad.csv", (HEADER + "\nC1,M,x,1,1,1,a,b,c,d,e,Maybe\n").encode())

    description = preprocess(world, layout.input_uri)

    assert description["ProcessingJobStatus"] == "Failed"
    assert "rejected its input" in description["ExitMessage"]
    assert description["FailureReason"].startswith("AlgorithmError: preprocessing rejected its input")
    assert not world.store.exists(layout.preprocessing_uri("train"))


def test_a_missing_input_fails_the_job_before_the_script_runs(world: LocalWorld) -> None:
    description = preprocess(world, f"{world.layout.run_uri}/nothing-here.csv")
    assert description["ProcessingJobStatus"] == "Failed"
    assert description["FailureReason"].startswith("ClientError: no object at")


def test_training_job_follows_script_mode_and_packs_model_tar_gz(world: LocalWorld) -> None:
    name = "churn-train-" + KEY

    description = world.runner.run_training(preprocessed_request(world, name, SMALL_FOREST))

    assert description["TrainingJobStatus"] == "Completed", description.get("FailureReason")
    artifact = description["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"{world.layout.model_uri}/{name}/output/model.tar.gz"
    packed = world.store.read_bytes(artifact)
    assert packed[:2] == GZIP_MAGIC, "the serving container and evaluation read a gzip tarball"
    with tarfile.open(world.store.path_for(artifact), mode="r:gz") as bundle:
        assert {"model.joblib", "schema.json", "code/inference.py"} <= set(bundle.getnames())
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in bundle.getmembers()} == {(0, 0, 0, "", "")}, \
            "packed like the code bundle: the same model gives the same archive"
    metrics = {m["MetricName"]: m["Value"] for m in description["FinalMetricDataList"]}
    assert set(metrics) == {f"validation:{n}" for n in metric_names()}


def test_without_the_twin_jobs_run_in_the_projects_environment_and_every_job_log_says_so(world: LocalWorld) -> None:
    fallback = JobPython(Path(sys.executable), is_twin=False, version="3.11", warning="WARNING: no image twin here")
    runner = LocalJobRunner(world.store, log=lambda line: None, python=fallback)
    name = "churn-train-" + KEY

    assert runner.run_training(preprocessed_request(world, name, SMALL_FOREST, runner))["TrainingJobStatus"] == \
        "Completed"
    for job in ("churn-preprocess-" + KEY, name):
        first_line = run_log(world, job).splitlines()[0]
        assert first_line == "WARNING: no image twin here", job
        assert f"job python: {sys.executable} (Python 3.11, the project's environment)" in run_log(world, job)


def test_a_local_task_that_finds_this_runs_job_running_waits_for_it_and_starts_no_other(tmp_path, monkeypatch) -> None:
    """Another worker's process still runs this run's preprocessing job (a task cleared while its
    job ran): the task waits for that job's end and hands on its result, with no second job."""
    import os
    import socket
    import subprocess
    import threading

    from churn_pipeline.domain.payloads import JobResult, StagedInputs
    from churn_pipeline.operators.local import LocalJobOperator

    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path / "root"))
    settings = load_settings()
    layout = RunLayout(settings.base_uri, KEY)
    name = f"churn-preprocess-{KEY}"
    jobs = settings.local_root / "jobs"
    (jobs / name).mkdir(parents=True)
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # the job's own process
    outputs = {"Outputs": [{"OutputName": "train", "S3Output": {
        "S3Uri": layout.preprocessing_uri("train"), "LocalPath": "/opt/ml/processing/output/train",
        "S3UploadMode": "EndOfJob"}}]}
    running = {"ProcessingJobName": name, "ProcessingJobStatus": "InProgress", "ProcessingOutputConfig": outputs,
               "LocalProcess": {"pid": owner.pid, "host": socket.gethostname()}}
    (jobs / name / "description.json").write_text(json.dumps(running))

    def the_job_ends() -> None:
        time.sleep(2.5)
        (jobs / name / "description.json").write_text(json.dumps({**running, "ProcessingJobStatus": "Completed"}))
        owner.kill()

    staged = StagedInputs(run_key=KEY, run_uri=layout.run_uri, input_uri=settings.default_input_uri,
                          schema_uri=layout.schema_uri, code_uri=layout.code_uri, image_uri=IMAGE)

    class TaskInstance:
        def xcom_push(self, key: str, value: object) -> None:
            raise AssertionError(f"nothing is pushed for a completed job, got {key}")

    ending = threading.Thread(target=the_job_ends)
    started = time.monotonic()
    ending.start()
    try:
        operator = LocalJobOperator(task_id="preprocess", step="preprocess", staged=staged.to_xcom())
        result = JobResult.from_xcom(operator.execute({"ti": TaskInstance(), "params": {}}))
    finally:
        ending.join()
        owner.kill()
        owner.wait()

    assert time.monotonic() - started >= 2.5, "the task waited for the job's end"
    assert (result.job_name, result.status, result.attempt, result.reused) == (name, "Completed", 1, False)
    assert result.outputs == {"train": layout.preprocessing_uri("train")}
    assert os.listdir(jobs) == [name], "no other job was started"
