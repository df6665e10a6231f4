"""``stage_inputs``: fix the run's key, check input and schema with the data contract's own rules,
ship the code, stage input and schema, resolve the image, all before any paid job starts.

The checks read the schema and only the first bytes of each CSV the preprocessing job would read (a
ranged GET on S3), and their messages name what the user gave (``input_uri``, ``schema_uri``), the
columns found and the near misses; nothing is staged and no job starts when they fail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.domain.layout import RunLayout, run_key
from churn_pipeline.domain.s3_uris import is_s3_uri
from churn_pipeline.domain.settings import (
    PROJECT_DIR,
    SAMPLE_DATA_FILE,
    SCRIPTS_DIR,
    Settings,
    SettingsError,
    load_settings,
)
from churn_pipeline.tasks._run import described_source, log, received_optional, says_why_it_failed
from churn_pipeline.tasks.extracted_input import check_parquet_header, extracted_input

if TYPE_CHECKING:  # imported where used: the DAG file imports this module when the scheduler parses it
    from churn_pipeline.services.objectstore import ObjectStore


SHOWN_COLUMNS = 30  # a header listed in a message is cut after this many names


def _plain_path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else PROJECT_DIR / path


def _is_csv(name: str) -> bool:
    return name.lower().endswith(".csv")  # what the preprocessing job reads of its input folder


def _stage_code(store: ObjectStore, layout: RunLayout) -> None:
    """The scripts as the jobs get them: loose files for processing, sourcedir.tar.gz for training."""
    from churn_pipeline.services.archives import deterministic_tar  # run time only: keeps parsing light

    for path in sorted(SCRIPTS_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            store.upload_file(path, f"{layout.code_uri}/{path.relative_to(SCRIPTS_DIR).as_posix()}")
    store.write_bytes(layout.sourcedir_uri, deterministic_tar(SCRIPTS_DIR))


def _read_schema(store: ObjectStore, value: str) -> tuple[bytes, dict[str, Any]]:
    """The user's schema, raw and parsed, checked with the rules the preprocessing job applies."""
    from churn_pipeline.domain.contract_rules import rules
    from churn_pipeline.services.objectstore import ObjectStoreError

    if is_s3_uri(value):
        try:
            raw = store.read_bytes(value)
        except ObjectStoreError as error:
            raise AirflowFailException(f"schema_uri: {error}") from None
    else:
        path = _plain_path(value)
        if not path.is_file():
            raise AirflowFailException(f"schema_uri: no schema file at {path}")
        raw = path.read_bytes()
    try:
        schema = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AirflowFailException(f"schema_uri: {value} is not valid JSON ({error})") from None
    problems = rules().schema_problems(schema)
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise AirflowFailException(f"schema_uri: {value} is not a valid data contract (see include/config/schema.json)"
                                   f", {len(problems)} problem(s):\n{listed}")
    return raw, schema


def _locate_input(settings: Settings, store: ObjectStore, value: str) -> None:
    """Fail unless ``input_uri`` names something; locally, seed a missing default input with the sample."""
    from churn_pipeline.services.objectstore import ObjectStoreError

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
        return
    if settings.backend != "local":
        raise AirflowFailException(f"input_uri must be an s3:// URI on the sagemaker backend, got {value!r}")
    if not _plain_path(value).exists():
        raise AirflowFailException(f"input_uri: no file or folder at {_plain_path(value)}")


def _csv_heads(store: ObjectStore, value: str) -> dict[str, bytes]:
    """The first bytes of every CSV the preprocessing job would read, by the name the user knows."""
    from churn_pipeline.domain.contract_rules import rules

    size = rules().HEADER_BYTES
    if is_s3_uri(value):
        return {uri: store.read_head(uri, size) for uri in store.list_uris(value) if _is_csv(uri)}
    path = _plain_path(value)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    heads = {}
    for file in files:
        if _is_csv(file.name):
            with file.open("rb") as handle:
                heads[str(file)] = handle.read(size)
    return heads


def _holds_parquet(store: ObjectStore, value: str) -> bool:
    from churn_pipeline.services.parquet_inputs import PARQUET_SUFFIX

    if is_s3_uri(value):
        return any(uri.endswith(PARQUET_SUFFIX) for uri in store.list_uris(value))
    path = _plain_path(value)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return any(file.name.endswith(PARQUET_SUFFIX) for file in files)


