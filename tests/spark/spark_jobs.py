"""Running the Spark scripts as a Spark job runs them: ``spark-submit`` from the Spark twin on
``local[2]``, with the shared code as a zip in ``--py-files``; and the scikit-learn scripts beside them
in the image twin, on the same input, for the parity tests."""

from __future__ import annotations

import os
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import SCRIPTS

SPARK_SCRIPTS = SCRIPTS / "spark"
# What the tests' jobs need and no more: one small machine, nothing listening beyond loopback
SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.memory": "1g",
}


@dataclass
class SparkRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_error_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def shared_code_zip(folder: Path) -> Path:
    """churn_common as the job ships it: a zip with the package at its root (the JSON files too)."""
    archive = folder / "churn_common.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted((SCRIPTS / "churn_common").iterdir()):
            if path.suffix in (".py", ".json"):
                bundle.write(path, f"churn_common/{path.name}")
    return archive


def run_spark_script(python: Path, py_files: Path, name: str, *args: str | Path, base_dir: Path | None = None,
                     timeout: int = 600) -> SparkRun:
    """Run include/scripts/spark/<name> with the Spark twin's spark-submit on local[2]."""
    twin = python.parent.parent
    spark_home = next((twin / "lib").glob("python3*/site-packages/pyspark"))
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("SAGEMAKER_BASE_DIR", "PYTHONPATH", "VIRTUAL_ENV", "SPARK_HOME")}
    environment.update({"SPARK_HOME": str(spark_home), "PYSPARK_PYTHON": str(python),
                        "PYSPARK_DRIVER_PYTHON": str(python), "SPARK_LOCAL_IP": "127.0.0.1"})
    if base_dir is not None:
        environment["SAGEMAKER_BASE_DIR"] = str(base_dir)
    command = [str(spark_home / "bin" / "spark-submit"), "--master", "local[2]", "--py-files", str(py_files)]
    for key, value in SPARK_CONF.items():
        command += ["--conf", f"{key}={value}"]
    command += [str(SPARK_SCRIPTS / name), *map(str, args)]
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout)
    return SparkRun(completed.returncode, completed.stdout, completed.stderr)


def run_spark_steps(python: Path, py_files: Path, steps: list[tuple[str, list[str | Path]]],
                    base_dirs: list[Path | None] | None = None, keep_going: bool = False,
                    timeout: int = 900) -> SparkRun:
    """Run several include/scripts/spark/ steps in one spark-submit (tests/spark/run_steps.py), each
    with its own SAGEMAKER_BASE_DIR where ``base_dirs`` gives one."""
    import json

    bases = base_dirs or [None] * len(steps)
    listed = [[str(SPARK_SCRIPTS / name), [str(argument) for argument in arguments],
               None if base is None else str(base)] for (name, arguments), base in zip(steps, bases, strict=True)]
    return run_spark_script(python, py_files, str(Path(__file__).with_name("run_steps.py")),
                            *(["--keep-going"] if keep_going else []), json.dumps(listed), timeout=timeout)
