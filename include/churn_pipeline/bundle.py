"""Build what Amazon MWAA expects from this project:

    build/mwaa/dags/           customer_churn_pipeline.py, churn_pipeline/ (this package),
                               scripts/ (shipped to the jobs), config/ (schemas)  -> s3://<env>/dags/
    build/mwaa/plugins.zip     the Airflow plugin (console links)                 -> plugins.zip
    build/mwaa/requirements.txt  the DAG side's pins without Airflow or its providers, which MWAA
                               installs itself under its own constraints          -> requirements.txt

The package finds scripts/ and config/ beside itself, so the same code runs from include/ locally
and from the DAGs folder on MWAA.   make mwaa-bundle   (or python -m churn_pipeline.bundle OUT)
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from churn_pipeline.settings import CONFIG_DIR, INCLUDE_DIR, PROJECT_DIR, SCRIPTS_DIR

# Needed only inside the SageMaker containers (the scikit-learn image brings them) or locally.
CONTAINER_ONLY = ("scikit-learn", "pandas")


def mwaa_requirements(requirements: str) -> str:
    kept = ["# MWAA provides Airflow and its amazon provider under its own constraints file."]
    for line in requirements.splitlines():
        name = line.split("==")[0].split("[")[0].strip().lower()
        if not name or name.startswith("#") or name.startswith("apache-airflow") or name in CONTAINER_ONLY:
            continue
        kept.append(line.strip())
    return "\n".join(kept) + "\n"


def _copy_tree(source: Path, destination: Path) -> None:
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def build(output: Path) -> Path:
    output = Path(output)
    if output.exists():
        shutil.rmtree(output)
    dags = output / "dags"
    dags.mkdir(parents=True)
    shutil.copy2(PROJECT_DIR / "dags" / "customer_churn_pipeline.py", dags)
    _copy_tree(INCLUDE_DIR / "churn_pipeline", dags / "churn_pipeline")
    _copy_tree(SCRIPTS_DIR, dags / SCRIPTS_DIR.name)
    _copy_tree(CONFIG_DIR, dags / CONFIG_DIR.name)
    (dags / ".airflowignore").write_text("churn_pipeline/\nscripts/\nconfig/\n")
    with zipfile.ZipFile(output / "plugins.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for plugin in sorted((PROJECT_DIR / "plugins").glob("*.py")):
            archive.write(plugin, plugin.name)
    (output / "requirements.txt").write_text(mwaa_requirements((PROJECT_DIR / "requirements.txt").read_text()))
    return output


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    output = build(Path(arguments[0]) if arguments else PROJECT_DIR / "build" / "mwaa")
    print(f"MWAA bundle in {output}: upload dags/ to the environment's DAGs folder, plugins.zip and "
          "requirements.txt to its bucket")
    return 0


if __name__ == "__main__":
    sys.exit(main())
