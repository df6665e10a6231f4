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
from churn_pipeline.requests.processing import preprocess_request
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
    from churn_pipeline.requests.steps import request_for_step

    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path / "root"))
    settings = load_settings()
    layout = RunLayout(settings.base_uri, KEY)
    name = f"churn-preprocess-{KEY}"
    jobs = settings.local_root / "jobs"
    (jobs / name).mkdir(parents=True)
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # the job's own process
    staged = StagedInputs(run_key=KEY, run_uri=layout.run_uri, input_uri=settings.default_input_uri,
                          schema_uri=layout.schema_uri, code_uri=layout.code_uri, image_uri=IMAGE)
    request = request_for_step("preprocess", settings, name, staged, {}, {})  # the request the job runs
    running = {**request, "ProcessingJobStatus": "InProgress",
               "LocalProcess": {"pid": owner.pid, "host": socket.gethostname()}}
    (jobs / name / "description.json").write_text(json.dumps(running))

    def the_job_ends() -> None:
        time.sleep(2.5)
        (jobs / name / "description.json").write_text(json.dumps({**running, "ProcessingJobStatus": "Completed"}))
        owner.kill()


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
    assert result.outputs["train"] == layout.preprocessing_uri("train")
    assert os.listdir(jobs) == [name], "no other job was started"


def test_a_job_outlives_its_lost_task_and_the_next_attempt_awaits_it_and_stores_its_outputs(world: LocalWorld,
                                                                                             tmp_path: Path) -> None:
    """SIGKILL to the task's process alone (not its group) while its job runs: the job runs on, as a
    SageMaker job does; the next attempt finds it InProgress, awaits it, and the job ends Completed
    with its outputs stored, once, and no second attempt (``-r2``) ever starts."""
    import os
    import signal
    import subprocess

    from churn_pipeline.domain.attempt_planning import Action, is_running, plan_attempt
    from tests.scripts.local_jobs import processing_request_running

    code = ("import os, pathlib, time; time.sleep(4); out = pathlib.Path(os.environ['SAGEMAKER_BASE_DIR']) / "
            "'processing' / 'output' / 'result'; (out / 'answer.txt').write_text('42'); print('job done')")
    request = processing_request_running(world, code, max_runtime=600)
    name = request["ProcessingJobName"]
    (tmp_path / "request.json").write_text(json.dumps(request))
    task = subprocess.Popen(  # the task's process, in a group of its own: only it is killed
        [sys.executable, "-c", "import json, sys; from churn_pipeline.local.runner import LocalJobRunner; "
         "from churn_pipeline.services.objectstore import LocalObjectStore; "
         "LocalJobRunner(LocalObjectStore(sys.argv[1])).run_processing(json.load(open(sys.argv[2])))",
         str(world.store.root), str(tmp_path / "request.json")],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    description_path = world.store.root / "jobs" / name / "description.json"
    deadline = time.time() + 60
    while time.time() < deadline and "job_pid" not in (
            json.loads(description_path.read_text()).get("LocalProcess", {}) if description_path.is_file() else {}):
        time.sleep(0.05)
    os.kill(task.pid, signal.SIGKILL)
    task.wait()

    next_attempt = LocalJobRunner(world.store, log=world.lines.append)
    plan = plan_attempt(JobKind.PROCESSING, "churn", "preprocess", KEY,
                        lambda job: next_attempt.describe(JobKind.PROCESSING, job))
    assert (plan.action, plan.job_name) == (Action.AWAIT, name), "the lost task's job is awaited, not replaced"
    while is_running(JobKind.PROCESSING, description := next_attempt.describe(JobKind.PROCESSING, name)):
        time.sleep(0.2)

    assert description["ProcessingJobStatus"] == "Completed", description.get("FailureReason")
    assert world.store.read_bytes(f"{world.layout.run_uri}/result/answer.txt") == b"42"
    assert "job done" in run_log(world, name)
    assert sorted(path.name for path in (world.store.root / "jobs").iterdir()) == [name], "one job, no -r2"
    assert next_attempt.describe(JobKind.PROCESSING, name) == description, "finished once, then only read"


def test_a_running_job_whose_request_changed_is_stopped_so_the_next_attempt_can_start(tmp_path, monkeypatch) -> None:
    """A lost task left this run's job running, but the next attempt would send another request (here,
    another entry point): the job's process is stopped and its description says why, so that the next
    attempt starts ``-r2`` instead of handing on outputs that are not this attempt's."""
    import socket
    import subprocess

    from churn_pipeline.local.job_process import process_started
    from churn_pipeline.operators.local import LocalJobOperator

    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path / "root"))
    settings = load_settings()
    name = f"churn-preprocess-{KEY}"
    (settings.local_root / "jobs" / name).mkdir(parents=True)
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    sent = {"ProcessingJobName": name, "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3"]}}
    running = {**sent, "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3", "old.py"]},
               "ProcessingJobStatus": "InProgress", "ProcessingStartTime": "2026-11-26T02:00:00+00:00",
               "LocalProcess": {"pid": 2 ** 22 + 12345, "host": socket.gethostname(), "job_pid": job.pid,
                                "job_started": process_started(job.pid)}}
    (settings.local_root / "jobs" / name / "description.json").write_text(json.dumps(running))
    operator = LocalJobOperator(task_id="preprocess", step="preprocess", staged={})
    try:
        assert operator.replace_running_job(name, sent, running, settings)
        assert job.wait(timeout=15) is not None, "the job's process is stopped"
    finally:
        job.kill()
    stopped = json.loads((settings.local_root / "jobs" / name / "description.json").read_text())
    assert stopped["ProcessingJobStatus"] == "Stopped"
    assert stopped["FailureReason"] == "stopped: its request differs from the next attempt's in AppSpecification"
    assert not operator.replace_running_job(name, sent, {**running, **sent}, settings), "the same request is awaited"