def _check_input_against_schema(input_value: str, schema_value: str, schema: dict[str, Any],
                                heads: dict[str, bytes]) -> None:
    """Every CSV of the input has a sound header holding every column the schema names, or one
    message lists what is wrong with each, the columns found and the near misses."""
    from churn_pipeline.domain.contract_rules import rules

    if not heads:
        raise AirflowFailException(f"input_uri: {input_value} holds no .csv or .parquet file (what the preprocessing "
                                   "job reads)")
    required = rules().required_columns(schema)
    problems, first_names = [], None
    for name, head in heads.items():
        header, header_problems = rules().read_header(head)
        problems += [f"{name}: {problem}" for problem in header_problems]
        if header_problems:
            continue
        names = [column.strip() for column in header]
        missing = rules().missing_column_problems(required, header)
        if missing:
            shown = ", ".join(names[:SHOWN_COLUMNS]) + (", ..." if len(names) > SHOWN_COLUMNS else "")
            problems += [f"{name}: {problem}" for problem in missing]
            problems.append(f"{name} has the columns: {shown}")
        if first_names is None:
            first_names = set(names)
        elif set(names) != first_names:
            problems.append(f"{name}: its columns differ from the first file's (every CSV must have the same columns)")
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise AirflowFailException(f"input_uri {input_value} does not fit schema_uri {schema_value}; nothing was "
                                   f"started:\n{listed}")


def _stage_input(store: ObjectStore, layout: RunLayout, value: str) -> str:
    """Where the preprocessing job reads the input: an S3 URI as given, a local path staged in the run."""
    from churn_pipeline.services.objectstore import upload_tree

    if is_s3_uri(value):
        return value
    path = _plain_path(value)
    if path.is_file():
        store.upload_file(path, f"{layout.input_uri}/{path.name}")
    elif not upload_tree(store, path, layout.input_uri):
        raise AirflowFailException(f"input_uri: the folder {path} is empty")
    log.info("staged the input %s at %s", path, layout.input_uri)
    return layout.input_uri


def _stage_schema(store: ObjectStore, layout: RunLayout, value: str, raw: bytes) -> str:
    if is_s3_uri(value):
        return value
    store.write_bytes(layout.schema_uri, raw)
    return layout.schema_uri


@says_why_it_failed
def stage_run_inputs(*, extracted: Any = None, params: dict[str, Any], dag_run: Any, **context: Any) -> dict[str, Any]:
    """Fix the run's key, check input and schema, ship the code, stage input and schema, resolve the
    image: all before any paid job starts. ``extracted``: what extract_customers wrote (None when it
    was skipped)."""
    from churn_pipeline.domain.payloads import ExtractedCustomers, StagedInputs
    from churn_pipeline.services import backend
    from churn_pipeline.services.objectstore import ObjectStoreError

    settings = load_settings()
    if settings.backend == "sagemaker":
        try:
            settings.require_sagemaker_resources()
        except SettingsError as error:
            raise AirflowFailException(str(error)) from None
    key = run_key(context.get("logical_date"), dag_run.run_after)
    layout = RunLayout(settings.base_uri, key)
    store = backend.object_store(settings)
    input_value, schema_value = str(params["input_uri"]).strip(), str(params["schema_uri"]).strip()
    try:
        raw_schema, schema = _read_schema(store, schema_value)
        from_source = extracted_input(extracted, params, settings, key)
        if from_source is None:  # the run reads input_uri: check it before anything is staged
            _locate_input(settings, store, input_value)
            try:
                heads = _csv_heads(store, input_value)
            except ObjectStoreError as error:
                raise AirflowFailException(f"input_uri: {error}") from None
            if heads or not _holds_parquet(store, input_value):
                _check_input_against_schema(input_value, schema_value, schema, heads)
                log.info("input_uri %s fits schema_uri %s (%d CSV file(s), headers checked)", input_value,
                         schema_value, len(heads))
        _stage_code(store, layout)
        input_uri = from_source or _stage_input(store, layout, input_value)
        schema_uri = _stage_schema(store, layout, schema_value, raw_schema)
        check_parquet_header(store, input_uri, schema_uri)  # Parquet inputs: the columns of their footers
    except OSError as error:
        raise AirflowFailException(f"cannot stage the run's inputs under {settings.base_uri}: "
                                   f"{error.strerror or error} ({error.filename or ''})") from None
    try:
        image_uri = backend.container_image(settings)
    except ValueError as error:
        raise AirflowFailException(f"cannot resolve the scikit-learn image ({error}); set CHURN_FRAMEWORK_VERSION "
                                   "to a supported version or CHURN_IMAGE_URI") from None
    except ImportError:  # MWAA: its constraints leave no room for sagemaker-core, startup.sh sets the image
        raise AirflowFailException("CHURN_IMAGE_URI is not set and sagemaker-core, which would resolve the "
                                   "scikit-learn image, is not installed; set CHURN_IMAGE_URI (on MWAA, the "
                                   "startup.sh of make mwaa-bundle does)") from None
    staged = StagedInputs(run_key=key, run_uri=layout.run_uri, input_uri=input_uri, schema_uri=schema_uri,
                          code_uri=layout.code_uri, image_uri=image_uri,
                          data_source=described_source(received_optional(ExtractedCustomers, extracted), params))
    log.info("run %s stages under %s", key, layout.run_uri)
    return staged.to_xcom()
