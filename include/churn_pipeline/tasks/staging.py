"""``stage_inputs``: fix the run's key, ship the code, check and stage input and schema, resolve the
image, all before any paid job starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline import backend
from churn_pipeline.layout import RunLayout, run_key
from churn_pipeline.objectstore import ObjectStore, ObjectStoreError, is_s3_uri, upload_tree
from churn_pipeline.payloads import StagedInputs
from churn_pipeline.settings import PROJECT_DIR, SAMPLE_DATA_FILE, SCRIPTS_DIR, Settings, SettingsError, load_settings
from churn_pipeline.tasks._run import log
from churn_pipeline.tasks.extracted_input import check_parquet_header, extracted_input


def _plain_path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else PROJECT_DIR / path


def _stage_code(store: ObjectStore, layout: RunLayout) -> None:
    """The scripts as the jobs get them: loose files for processing, sourcedir.tar.gz for training."""
    from churn_pipeline.local_runner import deterministic_tar  # run time only: keeps parsing light

    for path in sorted(SCRIPTS_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            store.upload_file(path, f"{layout.code_uri}/{path.relative_to(SCRIPTS_DIR).as_posix()}")
    store.write_bytes(layout.sourcedir_uri, deterministic_tar(SCRIPTS_DIR))


def _stage_input(settings: Settings, store: ObjectStore, layout: RunLayout, value: str) -> str:
    if is_s3_uri(value):
        try:
            present = store.exists(value)
        except ObjectStoreError as error:
            raise AirflowFailException(f"input_uri: {error}") from None
        if not present and settings.backend == "local" and value == settings.default_input_uri:
            store.upload_file(SAMPLE_DATA_FILE, value)
            log.info("the local store had no default input; seeded %s with the bundled sample %s",
                     value, SAMPLE_DATA_FILE)
        elif not present:
            raise AirflowFailException(f"input_uri: no object at {value}; upload the customer CSV there first")
        return value
    if settings.backend != "local":
        raise AirflowFailException(f"input_uri must be an s3:// URI on the sagemaker backend, got {value!r}")
    path = _plain_path(value)
    if path.is_file():
        store.upload_file(path, f"{layout.input_uri}/{path.name}")
    elif path.is_dir():
        if not upload_tree(store, path, layout.input_uri):
            raise AirflowFailException(f"input_uri: the folder {path} is empty")
    else:
        raise AirflowFailException(f"input_uri: no file or folder at {path}")
    log.info("staged the input %s at %s", path, layout.input_uri)
    return layout.input_uri


def _stage_schema(store: ObjectStore, layout: RunLayout, value: str) -> str:
    if is_s3_uri(value):
        try:
            raw = store.read_bytes(value)
        except ObjectStoreError as error:
            raise AirflowFailException(f"schema_uri: {error}") from None
        uri = value
    else:
        path = _plain_path(value)
        if not path.is_file():
            raise AirflowFailException(f"schema_uri: no schema file at {path}")
        raw = path.read_bytes()
        uri = layout.schema_uri
    try:
        schema = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AirflowFailException(f"schema_uri: {value} is not valid JSON ({error})") from None
    if not isinstance(schema, dict) or "target" not in schema:
        raise AirflowFailException(f"schema_uri: {value} is not a churn schema (no 'target'); see include/config/")
    if uri != value:
        store.write_bytes(uri, raw)
    return uri


def stage_run_inputs(*, params: dict[str, Any], dag_run: Any, **context: Any) -> dict[str, Any]:
    """Fix the run's key, ship the code, check and stage input and schema, resolve the image: all
    before any paid job starts."""
    settings = load_settings()
    if settings.backend == "sagemaker":
        try:
            settings.require_sagemaker_resources()
        except SettingsError as error:
            raise AirflowFailException(str(error)) from None
    key = run_key(context.get("logical_date"), dag_run.run_after)
    layout = RunLayout(settings.base_uri, key)
    store = backend.object_store(settings)
    try:
        _stage_code(store, layout)
        input_uri = (extracted_input(context["ti"], params, settings, key)
                     or _stage_input(settings, store, layout, str(params["input_uri"]).strip()))
        schema_uri = _stage_schema(store, layout, str(params["schema_uri"]).strip())
        check_parquet_header(store, input_uri, schema_uri)
    except OSError as error:
        raise AirflowFailException(f"cannot stage the run's inputs under {settings.base_uri}: "
                                   f"{error.strerror or error} ({error.filename or ''})") from None
    try:
        image_uri = backend.container_image(settings)
    except ValueError as error:
        raise AirflowFailException(f"cannot resolve the scikit-learn image ({error}); set CHURN_FRAMEWORK_VERSION "
                                   "to a supported version or CHURN_IMAGE_URI") from None
    staged = StagedInputs(run_key=key, run_uri=layout.run_uri, input_uri=input_uri, schema_uri=schema_uri,
                          code_uri=layout.code_uri, image_uri=image_uri)
    log.info("run %s stages under %s", key, layout.run_uri)
    return staged.to_xcom()
