"""The local runner executes the very same request dicts SageMaker would get, in the image twin (the
SageMaker image's Python environment), honouring the container contract and the job's time limit, and
records a description with status, times and failure reason."""

from __future__ import annotations

import json
import sys
import tarfile
import time
from pathlib import Path

import pytest

from churn_pipeline.domain.attempt_planning import plan_attempt
from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.model_defaults import metric_names
from churn_pipeline.domain.sagemaker_api import JobKind
from churn_pipeline.domain.settings import SCRIPTS_DIR, load_settings
from churn_pipeline.local.image_twin import JobPython
from churn_pipeline.local.runner import LocalJobRunner
from churn_pipeline.requests.processing import preprocess_request, processing_request
from churn_pipeline.requests.training import TRAINING_CHANNELS, train_request
from churn_pipeline.services.archives import deterministic_tar
from churn_pipeline.services.objectstore import LocalObjectStore, upload_tree
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
    request = preprocess_request(settings, layout, job_name=name, image_uri=IMAGE,
                                              input_uri=input_uri, schema_uri=layout.schema_uri)
    return runner.run_processing(request)


def train_on_preprocessed_rows(world, name: str, hyperparameters: dict) -> dict:
    """Preprocess 200 rows, then run a training job on the splits as the DAG would."""
    settings, store, layout, runner, _ = world
    write_csv(Path(store.root) / "in" / "data.csv", [HEADER] + make_rows(200))
    upload_tree(store, Path(store.root) / "in", layout.input_uri)
    assert preprocess(settings, store, layout, runner, layout.input_uri)["ProcessingJobStatus"] == "Completed"
    request = train_request(
        settings, layout, job_name=name, image_uri=IMAGE,
        channels={c: layout.preprocessing_uri(c) for c in TRAINING_CHANNELS},
        hyperparameters=hyperparameters)
    return runner.run_training(request)


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
    _, store, layout, _, _ = world
    name = "churn-train-" + KEY

    description = train_on_preprocessed_rows(world, name, {"n-estimators": 5, "max-depth": 3,
                                                           "min-samples-split": 4, "random-state": 1})

    assert description["TrainingJobStatus"] == "Completed", description.get("FailureReason")
    artifact = description["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"{layout.model_uri}/{name}/output/model.tar.gz"
    archive = store.path_for(artifact)
    with tarfile.open(archive) as bundle:
        assert {"model.joblib", "schema.json", "code/inference.py"} <= set(bundle.getnames())
    metrics = {m["MetricName"]: m["Value"] for m in description["FinalMetricDataList"]}
    assert set(metrics) == {f"validation:{n}" for n in metric_names()}


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


# ---------------------------------------------------------------------------------- the image twin


def run_log(store: LocalObjectStore, name: str) -> str:
    return (store.root / "jobs" / name / "output.log").read_text()


def ship_code(store: LocalObjectStore, layout: RunLayout, folder: Path, files: dict[str, str]) -> None:
    """Replace the run's code (loose files and sourcedir.tar.gz) with ``files``."""
    for file_name, text in files.items():
        (folder / file_name).parent.mkdir(parents=True, exist_ok=True)
        (folder / file_name).write_text(text)
    upload_tree(store, folder, layout.code_uri)
    store.write_bytes(layout.sourcedir_uri, deterministic_tar(folder))


def bare_training_request(settings, store, layout, name: str, max_runtime: int = 600) -> dict:
    """A training request whose channels hold a placeholder file: for scripts that read no data."""
    for channel in TRAINING_CHANNELS:
        store.write_bytes(f"{layout.run_uri}/bare/{channel}/part.csv", b"x\n")
    request = train_request(
        settings, layout, job_name=name, image_uri=IMAGE,
        channels={c: f"{layout.run_uri}/bare/{c}" for c in TRAINING_CHANNELS})
    request["StoppingCondition"]["MaxRuntimeInSeconds"] = max_runtime
    return request


def test_training_runs_through_the_images_toolkit_which_passes_the_hyperparameters(world, twin) -> None:
    store = world[1]
    name = "churn-train-" + KEY

    description = train_on_preprocessed_rows(world, name, {"n-estimators": 7, "max-depth": 3,
                                                           "min-samples-split": 5, "random-state": 1})

    assert description["TrainingJobStatus"] == "Completed", description.get("FailureReason")
    log = run_log(store, name)
    assert f"job python: {twin} (Python 3.12" in log
    assert "sagemaker-training-toolkit" in log and "Reporting training SUCCESS" in log
    # the toolkit's own command line: sorted --name value pairs, no sagemaker_* keys
    assert f"{twin} training.py --max-depth 3 --min-samples-split 5 --n-estimators 7 --random-state 1" in log
    with tarfile.open(store.path_for(description["ModelArtifacts"]["S3ModelArtifacts"])) as bundle:
        recorded = json.load(bundle.extractfile("training_metrics.json"))
    assert recorded["hyperparameters"] == {"n_estimators": 7, "max_depth": 3, "min_samples_split": 5,
                                           "random_state": 1}


def test_a_training_script_that_dies_without_a_reason_gets_the_toolkits_failure_file(world, twin,
                                                                                       tmp_path: Path) -> None:
    settings, store, layout, runner, _ = world
    ship_code(store, layout, tmp_path / "code", {"training.py": "import sys\nprint('giving up')\nsys.exit(3)\n"})
    name = "churn-train-" + KEY

    description = runner.run_training(bare_training_request(settings, store, layout, name))

    assert description["TrainingJobStatus"] == "Failed"
    assert description["FailureReason"].startswith("AlgorithmError: ExecuteUserScriptError")
    assert "ExitCode 3" in description["FailureReason"]
    assert not store.exists(f"{layout.model_uri}/{name}")


def test_processing_jobs_see_the_images_environment_not_the_workers(world, twin, monkeypatch) -> None:
    settings, store, layout, runner, _ = world
    monkeypatch.setenv("AIRFLOW__CORE__SOMETHING", "worker only")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/of/the/worker")
    request = processing_request_running(settings, layout, "import json, os, sys; print('ENV', json.dumps("
                                         "{'python': sys.executable, 'keys': sorted(os.environ),"
                                         " 'path': os.environ['PATH']}))", max_runtime=600)

    description = runner.run_processing(request)

    assert description["ProcessingJobStatus"] == "Completed", description.get("FailureReason")
    seen = json.loads(run_log(store, request["ProcessingJobName"]).split("ENV ", 1)[1].splitlines()[0])
    assert seen["python"].startswith(str(twin.parent)), "python3 resolves as the image's PATH makes it"
    assert seen["path"].startswith(str(twin.parent) + ":")
    assert "AIRFLOW__CORE__SOMETHING" not in seen["keys"] and "PYTHONPATH" not in seen["keys"]
    assert {"SAGEMAKER_BASE_DIR", "PYTHONUNBUFFERED"} <= set(seen["keys"])


def processing_request_running(settings, layout, code: str, max_runtime: int) -> dict:
    """A processing request dict whose container runs ``python3 -c code``."""
    request = processing_request(
        settings, layout, step="preprocess", job_name=f"churn-preprocess-{KEY}", image_uri=IMAGE,
        inputs={}, outputs={"result": f"{layout.run_uri}/result"})
    request["AppSpecification"]["ContainerEntrypoint"] = ["python3", "-c", code]
    request["StoppingCondition"]["MaxRuntimeInSeconds"] = max_runtime
    return request


def still_running(marker: str) -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]


