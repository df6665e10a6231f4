"""Shared fixtures: project paths, running the container scripts as subprocesses in the image twin
(the SageMaker image's Python environment, .venv-container), sample data."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
SCRIPTS = PROJECT / "include" / "scripts"
CONFIG = PROJECT / "include" / "config"
SAMPLE_CSV = PROJECT / "include" / "data" / "customer_data.csv"
DATASETS = PROJECT.parent / "shared" / "datasets"
TELCO_CSV = DATASETS / "telco.csv"
# IBM's Telco churn file as ../shared/datasets/README.md describes it; another file is another test.
TELCO_SHA256 = "16320c9c1ec72448db59aa0a26a0b95401046bef5d02fd3aeb906448e3055e91"
# Set by .ci/run: CI has ../shared/datasets, so a data-set test that would skip there fails instead.
REQUIRE_DATASETS = "CHURN_TESTS_REQUIRE_DATASETS"
# Set by .ci/run: CI installs Chromium (make test-deps), so a browser test that would skip there fails instead.
REQUIRE_BROWSER = "CHURN_TESTS_REQUIRE_BROWSER"
# Set by .ci/run: CI has Python 3.12 and so the image twin; a test needing it fails there instead of skipping.
REQUIRE_TWIN = "CHURN_TESTS_REQUIRE_TWIN"

HEADER = ("CustomerID,Gender,Age,MonthlyCharges,TotalCharges,Tenure,Contract,InternetService,TechSupport,"
          "StreamingTV,PaymentMethod,Churn")


@dataclass
class ScriptRun:
    returncode: int
    stdout: str
    stderr: str


def container_python() -> str:
    """The Python the container scripts run with here: the image twin's, as the local backend's jobs.

    Without the twin (no Python 3.12 on this machine) the project's own, as the local backend falls
    back to; except where CHURN_TESTS_REQUIRE_TWIN is set (CI), where that fails the test.
    """
    from churn_pipeline.local.image_twin import TWIN_DIR, twin_python

    python = twin_python()
    if python is not None:
        return str(python)
    if os.environ.get(REQUIRE_TWIN):
        pytest.fail(f"no image twin at {TWIN_DIR}, and {REQUIRE_TWIN} says this machine must have it (make setup)")
    return sys.executable


def run_script(name: str, *args: str | Path, env: dict[str, str] | None = None) -> ScriptRun:
    """Run include/scripts/<name> in the image twin, as a person would by hand."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("SAGEMAKER_BASE_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    environment.update(env or {})
    completed = subprocess.run([container_python(), str(SCRIPTS / name), *map(str, args)], capture_output=True,
                               text=True, env=environment, timeout=600)
    return ScriptRun(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture(scope="session")
def twin() -> Path:
    """The image twin's python3. Absent (no Python 3.12 here): skipped with the reason, except where
    CHURN_TESTS_REQUIRE_TWIN is set (CI)."""
    from churn_pipeline.local.image_twin import TWIN_DIR, twin_python

    python = twin_python()
    if python is None:
        message = f"no image twin at {TWIN_DIR} (make setup builds it where Python 3.12 exists)"
        if os.environ.get(REQUIRE_TWIN):
            pytest.fail(f"{message}, and {REQUIRE_TWIN} says this machine must have it")
        pytest.skip(message)
    return python


def make_rows(count: int, seed: int = 0) -> list[str]:
    """Valid rows of the default schema with both classes well represented."""
    import random

    rng = random.Random(seed)
    rows = []
    for index in range(count):
        churn = "Yes" if index % 3 == 0 else "No"
        contract = "Month-to-month" if churn == "Yes" or rng.random() < 0.3 else rng.choice(["One year", "Two year"])
        rows.append(",".join([
            f"C{index:05d}", rng.choice(["Male", "Female"]), str(rng.randint(18, 80)),
            f"{rng.uniform(20, 110):.2f}", f"{rng.uniform(20, 5000):.2f}", str(rng.randint(0, 72)), contract,
            rng.choice(["DSL", "Fiber optic", "No"]), rng.choice(["Yes", "No"]), rng.choice(["Yes", "No"]),
            rng.choice(["Electronic check", "Mailed check"]), churn,
        ]))
    return rows


def write_csv(path: Path, lines: list[str], newline: str = "\n", bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = newline.join(lines) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


@pytest.fixture(scope="session")
def sample_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Preprocess, train and evaluate the bundled sample once; tests read the results."""
    root = tmp_path_factory.mktemp("sample")
    out, model, evaluation = root / "out", root / "model", root / "eval"
    for name, args in (
        ("preprocessing.py", ["--input-dir", SAMPLE_CSV.parent, "--output-dir", out]),
        ("training.py", ["--train", out / "train", "--validation", out / "validation",
                         "--preprocessor", out / "preprocessor", "--model-dir", model]),
        ("evaluation.py", ["--model", model, "--holdout", out / "holdout", "--baseline", out / "profile",
                           "--output-dir", evaluation]),
    ):
        result = run_script(name, *args)
        assert result.returncode == 0, result.stderr
    return {"out": out, "model": model, "evaluation": evaluation}


@pytest.fixture(scope="session")
def telco_csv() -> Path:
    """IBM's Telco churn data, checked to be the published file. Absent (a user's clone has no
    ../shared): skipped with the reason, except where CHURN_TESTS_REQUIRE_DATASETS is set (CI)."""
    import hashlib

    if not TELCO_CSV.is_file():
        message = f"{TELCO_CSV} is absent (it lives beside the project, not in it)"
        if os.environ.get(REQUIRE_DATASETS):
            pytest.fail(f"{message}, and {REQUIRE_DATASETS} says this machine must have it")
        pytest.skip(message)
    digest = hashlib.sha256(TELCO_CSV.read_bytes()).hexdigest()
    assert digest == TELCO_SHA256, f"{TELCO_CSV} is not the published Telco file (sha256 {digest})"
    return TELCO_CSV


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium (Debian package chromium, which make test-deps installs as root)."""
    from churn_pipeline.tooling.browser import find_chromium

    binary = find_chromium()
    if binary is None:
        message = "Chromium is not installed (make test-deps installs the Debian package chromium, as root)"
        if os.environ.get(REQUIRE_BROWSER):
            pytest.fail(f"{message}, and {REQUIRE_BROWSER} says this machine must have it")
        pytest.skip(message)
    return binary
