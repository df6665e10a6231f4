"""Faults while writing: one clear message naming the cause, no traceback, nothing half-written."""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

from tests.conftest import SAMPLE_CSV, SCRIPTS, container_python


def test_a_full_disk_while_writing_outputs_fails_cleanly(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes writes past 64 KB fail with EFBIG, as a full disk fails them with ENOSPC."""
    out = tmp_path / "out"
    out.mkdir()

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    # -B: the size limit would otherwise truncate the .pyc files this interpreter writes into the
    # environment and break every later Python process that imports them
    completed = subprocess.run([container_python(), "-B", str(SCRIPTS / "preprocessing.py"), "--input-dir",
                                str(SAMPLE_CSV.parent), "--output-dir", str(out)], capture_output=True, text=True,
                               preexec_fn=small_disk, timeout=300,
                               env={"PATH": "/usr/bin:/bin", "SAGEMAKER_BASE_DIR": str(tmp_path / "ml"),
                                    "PYTHONDONTWRITEBYTECODE": "1"})

    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    message = completed.stderr.strip()
    assert message.startswith("preprocessing failed:") and "File too large" in message and "train.csv" in message
    assert list(out.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] and not [p for p in tmp_path.iterdir() if "staging" in p.name]
    assert "File too large" in (tmp_path / "ml" / "output" / "message").read_text()


def test_an_output_folder_that_cannot_be_created_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where a folder must go")
    completed = subprocess.run([container_python(), str(SCRIPTS / "preprocessing.py"),
                                "--input-dir", str(SAMPLE_CSV.parent),
                                "--output-dir", str(tmp_path / "taken" / "out")], capture_output=True, text=True,
                               timeout=300)
    assert completed.returncode == 1 and "Traceback" not in completed.stderr
    assert "Not a directory" in completed.stderr and "taken" in completed.stderr
