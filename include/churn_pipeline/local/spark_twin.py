"""The Spark twin: a virtual environment at ``<project>/.venv-spark`` that holds what SageMaker's Spark
processing image (``sagemaker-spark-processing:3.5-cpu-py312-v1.3``) holds for a PySpark job: Python
3.12 and the exact pins of ``requirements-spark.txt`` (pyspark 3.5.6, the upstream version of the
image's EMR Spark, with numpy and pandas at the image's versions and no pyarrow or scikit-learn),
plus ``bin/smspark-submit``, which runs a stand-in for the image's entry point
(``churn_pipeline.local.smspark_submit``) with the twin's interpreter. Java 17 comes from the
machine (``JAVA_HOME`` or ``java`` on the system ``PATH``; ``make setup`` installs Debian's
``openjdk-17-jre-headless`` as root).

The local runner runs a processing request whose image is the Spark processing image with this
twin's ``bin`` first on the job's ``PATH``, so that ``smspark-submit`` resolves to the stand-in as
``python3`` resolves to the scikit-learn twin's.

    python -m churn_pipeline.local.spark_twin install-submit   # (re)write bin/smspark-submit
    python -m churn_pipeline.local.spark_twin check            # exit 1 when the twin drifted

Pure standard library: the local runner imports it at task run time, never the DAG file.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from churn_pipeline.domain.settings import PROJECT_DIR
from churn_pipeline.local.image_twin import (
    INSTALLED_MARKER,
    JobPython,
    _venv_python_version,
    installed_versions,
    pinned_versions,
    version_drift,
)
from churn_pipeline.local.smspark_submit import find_java as find_java  # where Spark's scripts find Java

TWIN_DIR = PROJECT_DIR / ".venv-spark"
REQUIREMENTS_FILE = PROJECT_DIR / "requirements-spark.txt"
SUBMIT_SOURCE = Path(__file__).with_name("smspark_submit.py")
SUBMIT_NAME = "smspark-submit"  # the image's ENTRYPOINT
# The repository of SageMaker's Spark processing images, in every region's registry
SPARK_PROCESSING_REPOSITORY = "sagemaker-spark-processing"
# The image line the twin stands for; another tag of the repository runs in it with a warning
TWIN_IMAGE_TAG = "3.5-cpu-py312-v1.3"
JAVA_MAJOR = 17  # the image's Amazon Corretto 17


def image_repository(image_uri: str) -> str:
    """``<registry>/<repository>:<tag>`` (or ``@sha256:...``) -> the repository's name."""
    without_digest = image_uri.split("@", 1)[0]
    path = without_digest.split("/", 1)[1] if "/" in without_digest else without_digest
    return path.rsplit(":", 1)[0] if ":" in path.rsplit("/", 1)[-1] else path


def image_tag(image_uri: str) -> str:
    """The image's tag, empty for a digest or an untagged URI."""
    last = image_uri.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


def is_spark_processing_image(image_uri: str) -> bool:
    """Whether a request's ``ImageUri`` names SageMaker's Spark processing image (any region, any tag)."""
    return image_repository(image_uri) == SPARK_PROCESSING_REPOSITORY


def twin_python(twin_dir: Path = TWIN_DIR) -> Path | None:
    """The twin's ``python3``, when the twin is complete (make writes its marker last)."""
    python = twin_dir / "bin" / "python3"
    return python if (twin_dir / INSTALLED_MARKER).is_file() and python.exists() else None


def spark_job_python(twin_dir: Path = TWIN_DIR) -> JobPython | None:
    """The interpreter Spark jobs run with (the twin's), or None when there is no twin: a Spark job
    cannot fall back to the project's environment, which has no Spark."""
    python = twin_python(twin_dir)
    if python is None:
        return None
    return JobPython(python, is_twin=True, version=_venv_python_version(twin_dir))


def java_major(java: Path) -> int | None:
    """The major version ``java -version`` reports (``"17.0.15"`` -> 17, ``"1.8.0_402"`` -> 8)."""
    try:
        completed = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', completed.stderr + completed.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def java_drift(environ: Mapping[str, str]) -> list[str]:
    """Whether the Java Spark would run on is the image's major version (empty: it is)."""
    java = find_java(environ)
    if java is None:
        return ["java: not found (JAVA_HOME or java on the PATH); make setup installs openjdk-17-jre-headless"]
    major = java_major(java)
    return [] if major == JAVA_MAJOR else [f"java: {java} is Java {major or 'of an unknown version'}, the image "
                                           f"runs Java {JAVA_MAJOR}"]


def submit_text(python: Path) -> str:
    """What ``bin/smspark-submit`` holds: the twin's interpreter running the stand-in's module from
    the project, so that the twin always runs the stand-in as it is now (no copy to go stale)."""
    return (f"#!{python}\n"
            "# The Spark twin's smspark-submit: the stand-in churn_pipeline.local.smspark_submit (standard\n"
            "# library only), run from the project, which the twin does not install.\n"
            "import runpy\n"
            f"runpy.run_path({str(SUBMIT_SOURCE)!r}, run_name=\"__main__\")\n")


def install_submit(twin_dir: Path = TWIN_DIR) -> Path:
    """Write the stand-in into the twin's ``bin`` (atomically, executable)."""
    python = twin_dir / "bin" / "python3"
    if not python.exists():
        raise FileNotFoundError(f"no virtual environment at {twin_dir}")
    target = twin_dir / "bin" / SUBMIT_NAME
    partial = target.with_name(f".{SUBMIT_NAME}.partial")
    partial.write_text(submit_text(python), encoding="utf-8")
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(target)
    return target


def submit_drift(twin_dir: Path = TWIN_DIR) -> list[str]:
    """Whether ``bin/smspark-submit`` is the current stand-in (empty: it is)."""
    target = twin_dir / "bin" / SUBMIT_NAME
    if not target.is_file():
        return [f"{SUBMIT_NAME}: not installed in {target.parent}"]
    if not os.access(target, os.X_OK):
        return [f"{SUBMIT_NAME}: {target} is not executable"]
    if target.read_text(encoding="utf-8") != submit_text(twin_dir / "bin" / "python3"):
        return [f"{SUBMIT_NAME}: {target} does not run {SUBMIT_SOURCE} (make setup rewrites it)"]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = arguments[0] if arguments else ""
    if command == "install-submit":
        print(f"installed {install_submit()}")
        return 0
    if command == "check":
        python = twin_python()
        if python is None:
            print(f"no Spark twin at {TWIN_DIR}; make setup builds it")
            return 1
        drift = (version_drift(pinned_versions(REQUIREMENTS_FILE), installed_versions(python)) + submit_drift()
                 + java_drift(os.environ))
        print("\n".join(drift) if drift else f"{TWIN_DIR} holds exactly the pins of {REQUIREMENTS_FILE.name} "
                                             f"and the current {SUBMIT_NAME}, on Java {JAVA_MAJOR}")
        return 1 if drift else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
