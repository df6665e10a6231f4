"""The local runner's jobs in the image twin (the SageMaker image's Python environment): training
through the image's own toolkit, processing in the image's environment rather than the worker's, and
a job past its MaxRuntimeInSeconds stopped with every process it started."""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path

import pytest

from tests.scripts.local_jobs import (
    KEY,
    LocalWorld,
    bare_training_request,
    make_world,
    preprocessed_request,
    processing_request_running,
    run_log,
    ship_code,
    still_running,
)


@pytest.fixture()
def world(tmp_path: Path) -> LocalWorld:
    return make_world(tmp_path)


def test_training_runs_through_the_images_toolkit_which_passes_the_hyperparameters(world: LocalWorld, twin) -> None:
    name = "churn-train-" + KEY
    hyperparameters = {"n-estimators": 7, "max-depth": 3, "min-samples-split": 5, "random-state": 1}

    description = world.runner.run_training(preprocessed_request(world, name, hyperparameters))

    assert description["TrainingJobStatus"] == "Completed", description.get("FailureReason")
    log = run_log(world, name)
    assert f"job python: {twin} (Python 3.12" in log
    assert "sagemaker-training-toolkit" in log and "Reporting training SUCCESS" in log
    # the toolkit's own command line: sorted --name value pairs, no sagemaker_* keys
    assert f"{twin} training.py --max-depth 3 --min-samples-split 5 --n-estimators 7 --random-state 1" in log
    with tarfile.open(world.store.path_for(description["ModelArtifacts"]["S3ModelArtifacts"])) as bundle:
        recorded = json.load(bundle.extractfile("training_metrics.json"))
    assert recorded["hyperparameters"] == {"n_estimators": 7, "max_depth": 3, "min_samples_split": 5,
                                           "random_state": 1, "max_samples": 200_000}  # the script's default


def test_a_training_script_that_dies_without_a_reason_gets_the_toolkits_failure_file(world: LocalWorld, twin,
                                                                                       tmp_path: Path) -> None:
    ship_code(world, tmp_path / "code", {"training.py": "import sys\nprint('giving up')\nsys.exit(3)\n"})
    name = "churn-train-" + KEY

    description = world.runner.run_training(bare_training_request(world, name))

    assert description["TrainingJobStatus"] == "Failed"
    assert description["FailureReason"].startswith("AlgorithmError: ExecuteUserScriptError")
    assert "ExitCode 3" in description["FailureReason"]
    assert not world.store.exists(f"{world.layout.model_uri}/{name}")


def test_processing_jobs_see_the_images_environment_not_the_workers(world: LocalWorld, twin, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__SOMETHING", "worker only")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/of/the/worker")
    request = processing_request_running(world, "import json, os, sys; print('ENV', json.dumps("
                                                "{'python': sys.executable, 'keys': sorted(os.environ),"
                                                " 'path': os.environ['PATH']}))", max_runtime=600)

    description = world.runner.run_processing(request)

    assert description["ProcessingJobStatus"] == "Completed", description.get("FailureReason")
    seen = json.loads(run_log(world, request["ProcessingJobName"]).split("ENV ", 1)[1].splitlines()[0])
    assert seen["python"].startswith(str(twin.parent)), "python3 resolves as the image's PATH makes it"
    assert seen["path"].startswith(str(twin.parent) + ":")
    assert "AIRFLOW__CORE__SOMETHING" not in seen["keys"] and "PYTHONPATH" not in seen["keys"]
    assert {"SAGEMAKER_BASE_DIR", "PYTHONUNBUFFERED"} <= set(seen["keys"])


def test_a_processing_job_past_its_max_runtime_ends_stopped_with_max_runtime_exceeded(world: LocalWorld) -> None:
    marker = "sleeping-past-the-limit-processing"
    request = processing_request_running(world, f"import time; print('{marker}', flush=True); time.sleep(300)",
                                         max_runtime=5)
    started = time.monotonic()

    description = world.runner.run_processing(request)

    assert time.monotonic() - started < 60, "stopped at its limit, not when the script was done"
    assert description["ProcessingJobStatus"] == "Stopped"
    assert description["FailureReason"].startswith("MaxRuntimeExceeded: ")
    assert "(5 s)" in description["FailureReason"]
    assert not world.store.exists(f"{world.layout.run_uri}/result"), "a stopped job stores nothing"
    assert still_running(marker) == []


def test_a_training_job_past_its_max_runtime_is_stopped_with_the_script_the_toolkit_started(
        world: LocalWorld, twin, tmp_path: Path) -> None:
    marker = "sleeping-past-the-limit-training"
    ship_code(world, tmp_path / "code", {"training.py": f"import time\nprint('{marker}', flush=True)\n"
                                                        "time.sleep(300)\n"})
    name = "churn-train-" + KEY

    description = world.runner.run_training(bare_training_request(world, name, max_runtime=5))

    assert description["TrainingJobStatus"] == "Stopped"
    assert description["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert description["FailureReason"].startswith("MaxRuntimeExceeded: ")
    assert still_running(marker) == [], "the toolkit's child, the script, is stopped too"