def test_a_processing_job_past_its_max_runtime_ends_stopped_with_max_runtime_exceeded(world) -> None:
    settings, store, layout, runner, _ = world
    marker = "sleeping-past-the-limit-processing"
    request = processing_request_running(settings, layout, f"import time; print('{marker}', flush=True); "
                                         "time.sleep(300)", max_runtime=5)
    started = time.monotonic()

    description = runner.run_processing(request)

    assert time.monotonic() - started < 60, "stopped at its limit, not when the script was done"
    assert description["ProcessingJobStatus"] == "Stopped"
    assert description["FailureReason"].startswith("MaxRuntimeExceeded: ")
    assert "(5 s)" in description["FailureReason"]
    assert not store.exists(f"{layout.run_uri}/result"), "a stopped job stores nothing"
    assert still_running(marker) == []


def test_a_training_job_past_its_max_runtime_is_stopped_with_the_script_the_toolkit_started(
        world, twin, tmp_path: Path) -> None:
    settings, store, layout, runner, _ = world
    marker = "sleeping-past-the-limit-training"
    ship_code(store, layout, tmp_path / "code", {"training.py": f"import time\nprint('{marker}', flush=True)\n"
                                                                 "time.sleep(300)\n"})
    name = "churn-train-" + KEY

    description = runner.run_training(bare_training_request(settings, store, layout, name, max_runtime=5))

    assert description["TrainingJobStatus"] == "Stopped"
    assert description["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert description["FailureReason"].startswith("MaxRuntimeExceeded: ")
    assert still_running(marker) == [], "the toolkit's child, the script, is stopped too"


def test_without_the_twin_jobs_run_in_the_projects_environment_and_every_job_log_says_so(world) -> None:
    settings, store, layout, _, _ = world
    fallback = JobPython(Path(sys.executable), is_twin=False, version="3.11", warning="WARNING: no image twin here")
    runner = LocalJobRunner(store, log=lambda line: None, python=fallback)
    write_csv(Path(store.root) / "in" / "data.csv", [HEADER] + make_rows(200))
    upload_tree(store, Path(store.root) / "in", layout.input_uri)
    assert preprocess(settings, store, layout, runner, layout.input_uri)["ProcessingJobStatus"] == "Completed"
    name = "churn-train-" + KEY
    request = train_request(
        settings, layout, job_name=name, image_uri=IMAGE,
        channels={c: layout.preprocessing_uri(c) for c in TRAINING_CHANNELS},
        hyperparameters={"n-estimators": 5, "max-depth": 3, "min-samples-split": 4, "random-state": 1})

    assert runner.run_training(request)["TrainingJobStatus"] == "Completed"
    for job in ("churn-preprocess-" + KEY, name):
        first_line = run_log(store, job).splitlines()[0]
        assert first_line == "WARNING: no image twin here", job
        assert f"job python: {sys.executable} (Python 3.11, the project's environment)" in run_log(store, job)


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

    class TaskInstance:
        staged = StagedInputs(run_key=KEY, run_uri=layout.run_uri, input_uri=settings.default_input_uri,
                              schema_uri=layout.schema_uri, code_uri=layout.code_uri, image_uri=IMAGE)

        def xcom_pull(self, task_ids: str, key: str = "return_value") -> object:
            return self.staged.to_xcom() if (task_ids, key) == ("stage_inputs", "return_value") else None

        def xcom_push(self, key: str, value: object) -> None:
            raise AssertionError(f"nothing is pushed for a completed job, got {key}")

    ending = threading.Thread(target=the_job_ends)
    started = time.monotonic()
    ending.start()
    try:
        result = JobResult.from_xcom(LocalJobOperator(task_id="preprocess", step="preprocess").execute(
            {"ti": TaskInstance(), "params": {}}))
    finally:
        ending.join()
        owner.kill()
        owner.wait()

    assert time.monotonic() - started >= 2.5, "the task waited for the job's end"
    assert (result.job_name, result.status, result.attempt, result.reused) == (name, "Completed", 1, False)
    assert result.outputs == {"train": layout.preprocessing_uri("train")}
    assert os.listdir(jobs) == [name], "no other job was started"
