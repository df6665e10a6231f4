"""The image twin (.venv-container) holds what the SageMaker scikit-learn image holds, and stays so:
its pins are the image's, drift is reported package by package, and the project loads models with the
image's scikit-learn. The twin itself, as processes: tests/scripts/test_image_twin_processes.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from churn_pipeline.local.image_twin import (
    REQUIREMENTS_FILE,
    pinned_versions,
    version_drift,
)
from tests.conftest import PROJECT

# The image 1.9-0 as its public build files pin it (aws/deep-learning-containers, docker/sklearn/1.9-0).
IMAGE_VERSIONS = {"scikit-learn": "1.9.0", "pandas": "2.2.3", "numpy": "2.5.1", "scipy": "1.18.0",
                  "pyarrow": "25.0.0", "joblib": "1.5.3", "sagemaker-training": "4.8.0"}


def test_the_pins_are_the_images_versions() -> None:
    pins = pinned_versions()
    assert {name: pins.get(name) for name in IMAGE_VERSIONS} == IMAGE_VERSIONS
    assert len(pins) == 57, "the image's whole closure, not only its top-level packages"


def test_drift_is_reported_package_by_package() -> None:
    pinned = {"pandas": "2.2.3", "numpy": "2.5.1"}
    installed = {"pandas": "3.1.1", "requests": "2.33.0"}
    assert version_drift(pinned, installed) == ["numpy: pinned 2.5.1, installed nothing",
                                                "pandas: pinned 2.2.3, installed 3.1.1",
                                                "requests: installed 2.33.0, not pinned"]


def test_a_line_that_is_not_an_exact_pin_is_refused(tmp_path: Path) -> None:
    loose = tmp_path / "requirements.txt"
    loose.write_text("# comment\npandas==2.2.3\nnumpy>=2\n")
    with pytest.raises(ValueError, match="not an exact pin: 'numpy>=2'"):
        pinned_versions(loose)


def test_the_project_loads_models_with_the_images_scikit_learn() -> None:
    """A model the twin pickles loads here (tests, tools) and in the image without a version warning."""
    import sklearn

    pinned_here = re.search(r"^scikit-learn==(\S+)$", (PROJECT / "requirements.txt").read_text(), re.M)
    assert pinned_here and pinned_here.group(1) == pinned_versions(REQUIREMENTS_FILE)["scikit-learn"]
    assert sklearn.__version__ == pinned_here.group(1)
