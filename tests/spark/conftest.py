"""The Spark twin for the Spark scripts' tests: the image's Python environment (.venv-spark) and a way
to run a script in it as a Spark job runs it (spark-submit, churn_common as --py-files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import PROJECT, REQUIRE_TWIN

SPARK_TWIN = PROJECT / ".venv-spark"


@pytest.fixture(scope="session")
def spark_python() -> Path:
    """The Spark twin's python. Absent: skipped with the reason, except where CHURN_TESTS_REQUIRE_TWIN
    is set (CI), where the twin must be there."""
    python = SPARK_TWIN / "bin" / "python"
    if not python.is_file():
        message = f"no Spark twin at {SPARK_TWIN} (the image's pyspark, numpy and pandas on Python 3.12)"
        if os.environ.get(REQUIRE_TWIN):
            pytest.fail(f"{message}, and {REQUIRE_TWIN} says this machine must have it")
        pytest.skip(message)
    return python
