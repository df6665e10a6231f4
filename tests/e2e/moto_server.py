"""A moto server on loopback that the Airflow subprocess reaches through AWS_ENDPOINT_URL, with
moto's request recorder: the tests read back every AWS call the pipeline really made. It is the AWS
emulation of ``churn_pipeline.tooling.aws_emulation``: its SageMaker jobs really run, in the image twin."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RecordedCall:
    service: str  # "sagemaker", "s3", "sns", ...
    action: str  # "CreateProcessingJob", "PutObject", "Publish", ...
    params: dict[str, Any]
    path: str


def _s3_action(method: str, path: str, query: dict[str, list[str]]) -> str:
    has_key = path.strip("/").count("/") >= 1
    if method == "PUT" and "partNumber" in query:
        return "UploadPart"
    if method == "POST" and "uploadId" in query:
        return "CompleteMultipartUpload"
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    if method == "PUT":
        return "PutObject" if has_key else "CreateBucket"
    if method == "GET":
        if "list-type" in query or not has_key:
            return "ListBucket"
        return "GetObject"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "DELETE":
        return "DeleteObject"
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    return f"{method} {path}"


class MotoServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # the recorder writes its file (moto_recording) into the server's working directory
        self.workdir = tempfile.TemporaryDirectory(prefix="moto-")
        project = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "churn_pipeline.tooling.aws_emulation", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.workdir.name,
            env={**os.environ, "PYTHONPATH": project})
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("moto server did not start")

    def _post(self, path: str) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}{path}", method="POST"), timeout=10)

    def reset(self) -> None:
        self._post("/moto-api/reset")
        self.record_afresh()

    def record_afresh(self) -> None:
        """Forget the calls recorded so far (the test's own set-up) and record from now on."""
        self._post("/moto-api/recorder/reset-recording")
        self._post("/moto-api/recorder/start-recording")

    def calls(self) -> list[RecordedCall]:
        raw = urllib.request.urlopen(f"{self.url}/moto-api/recorder/download-recording", timeout=10).read().decode()
        calls = []
        for line in raw.splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            body = entry.get("body") or ""
            if entry.get("body_encoded") and body:
                body = base64.b64decode(body).decode("utf-8", errors="replace")
            headers = {key.lower(): value for key, value in entry["headers"].items()}
            parsed = urllib.parse.urlparse(entry["url"])
            query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)  # "?uploads" has no value
            target = headers.get("x-amz-target")
            credential = headers.get("authorization", "")
            service = credential.split("/")[3] if credential.count("/") >= 4 else "unknown"
            if target:
                calls.append(RecordedCall(service, target.split(".")[-1], json.loads(body or "{}"), parsed.path))
            elif service == "s3":
                calls.append(RecordedCall("s3", _s3_action(entry["method"], parsed.path, query), {}, parsed.path))
            else:
                form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
                calls.append(RecordedCall(service, form.get("Action", entry["method"]), form, parsed.path))
        return calls

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.workdir.cleanup()
