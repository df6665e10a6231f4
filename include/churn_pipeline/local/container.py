"""The SageMaker container contract on this machine: a job's workspace stands in for ``/opt/ml``,
its process sees what a process in the image sees, and a training job's workspace is laid out as
SageMaker lays it out for the image's ``train`` (or, without the image twin, for a stand-in that
runs the script as the toolkit would). ``churn_pipeline.local.runner`` runs the jobs.
"""

from __future__ import annotations

import json
import os
import socket
import tarfile
from pathlib import Path
from typing import Any

from churn_pipeline.domain.s3_uris import is_s3_uri
from churn_pipeline.local.image_twin import JobPython
from churn_pipeline.services.objectstore import LocalObjectStore, download

CONTAINER_ROOT = "/opt/ml"
# What the image sets for every job (its Dockerfile's ENV), besides PATH.
IMAGE_ENVIRONMENT = {"PYTHONUNBUFFERED": "1"}
# From the worker's environment only what any process needs; nothing of Airflow's or the project's.
# What the Spark processing image sets (spark/processing/3.5/py3/docker/py312/Dockerfile.cpu), besides
# the paths of its own Spark, Hadoop and Python, which the stand-in sets to the twin's.
SPARK_IMAGE_ENVIRONMENT = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
                           "PYTHONIOENCODING": "UTF-8"}
PASSED_THROUGH = ("HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
# The machine's sizes for the Spark twin's JVMs (on SageMaker the instance type decides them), read by
# the smspark-submit stand-in and by spark-submit itself; unset, the stand-in's laptop-sized defaults.
SPARK_MACHINE_SIZES = ("SPARK_DRIVER_MEMORY", "SPARK_EXECUTOR_MEMORY", "SPARK_WORKER_MEMORY")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TRAINING_TOOLKIT = ("-m", "sagemaker_training.cli.train")  # the image's `train` (see image_twin's notes)


def resolvable_hostname() -> str:
    """This machine's name for ``resourceconfig.json``; the toolkit waits up to 15 minutes for each
    host to resolve, so a name that does not resolve here is replaced by ``localhost`` at once."""
    name = socket.gethostname()
    try:
        socket.gethostbyname(name)
    except OSError:
        return "localhost"
    return name


def in_workspace(value: str, workspace: Path) -> str:
    """``/opt/ml/...`` in a request -> the same place in the job's workspace."""
    if value == CONTAINER_ROOT or value.startswith(CONTAINER_ROOT + "/"):
        return str(workspace) + value[len(CONTAINER_ROOT):]
    return value


def local_store_uri(value: str, store: LocalObjectStore) -> str:
    """An ``s3://bucket/key`` argument -> the ``file://`` URI of that object (or prefix) in the local
    store; anything else unchanged. The Spark twin's Spark (PyPI's) has no S3A, so a Spark job reads
    and writes the store's files, where the DAG side and the next job find them as objects."""
    if not is_s3_uri(value):
        return value
    uri = store.path_for(value).as_uri()
    return uri + "/" if value.endswith("/") and not uri.endswith("/") else uri


def remove_checksum_files(store: LocalObjectStore, uris: list[str]) -> list[Path]:
    """Hadoop's local file system writes a ``.<name>.crc`` beside every file Spark writes; S3 holds
    no such objects, so after a Spark job they are removed from below the ``s3://`` arguments it was
    given (only those whose file is there), and the store holds what S3 would."""
    removed = []
    for uri in uris:
        if not is_s3_uri(uri):
            continue
        root = store.path_for(uri)
        for checksum in sorted(root.rglob(".*.crc")) if root.is_dir() else []:
            if checksum.with_name(checksum.name[1:-len(".crc")]).is_file():
                checksum.unlink()
                removed.append(checksum)
    return removed


def write_processing_config(request: dict[str, Any], workspace: Path) -> None:
    """``/opt/ml/config/{processingjobconfig,resourceconfig}.json``, which SageMaker writes for every
    processing job: the request as the job sees it, and its hosts (``algo-1`` ... ``algo-N``)."""
    count = int(request["ProcessingResources"]["ClusterConfig"].get("InstanceCount", 1))
    hosts = [f"algo-{index}" for index in range(1, count + 1)]
    config = workspace / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "processingjobconfig.json").write_text(json.dumps(request, indent=2), encoding="utf-8")
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": hosts[0], "hosts": hosts}, indent=2),
                                                encoding="utf-8")


def stage(store: LocalObjectStore, uri: str, destination: Path, what: str) -> None:
    if not download(store, uri, destination):
        raise FileNotFoundError(f"no object at {uri} for {what}")


