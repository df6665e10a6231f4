"""Build what Amazon MWAA expects from this project:

    build/mwaa/dags/             the DAG files (training, scoring, approval), churn_pipeline/ (this package
                                 less its tooling/ and local/ layers),
                                 scripts/ (shipped to the jobs), config/ (schemas)  -> s3://<env>/dags/
    build/mwaa/plugins.zip       the Airflow plugin (console links)                 -> plugins.zip
    build/mwaa/requirements.txt  what the DAG side needs beyond Airflow and the amazon provider (which
                                 MWAA installs itself under Airflow's constraints): nothing today
                                                                                   -> requirements.txt
    build/mwaa/startup.sh        exports CHURN_IMAGE_URI (resolved here when unset) -> startup script

No package resolves the container image on MWAA: ``sagemaker-core`` (the smallest that holds
``image_uris``; the whole ``sagemaker`` SDK depends on it) requires ``importlib-metadata<7`` while
every Airflow 3 constraints file MWAA installs with pins 8.x, so it cannot be installed there. The
bundle therefore resolves the image URI here, at build time, for the configured region and
framework version (or takes ``CHURN_IMAGE_URI`` as set), and ``startup.sh`` sets it on MWAA.

The package finds scripts/ and config/ beside itself, so the same code runs from include/ locally
and from the DAGs folder on MWAA.   make mwaa-bundle   (or python -m churn_pipeline.tooling.bundle OUT)
"""

from __future__ import annotations

import shlex
import shutil
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from churn_pipeline.domain.settings import CONFIG_DIR, INCLUDE_DIR, PROJECT_DIR, SCRIPTS_DIR, Settings, load_settings

# What the DAG side imports on MWAA that neither Airflow nor the amazon provider bring, unpinned
# above the oldest version that works, so that MWAA's constraints file chooses the version. None:
# the settings are read with pydantic alone, the report's template with Jinja2, both Airflow's own.
MWAA_REQUIREMENTS: tuple[str, ...] = ()


def mwaa_requirements() -> str:
    lines = ["# MWAA installs Airflow, the amazon provider (with aiobotocore) and boto3 under Airflow's constraints;",
             "# the container image comes from CHURN_IMAGE_URI (startup.sh), so no SageMaker SDK is needed.",
             *MWAA_REQUIREMENTS]
    return "\n".join(lines) + "\n"


def image_uri_for(settings: Settings) -> str:
    """The image the jobs run in: CHURN_IMAGE_URI, or resolved now from sagemaker-core's image table
    (build time only)."""
    from churn_pipeline.services.backend import container_image

    return container_image(settings)


def startup_script(image_uri: str) -> str:
    return ("#!/bin/sh\n"
            "# MWAA startup script: the container image of the jobs (no SageMaker SDK is installed on MWAA).\n"
            f"export CHURN_IMAGE_URI={shlex.quote(image_uri)}\n")


# Layers of the package that an MWAA worker never runs: developer tooling (this module among them)
# and the local SageMaker emulator (the bundle runs the sagemaker backend).
LEFT_OUT_OF_BUNDLE = ("tooling", "local")


def _copy_tree(source: Path, destination: Path, left_out: Sequence[str] = ()) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = set(shutil.ignore_patterns("__pycache__", "*.pyc")(folder, names))
        return skipped | ({name for name in names if name in left_out} if Path(folder) == source else set())

    shutil.copytree(source, destination, ignore=ignore)


def build(output: Path, settings: Settings | None = None) -> Path:
    settings = settings or load_settings()
    output = Path(output)
    if output.exists():
        shutil.rmtree(output)
    dags = output / "dags"
    dags.mkdir(parents=True)
    for dag_file in sorted((PROJECT_DIR / "dags").glob("*.py")):
        shutil.copy2(dag_file, dags)
    _copy_tree(INCLUDE_DIR / "churn_pipeline", dags / "churn_pipeline", LEFT_OUT_OF_BUNDLE)
    _copy_tree(SCRIPTS_DIR, dags / SCRIPTS_DIR.name)
    _copy_tree(CONFIG_DIR, dags / CONFIG_DIR.name)
    (dags / ".airflowignore").write_text("churn_pipeline/\nscripts/\nconfig/\n")
    with zipfile.ZipFile(output / "plugins.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for plugin in sorted((PROJECT_DIR / "plugins").glob("*.py")):
            archive.write(plugin, plugin.name)
    (output / "requirements.txt").write_text(mwaa_requirements())
    (output / "startup.sh").write_text(startup_script(image_uri_for(settings)))
    return output


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    settings = load_settings()
    try:
        output = build(Path(arguments[0]) if arguments else PROJECT_DIR / "build" / "mwaa", settings)
    except ValueError as error:
        print(f"error: cannot resolve the container image ({error}); set CHURN_IMAGE_URI or CHURN_FRAMEWORK_VERSION",
              file=sys.stderr)
        return 1
    print(f"MWAA bundle in {output}: upload dags/ to the environment's DAGs folder, plugins.zip, requirements.txt "
          f"and startup.sh to its bucket (image {image_uri_for(settings)} for {settings.region})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
