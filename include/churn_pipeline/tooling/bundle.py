"""Build what Amazon MWAA expects from this project:

    build/mwaa/dags/             the DAG files (training, scoring, approval), churn_pipeline/ (this package
                                 less its tooling/ and local/ layers),
                                 scripts/ (shipped to the jobs), config/ (schemas)  -> s3://<env>/dags/
    build/mwaa/requirements.txt  what the worker side needs beyond what MWAA's image holds: the report's
                                 matplotlib, the scoring tasks' pandas, the Parquet checks' pyarrow,
                                 unpinned, so that MWAA's constraints file chooses each version
                                                                                   -> requirements.txt
    build/mwaa/plugins.zip       with --wheels: those requirements as wheels (for MWAA's Python 3.12 on
                                 Amazon Linux 2023, under that Airflow version's MWAA constraints), and
                                 requirements.txt installs from them alone (--no-index), as an environment
                                 in private subnets without internet access must      -> plugins.zip
    build/mwaa/startup.sh        exports every CHURN_* setting given at build time, the backend
                                 (sagemaker) and CHURN_IMAGE_URI (resolved here)   -> startup script

A bundle is for the sagemaker backend, so building one needs the region, the SageMaker execution role
and the team's topic (CHURN_REGION, CHURN_ROLE_ARN, CHURN_SNS_TOPIC_ARN); without them it refuses in one
line rather than bake in us-east-1's image or a pipeline that fails on its first night.

No package resolves the container image on MWAA: ``sagemaker-core`` (the smallest that holds
``image_uris``; the whole ``sagemaker`` SDK depends on it) requires ``importlib-metadata<7`` while
every Airflow 3 constraints file MWAA installs with pins 8.x, so it cannot be installed there. The
bundle therefore resolves the image URI here, at build time, for the configured region and
framework version (or takes ``CHURN_IMAGE_URI`` as set), and ``startup.sh`` sets it on MWAA.

There is no Airflow plugin: the job tasks' console links are their operators' ``operator_extra_links``,
whose URLs Airflow 3 keeps in XCom, and a plugin importing the package would fail to load on MWAA,
where the DAGs folder is not on the plugins' path.

The output folder is replaced only when it is an earlier bundle (it holds ``.churn-mwaa-bundle``); the
new bundle is built beside it and moved into place, so a failed build leaves nothing half-written.

    make mwaa-bundle   (or python -m churn_pipeline.tooling.bundle [OUT] [--wheels] [--airflow-version V])
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from churn_pipeline.domain.settings import (
    CONFIG_DIR,
    INCLUDE_DIR,
    PROJECT_DIR,
    SCRIPTS_DIR,
    Settings,
    SettingsError,
    load_settings,
)
from churn_pipeline.domain.settings_sources import variable_values

# What the worker side imports on MWAA that its image does not hold (every MWAA Airflow 3 image lacks
# them: deploy/mwaa/<version>/Python-Packages-BOM.txt.gz), unpinned, so that MWAA's constraints file
# chooses the version: the report's figures, the scoring tasks' table, the Parquet footer checks.
MWAA_REQUIREMENTS: tuple[str, ...] = ("matplotlib", "pandas", "pyarrow")
MWAA_DIR = PROJECT_DIR / "deploy" / "mwaa"
# The MWAA images whose pins, constraints and bill of materials deploy/mwaa/ keeps; `make rehearse`
# runs the bundle in a twin of each, and the docs name these and no other.
MWAA_VERSIONS = ("3.2.1", "3.3.1")
# Where MWAA unpacks plugins.zip on its containers
MWAA_PLUGINS_FOLDER = "/usr/local/airflow/plugins"
BUNDLE_MARKER = ".churn-mwaa-bundle"
# The wheel platforms MWAA's Amazon Linux 2023 (glibc 2.34) runs, newest first
AMAZON_LINUX_2023_PLATFORMS = tuple(f"manylinux_2_{minor}_x86_64" for minor in range(34, 16, -1)) + (
    "manylinux2014_x86_64",)
# Settings a bundle cannot be built without (the sagemaker backend's, and the region its image is for)
REQUIRED_AT_BUILD = ("region", "role_arn", "sns_topic_arn")
# Settings that mean nothing on MWAA: the local backend's store, the backend itself (always sagemaker)
NOT_FOR_MWAA = ("local_root", "backend", "image_uri")


class BundleError(Exception):
    """The bundle cannot be built as asked; the message says why in one line."""


def mwaa_requirements(wheels: bool = False) -> str:
    lines = ["# MWAA installs Airflow, the amazon provider (with aiobotocore) and boto3 under Airflow's constraints,",
             "# and these under the same constraints (this file names none of its own, so MWAA adds its file);",
             "# the container image comes from CHURN_IMAGE_URI (startup.sh), so no SageMaker SDK is needed."]
    if wheels:
        lines += ["# From the wheels in plugins.zip alone: no package index is needed (private networks).",
                  "--no-index", f"--find-links {MWAA_PLUGINS_FOLDER}"]
    return "\n".join([*lines, *MWAA_REQUIREMENTS]) + "\n"


def image_uri_for(settings: Settings) -> str:
    """The image the jobs run in: CHURN_IMAGE_URI, or resolved now from sagemaker-core's image table
    (build time only)."""
    from churn_pipeline.services.backend import container_image

    return container_image(settings)


def settings_for_mwaa(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``CHURN_*`` variables startup.sh exports: every setting given at build time, by its own name."""
    given = variable_values(Settings.model_fields, environ)
    return {f"CHURN_{field.upper()}": value for field, value in sorted(given.items()) if field not in NOT_FOR_MWAA}


