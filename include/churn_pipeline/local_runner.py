"""Run SageMaker ``CreateProcessingJob`` / ``CreateTrainingJob`` request dicts on this machine.

The runner honours the SageMaker container contract with the project's own Python instead of a
container: inputs are copied from the object store into a per-job workspace that stands in for
``/opt/ml`` (the scripts find it through ``SAGEMAKER_BASE_DIR``), the script runs in a subprocess,
outputs are stored only when it exits 0, and a job description with status, times and failure
reason is kept at ``<local root>/jobs/<job name>/description.json`` in the shape of SageMaker's
``Describe*Job`` answers.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churn_pipeline.objectstore import LocalObjectStore, atomic_write, download, is_s3_uri, upload_tree
from churn_pipeline.sagemaker_api import COMPLETED, FAILED, IN_PROGRESS, JobKind

CONTAINER_ROOT = "/opt/ml"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def deterministic_tar(folder: Path) -> bytes:
    """A gzip tarball of ``folder``'s files at the archive root, byte-identical for identical files.

    Bytecode caches are left out: they differ between machines and no container needs them.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT, compresslevel=6) as archive:
        for path in sorted(folder.rglob("*")):
            if "__pycache__" in path.relative_to(folder).parts:
                continue
            info = archive.gettarinfo(str(path), arcname=path.relative_to(folder).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_file():
                with path.open("rb") as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)
    # gzip stores a timestamp in its header; zero it so equal trees give equal bytes
    data = bytearray(buffer.getvalue())
    data[4:8] = b"\x00\x00\x00\x00"
    return bytes(data)