def test_a_full_disk_while_a_job_stores_its_outputs_fails_the_job_with_the_cause_and_stores_none(
        world: LocalWorld, monkeypatch) -> None:
    """The store fills up after the job's first output file: the job ends Failed with a ClientError
    naming the cause, the file already stored is removed, and its description is final (a retry
    starts the next attempt instead of awaiting a job that will never end)."""
    import errno

    from churn_pipeline.services import objectstore
    from tests.scripts.local_jobs import processing_request_running

    code = ("import os, pathlib; out = pathlib.Path(os.environ['SAGEMAKER_BASE_DIR']) / 'processing' / 'output' / "
            "'result'; [(out / f'part-{i}.csv').write_text('x\\n') for i in range(3)]")
    request = processing_request_running(world, code, max_runtime=600)
    copies = []
    real_copy = objectstore.atomic_copy

    def disk_fills_up(source: Path, path: Path) -> None:
        copies.append(path)
        if len(copies) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_copy(source, path)

    monkeypatch.setattr(objectstore, "atomic_copy", disk_fills_up)

    description = world.runner.run_processing(request)

    assert description["ProcessingJobStatus"] == "Failed"
    assert description["FailureReason"].startswith("ClientError: the job's outputs could not be stored: No space "
                                                   "left on device")
    assert len(copies) == 2 and world.store.list_uris(f"{world.layout.run_uri}/result") == []
    assert world.runner.describe(JobKind.PROCESSING, request["ProcessingJobName"]) == description


def test_a_finished_job_records_the_peak_memory_of_its_process_tree(
        world: LocalWorld) -> None:
    """The sizing evidence SageMaker shows as the instance's memory graph: the job itself runs under the
    runner's recording shell, so its memory must be counted with the shell's children, not the shell's."""
    store, layout = world.store, world.layout
    store.upload_file(SAMPLE_CSV, world.settings.default_input_uri)
    request = preprocess_request(world.settings, layout, job_name="churn-memory-" + KEY, image_uri=IMAGE,
                                 input_uri=world.settings.default_input_uri, schema_uri=layout.schema_uri)
    touched_mb = 300  # written, so every page is resident
    request["AppSpecification"]["ContainerEntrypoint"] = [
        "python3", "-c", f"block = b'x' * ({touched_mb} * 2**20)"]
    request["ProcessingOutputConfig"]["Outputs"] = []

    description = world.runner.run_processing(request)

    assert description["ProcessingJobStatus"] == "Completed", description.get("FailureReason")
    usage = description["LocalResourceUsage"]
    assert touched_mb <= usage["PeakRssMB"] < touched_mb + 150, usage
    assert usage["CpuSeconds"] > 0


def test_a_small_job_started_by_a_large_task_records_its_own_peak_not_the_tasks(world: LocalWorld) -> None:
    """A process forked from the task inherits the task's memory high-water mark across exec: measured
    from the runner, every job would look at least as large as the Airflow task that started it."""
    store, layout = world.store, world.layout
    store.upload_file(SAMPLE_CSV, world.settings.default_input_uri)
    request = preprocess_request(world.settings, layout, job_name="churn-small-" + KEY, image_uri=IMAGE,
                                 input_uri=world.settings.default_input_uri, schema_uri=layout.schema_uri)
    request["AppSpecification"]["ContainerEntrypoint"] = ["python3", "-c", "pass"]
    request["ProcessingOutputConfig"]["Outputs"] = []
    ballast = b"x" * (400 * 2**20)  # the task at 400 MB and more

    description = world.runner.run_processing(request)

    assert len(ballast) and description["ProcessingJobStatus"] == "Completed"
    assert description["LocalResourceUsage"]["PeakRssMB"] < 100, description["LocalResourceUsage"]