def startup_script(image_uri: str, settings: Mapping[str, str]) -> str:
    lines = ["#!/bin/sh",
             "# MWAA startup script (sourced by bash in every component before Airflow starts): the churn",
             "# pipeline's settings as given when the bundle was built, the backend, and the container image",
             "# of the jobs (no SageMaker SDK is installed on MWAA). Rebuild the bundle to change them.",
             "export CHURN_BACKEND=sagemaker",
             *(f"export {name}={shlex.quote(value)}" for name, value in settings.items()),
             f"export CHURN_IMAGE_URI={shlex.quote(image_uri)}"]
    return "\n".join(lines) + "\n"


def check_buildable(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of a sagemaker bundle, or a BundleError naming what is missing."""
    given = variable_values(Settings.model_fields, environ)
    missing = [f"CHURN_{field.upper()}" for field in REQUIRED_AT_BUILD if field not in given]
    if missing:
        raise BundleError(f"an MWAA bundle runs the sagemaker backend and needs {', '.join(missing)} set when it is "
                          "built (startup.sh carries the settings to MWAA)")
    try:
        return load_settings({**(os.environ if environ is None else environ), "CHURN_BACKEND": "sagemaker"})
    except SettingsError as error:
        raise BundleError(" ".join(str(error).split())) from None


# Layers of the package that an MWAA worker never runs: developer tooling (this module among them)
# and the local SageMaker emulator (the bundle runs the sagemaker backend).
LEFT_OUT_OF_BUNDLE = ("tooling", "local")


def _copy_tree(source: Path, destination: Path, left_out: Sequence[str] = ()) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = set(shutil.ignore_patterns("__pycache__", "*.pyc")(folder, names))
        return skipped | ({name for name in names if name in left_out} if Path(folder) == source else set())

    shutil.copytree(source, destination, ignore=ignore)


def constraints_of(airflow_version: str) -> list[Path]:
    """MWAA's two constraints files of that image: Airflow's (which a requirements file may replace)
    and MWAA's essential ones (which always apply)."""
    folder = MWAA_DIR / airflow_version
    if not folder.is_dir():
        raise BundleError(f"no MWAA image {airflow_version} in {MWAA_DIR} (these are: {', '.join(MWAA_VERSIONS)})")
    return [folder / "airflow_constraints.txt", folder / "mwaa_essential_constraints.txt"]


def download_wheels(airflow_version: str, into: Path) -> list[Path]:
    """The requirements and their dependencies as wheels for MWAA's CPython 3.12 on Amazon Linux 2023
    (glibc 2.34), each at the version MWAA's constraints for that image choose."""
    into.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312",
               "--dest", str(into)]
    for platform in AMAZON_LINUX_2023_PLATFORMS:  # pip matches each tag named, not the older ones a tag implies
        command += ["--platform", platform]
    for constraints in constraints_of(airflow_version):
        command += ["--constraint", str(constraints)]
    completed = subprocess.run([*command, *MWAA_REQUIREMENTS], capture_output=True, text=True, timeout=900)
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BundleError(f"pip could not download the wheels for MWAA {airflow_version}: {last}")
    return sorted(into.glob("*.whl"))