class LocalJobRunner:
    """Executes job requests against a ``LocalObjectStore``; one workspace and description per job."""

    def __init__(self, store: LocalObjectStore, log: Callable[[str], None] = print):
        self.store = store
        self.jobs_root = store.root / "jobs"
        self.log = log
        self._process: subprocess.Popen[str] | None = None

    # ------------------------------------------------------------------ descriptions

    def _description_path(self, name: str) -> Path:
        return self.jobs_root / name / "description.json"

    def _save(self, description: dict[str, Any]) -> None:
        name = description.get("ProcessingJobName") or description["TrainingJobName"]
        atomic_write(self._description_path(name), json.dumps(description, indent=2, sort_keys=True).encode())

    def describe(self, kind: JobKind, name: str) -> dict[str, Any] | None:
        """The job's description, or None if no such job. A job whose process died is ``Failed``."""
        path = self._description_path(name)
        if not path.is_file():
            return None
        description = json.loads(path.read_text(encoding="utf-8"))
        owner = description.get("LocalProcess", {})
        if (description[kind.status_field] == IN_PROGRESS and owner.get("host") == socket.gethostname()
                and not _process_alive(owner.get("pid", -1))):
            description[kind.status_field] = FAILED
            description["FailureReason"] = "the process running this job ended before the job did (killed or crashed)"
            description[kind.end_time_field] = _now()
            self._save(description)
        return description

    # ------------------------------------------------------------------ running

    def _workspace(self, name: str) -> Path:
        workspace = self.jobs_root / name / "ml"
        shutil.rmtree(workspace, ignore_errors=True)
        workspace.mkdir(parents=True)
        return workspace

    @staticmethod
    def _map(value: str, workspace: Path) -> str:
        """``/opt/ml/...`` in a request -> the same place in the job's workspace."""
        if value == CONTAINER_ROOT or value.startswith(CONTAINER_ROOT + "/"):
            return str(workspace) + value[len(CONTAINER_ROOT):]
        return value

    def _stage(self, uri: str, destination: Path, what: str) -> None:
        if not download(self.store, uri, destination):
            raise FileNotFoundError(f"no object at {uri} for {what}")

    def _run_script(self, name: str, command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
        log_path = self.jobs_root / name / "output.log"
        lines = []
        with log_path.open("w", encoding="utf-8") as log_file:
            process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, bufsize=1)
            self._process = process
            assert process.stdout is not None
            for line in process.stdout:
                log_file.write(line)
                lines.append(line)
                self.log(f"[{name}] {line.rstrip()}")
            exit_code = process.wait()
            self._process = None
            return exit_code, "".join(lines)

    def kill(self) -> None:
        """Stop the running script (the task was killed); its job then ends Failed, as on SageMaker."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def _base_env(self, workspace: Path, extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.update(extra)
        env["SAGEMAKER_BASE_DIR"] = str(workspace)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _finish(self, description: dict[str, Any], kind: JobKind, workspace: Path, exit_code: int,
                store_outputs: Callable[[], None], reason_file: str) -> dict[str, Any]:
        if exit_code == 0:
            store_outputs()
            description[kind.status_field] = COMPLETED
        else:
            reason_path = workspace / "output" / reason_file
            message = (reason_path.read_text(encoding="utf-8").strip() if reason_path.is_file()
                       else f"the script exited with code {exit_code} without writing a reason")
            description[kind.status_field] = FAILED
            description["FailureReason"] = f"AlgorithmError: {message}"
            if kind is JobKind.PROCESSING:
                description["ExitMessage"] = message
        description[kind.end_time_field] = _now()
        description.pop("LocalProcess", None)
        self._save(description)
        shutil.rmtree(workspace, ignore_errors=True)  # scratch only: outputs are in the store
        return description

    def _start(self, kind: JobKind, request: dict[str, Any]) -> dict[str, Any]:
        description = {
            **request,  # a Describe*Job answer repeats the request's fields, so readers need one shape
            kind.status_field: IN_PROGRESS,
            "CreationTime": _now(),
            f"{kind.value}StartTime": _now(),
            "LocalProcess": {"pid": os.getpid(), "host": socket.gethostname()},
        }
        self._save(description)
        return description

    def run_processing(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["ProcessingJobName"]
        description = self._start(JobKind.PROCESSING, request)
        workspace = self._workspace(name)
        try:
            for item in request.get("ProcessingInputs", []):
                s3_input = item["S3Input"]
                self._stage(s3_input["S3Uri"], Path(self._map(s3_input["LocalPath"], workspace)),
                            f"input '{item['InputName']}'")
            outputs = request["ProcessingOutputConfig"]["Outputs"]
            for item in outputs:
                Path(self._map(item["S3Output"]["LocalPath"], workspace)).mkdir(parents=True, exist_ok=True)
            app = request["AppSpecification"]
            command = [self._map(part, workspace)
                       for part in app["ContainerEntrypoint"] + app.get("ContainerArguments", [])]
            if command[0] in ("python", "python3"):
                command[0] = sys.executable
        except (OSError, KeyError, ValueError) as error:
            return self._fail_before_start(description, JobKind.PROCESSING, workspace, error)

        exit_code, _ = self._run_script(name, command, self._base_env(workspace, request.get("Environment", {})),
                                        cwd=workspace)

        def store_outputs() -> None:
            for item in outputs:
                upload_tree(self.store, Path(self._map(item["S3Output"]["LocalPath"], workspace)),
                            item["S3Output"]["S3Uri"])

        return self._finish(description, JobKind.PROCESSING, workspace, exit_code, store_outputs, "message")

    def run_training(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["TrainingJobName"]
        description = self._start(JobKind.TRAINING, request)
        workspace = self._workspace(name)
        try:
            channels = []
            for channel in request.get("InputDataConfig", []):
                channel_name = channel["ChannelName"]
                self._stage(channel["DataSource"]["S3DataSource"]["S3Uri"],
                            workspace / "input" / "data" / channel_name, f"channel '{channel_name}'")
                channels.append(channel_name)
            hyperparameters = {key: json.loads(value) for key, value in request.get("HyperParameters", {}).items()}
            code_dir = workspace / "code"
            code_dir.mkdir()
            submit_directory = str(hyperparameters["sagemaker_submit_directory"])
            archive = Path(self._map(submit_directory, workspace))
            if is_s3_uri(submit_directory):
                self._stage(submit_directory, workspace / "submit", "sagemaker_submit_directory")
                archive = workspace / "submit" / Path(submit_directory).name
            with tarfile.open(archive) as bundle:
                bundle.extractall(code_dir, filter="data")
            (workspace / "model").mkdir()
            (workspace / "output" / "data").mkdir(parents=True)
            arguments = []
            for key, value in hyperparameters.items():
                if not key.startswith("sagemaker_"):
                    arguments += [f"--{key}", str(value)]
            command = [sys.executable, str(code_dir / hyperparameters["sagemaker_program"]), *arguments]
        except (OSError, KeyError, ValueError, tarfile.TarError) as error:
            return self._fail_before_start(description, JobKind.TRAINING, workspace, error)

        env = self._base_env(workspace, request.get("Environment", {}))
        env.update({f"SM_CHANNEL_{channel.upper()}": str(workspace / "input" / "data" / channel)
                    for channel in channels})
        env.update({
            "SM_MODEL_DIR": str(workspace / "model"),
            "SM_OUTPUT_DATA_DIR": str(workspace / "output" / "data"),
            "SM_CHANNELS": json.dumps(channels),
            "SM_HPS": json.dumps({k: v for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}),
            "SM_CURRENT_HOST": "algo-1",
        })
        exit_code, log_text = self._run_script(name, command, env, cwd=code_dir)
        artifact_uri = f"{request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output/model.tar.gz"

        def store_outputs() -> None:
            self.store.write_bytes(artifact_uri, deterministic_tar(workspace / "model"))
            description["ModelArtifacts"] = {"S3ModelArtifacts": artifact_uri}
            description["FinalMetricDataList"] = scrape_metrics(
                log_text, request["AlgorithmSpecification"].get("MetricDefinitions", []))

        return self._finish(description, JobKind.TRAINING, workspace, exit_code, store_outputs, "failure")

    def _fail_before_start(self, description: dict[str, Any], kind: JobKind, workspace: Path,
                           error: Exception) -> dict[str, Any]:
        """SageMaker fails a job whose inputs cannot be staged with a ClientError; so does the runner."""
        description[kind.status_field] = FAILED
        description["FailureReason"] = f"ClientError: {error}"
        description[kind.end_time_field] = _now()
        description.pop("LocalProcess", None)
        self._save(description)
        shutil.rmtree(workspace, ignore_errors=True)
        return description


def scrape_metrics(log_text: str, definitions: list[dict[str, str]]) -> list[dict[str, Any]]:
    """What SageMaker's metric definitions would scrape from the log: the last value of each."""
    found = []
    for definition in definitions:
        values = re.findall(definition["Regex"], log_text)
        if values:
            found.append({"MetricName": definition["Name"], "Value": float(values[-1]), "Timestamp": _now()})
    return found