def container_env(python: JobPython, workspace: Path, request: dict[str, Any]) -> dict[str, str]:
    """What a process in the image sees: the image's variables, the request's ``Environment`` and
    the job's root; the twin's ``bin`` first on ``PATH``, as ``/opt/venv/bin`` is in the image."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env["PATH"] = f"{python.executable.parent}:{SYSTEM_PATH}"
    env.update(IMAGE_ENVIRONMENT)
    env.update(request.get("Environment", {}))
    env["SAGEMAKER_BASE_DIR"] = str(workspace)
    return env


def spark_container_env(python: JobPython, workspace: Path, request: dict[str, Any]) -> dict[str, str]:
    """What a process in the Spark processing image sees: as ``container_env``, with the image's own
    variables (its Dockerfile's ``ENV``), the machine's ``JAVA_HOME`` (the image has its Java at a
    fixed place; here Spark's scripts find it through ``JAVA_HOME`` or ``java`` on the system PATH) and
    the machine's JVM sizes, where set (``SPARK_MACHINE_SIZES``)."""
    env = container_env(python, workspace, {})
    env.update(SPARK_IMAGE_ENVIRONMENT)
    env.update({name: os.environ[name] for name in ("JAVA_HOME", *SPARK_MACHINE_SIZES) if os.environ.get(name)})
    env.update(request.get("Environment", {}))
    return env


def stage_training_workspace(store: LocalObjectStore, request: dict[str, Any], workspace: Path) -> dict[str, str]:
    """Lay out ``/opt/ml`` as SageMaker does for a training job; returns the hyperparameters as
    ``hyperparameters.json`` holds them (strings, the code archive as a local path)."""
    input_config = {}
    for channel in request.get("InputDataConfig", []):
        channel_name = channel["ChannelName"]
        stage(store, channel["DataSource"]["S3DataSource"]["S3Uri"], workspace / "input" / "data" / channel_name,
              f"channel '{channel_name}'")
        input_config[channel_name] = {
            "TrainingInputMode": channel.get("InputMode", "File"),
            "S3DistributionType": channel["DataSource"]["S3DataSource"].get("S3DataDistributionType",
                                                                             "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            **({"ContentType": channel["ContentType"]} if "ContentType" in channel else {}),
        }
    hyperparameters = dict(request.get("HyperParameters", {}))
    submit_directory = str(json.loads(hyperparameters["sagemaker_submit_directory"]))
    if is_s3_uri(submit_directory):
        stage(store, submit_directory, workspace / "submit", "sagemaker_submit_directory")
        archive = workspace / "submit" / Path(submit_directory).name
    else:
        archive = Path(in_workspace(submit_directory, workspace))
    if not archive.is_file():
        raise FileNotFoundError(f"no code archive at {submit_directory}")
    hyperparameters["sagemaker_submit_directory"] = json.dumps(str(archive))
    host = resolvable_hostname()
    instance_type = request["ResourceConfig"]["InstanceType"]
    resource_config = {
        "current_host": host, "hosts": [host], "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": instance_type,
                             "hosts": [host]}],
    }
    config = workspace / "input" / "config"
    config.mkdir(parents=True)
    for file_name, content in (("hyperparameters.json", hyperparameters),
                               ("inputdataconfig.json", input_config),
                               ("resourceconfig.json", resource_config)):
        (config / file_name).write_text(json.dumps(content, indent=2), encoding="utf-8")
    # the toolkit extracts the code only into an empty code/, and writes output/failure only into
    # an existing output/ (else it exits 0 without one); it creates neither model/ nor output/
    for folder in ("code", "model", "output/data"):
        (workspace / folder).mkdir(parents=True)
    return hyperparameters


def training_command(python: JobPython, hyperparameters: dict[str, str], workspace: Path,
                     env: dict[str, str]) -> list[str]:
    """The image's ``train``, or without the twin a stand-in that runs the script as it would."""
    if python.is_twin:
        env["PIP_NO_INDEX"] = "1"  # the toolkit pip-installs a shipped requirements.txt: never from here
        return [str(python.executable), *TRAINING_TOOLKIT]
    values = {key: json.loads(value) for key, value in hyperparameters.items()}
    code_dir = workspace / "code"
    with tarfile.open(values["sagemaker_submit_directory"]) as bundle:
        bundle.extractall(code_dir, filter="data")
    arguments = []
    for key, value in sorted(values.items()):
        if not key.startswith("sagemaker_"):
            arguments += [f"-{key}" if len(key) == 1 else f"--{key}", str(value)]
    channels = json.loads((workspace / "input" / "config" / "inputdataconfig.json").read_text())
    env.update({f"SM_CHANNEL_{channel.upper()}": str(workspace / "input" / "data" / channel)
                for channel in channels})
    env.update({
        "SM_MODEL_DIR": str(workspace / "model"),
        "SM_OUTPUT_DATA_DIR": str(workspace / "output" / "data"),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps({k: v for k, v in values.items() if not k.startswith("sagemaker_")}),
    })
    return [str(python.executable), str(code_dir / values["sagemaker_program"]), *arguments]