def _is_earlier_bundle(folder: Path) -> bool:
    return (folder / BUNDLE_MARKER).is_file()


def build(output: Path, settings: Settings | None = None, *, wheels: bool = False,
          airflow_version: str = MWAA_VERSIONS[-1], environ: Mapping[str, str] | None = None) -> Path:
    settings = settings or check_buildable(environ)
    output = Path(output).absolute()
    if output.exists() and not (output.is_dir() and (not any(output.iterdir()) or _is_earlier_bundle(output))):
        raise BundleError(f"{output} exists and is not an earlier MWAA bundle (it has no {BUNDLE_MARKER}): "
                          "name a new folder, or remove this one yourself")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.", dir=output.parent) as scratch:
        staging = Path(scratch) / "bundle"
        dags = staging / "dags"
        dags.mkdir(parents=True)
        for dag_file in sorted((PROJECT_DIR / "dags").glob("*.py")):
            shutil.copy2(dag_file, dags)
        _copy_tree(INCLUDE_DIR / "churn_pipeline", dags / "churn_pipeline", LEFT_OUT_OF_BUNDLE)
        _copy_tree(SCRIPTS_DIR, dags / SCRIPTS_DIR.name)
        _copy_tree(CONFIG_DIR, dags / CONFIG_DIR.name)
        (dags / ".airflowignore").write_text("churn_pipeline/\nscripts/\nconfig/\n")
        shipped = download_wheels(airflow_version, Path(scratch) / "wheels") if wheels else []
        with zipfile.ZipFile(staging / "plugins.zip", "w", zipfile.ZIP_STORED) as archive:
            for wheel in shipped:  # flat, as --find-links reads them; wheels are compressed already
                archive.write(wheel, wheel.name)
        (staging / "requirements.txt").write_text(mwaa_requirements(wheels))
        (staging / "startup.sh").write_text(startup_script(image_uri_for(settings), settings_for_mwaa(environ)))
        (staging / BUNDLE_MARKER).write_text(f"MWAA bundle for Airflow {airflow_version}"
                                             f"{' with wheels' if wheels else ''}\n")
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    return output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m churn_pipeline.tooling.bundle",
                                     description="Build the MWAA bundle (dags/, requirements.txt, plugins.zip, "
                                                 "startup.sh) from the CHURN_* settings of this shell.")
    parser.add_argument("output", nargs="?", type=Path, default=PROJECT_DIR / "build" / "mwaa",
                        help="the bundle's folder (default build/mwaa); replaced only if it is an earlier bundle")
    parser.add_argument("--wheels", action="store_true",
                        help="ship the requirements as wheels in plugins.zip, for environments without internet")
    parser.add_argument("--airflow-version", choices=MWAA_VERSIONS, default=MWAA_VERSIONS[-1],
                        help="the MWAA Airflow version whose constraints choose the wheels (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        settings = check_buildable()
        output = build(args.output, settings, wheels=args.wheels, airflow_version=args.airflow_version)
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"error: cannot resolve the container image ({error}); set CHURN_IMAGE_URI or CHURN_FRAMEWORK_VERSION",
              file=sys.stderr)
        return 1
    print(f"MWAA bundle in {output}: upload dags/ to the environment's DAGs folder, plugins.zip, requirements.txt "
          f"and startup.sh to its bucket (docs/aws.md, MWAA; image {image_uri_for(settings)} for {settings.region})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
