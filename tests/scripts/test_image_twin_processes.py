"""The image twin as processes: its Python is the image's 3.12 and its installed versions are exactly
its pins; setup finds a pyenv Python whose shim fails, and without any Python 3.12 says so in one
line and goes on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from churn_pipeline.local.image_twin import find_python, installed_versions, pinned_versions, version_drift
from tests.conftest import PROJECT


def test_the_twin_holds_exactly_the_pinned_versions(twin: Path) -> None:
    assert version_drift(pinned_versions(), installed_versions(twin)) == []


def test_the_twin_runs_the_images_python(twin: Path) -> None:
    completed = subprocess.run([str(twin), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                               text=True, check=True, timeout=60)
    assert completed.stdout.strip() == "(3, 12)"


def test_find_python_finds_a_pyenv_python_whose_shim_fails(tmp_path: Path, twin: Path) -> None:
    """pyenv's python3.12 shim fails unless a 3.12 is selected; its versions/3.12*/ are tried directly."""
    real = Path(os.path.realpath(twin))
    shims, versions = tmp_path / "shims", tmp_path / "pyenv" / "versions" / "3.12.9" / "bin"
    shims.mkdir()
    versions.mkdir(parents=True)
    (shims / "python3.12").write_text("#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    (shims / "python3.12").chmod(0o755)
    (versions / "python3.12").symlink_to(real)
    environ = {"PATH": f"{shims}:/usr/bin:/bin", "PYENV_ROOT": str(tmp_path / "pyenv"), "HOME": str(tmp_path)}

    assert find_python(environ=environ) == versions / "python3.12"


def test_without_python_3_12_setup_says_so_in_one_line_and_goes_on(tmp_path: Path) -> None:
    if any(Path(p).exists() for p in ("/usr/bin/python3.12", "/usr/local/bin/python3.12")):
        pytest.skip("this machine has a system Python 3.12, which setup would rightly find")
    twin_dir = tmp_path / "twin"
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "no-pyenv")}
    completed = subprocess.run(["make", "--no-print-directory", "-C", str(PROJECT), f"TWIN={twin_dir}",
                                f"PYTHON={sys.executable}", f"{twin_dir}/.installed"],
                               capture_output=True, text=True, env=environ, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "no Python 3.12 found (tried python3.12, pyenv's 3.12 versions, /usr/bin, uv python find): no image twin, "
        "so the local backend runs its jobs in .venv and warns in every job log"]
    assert not twin_dir.exists()
