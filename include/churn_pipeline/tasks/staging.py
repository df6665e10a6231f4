"""``stage_inputs``: fix the run's key, check input and schema with the data contract's own rules,
ship the code, stage input and schema, resolve the image, all before any paid job starts.

The checks read the schema and only the first bytes of each CSV the preprocessing job would read (a
ranged GET on S3), and their messages name what the user gave (``input_uri``, ``schema_uri``), the
columns found and the near misses, every value neutralised (``churn_pipeline.domain.text``); nothing
is staged and no job starts when they fail.

Plain paths (local backend) cannot leak: a path is resolved (symlinks followed) and, where
``CHURN_PLAIN_PATH_ROOTS`` is set, must lie in one of its folders; every file read through an input
folder must resolve inside that folder; and only the tables a job reads (``.csv``, ``.parquet``)
are staged, so a stray link or file in the folder is never copied into the store.

Last, each job's peak memory is estimated from the staged input's size (``domain.sizing``: rows from
Parquet footers, else the CSV's bytes), and the run's engine is chosen from it once (``domain.engine``):
``auto`` runs scikit-learn while every job fits its instance and Spark past it; an explicit ``sklearn``
that will not fit is refused, one line per step, naming the smallest instance of the same family that
would fit and ``engine=spark``. Every run also gets the Spark jobs' ``--py-files``
(``churn_common.zip``) and each step's ``configuration.json`` under its code prefix (a scikit-learn
run too: a Spark champion scores its held-out customers with them), and a Spark run the Spark image.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.domain.layout import RunLayout, run_key
from churn_pipeline.domain.s3_uris import is_s3_uri
from churn_pipeline.domain.settings import (
    CONFIG_DIR,
    PROJECT_DIR,
    SAMPLE_DATA_FILE,
    SCRIPTS_DIR,
    Settings,
    SettingsError,
    load_settings,
)
from churn_pipeline.domain.text import shown
from churn_pipeline.tasks._run import described_source, log, received_optional, says_why_it_failed
from churn_pipeline.tasks.extracted_input import check_parquet_header, extracted_input

if TYPE_CHECKING:  # imported where used: the DAG file imports this module when the scheduler parses it
    from churn_pipeline.domain.engine import EngineChoice
    from churn_pipeline.domain.sizing import InputSize
    from churn_pipeline.services.objectstore import ObjectStore
    from churn_pipeline.services.parquet_inputs import ParquetFooter


SHOWN_COLUMNS = 30  # a header listed in a message is cut after this many names
SHARED_PACKAGE = "churn_common"  # the scripts' shared code: the Spark jobs' --py-files, zipped
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: the same code makes the same bytes


def _plain_path(settings: Settings, value: str, what: str, shipped: tuple[Path, ...] = ()) -> Path:
    """The file or folder a plain ``input_uri`` / ``schema_uri`` names, symlinks resolved; refused
    outside ``CHURN_PLAIN_PATH_ROOTS`` where that is set (``shipped``: folders of the package that
    are always readable, such as its schemas)."""
    given = Path(value).expanduser()
    path = (given if given.is_absolute() else PROJECT_DIR / given).resolve()
    roots = settings.plain_path_roots and (*settings.plain_path_roots, *shipped)
    if roots and not any(path.is_relative_to(root) for root in roots):
        raise AirflowFailException(f"{what}: {shown(value)} is outside the folders runs may read here "
                                   f"(CHURN_PLAIN_PATH_ROOTS: {', '.join(str(root) for root in roots)})")
    return path


def _is_csv(name: str) -> bool:
    return name.lower().endswith(".csv")  # what the preprocessing job reads of its input folder


def _is_table(name: str) -> bool:
    from churn_pipeline.services.parquet_inputs import PARQUET_SUFFIX

    return _is_csv(name) or name.endswith(PARQUET_SUFFIX)  # all the preprocessing job reads


def _tables_in(path: Path, what: str = "input_uri") -> list[Path]:
    """The tables a plain input names: the file itself, or every table below the folder, each of
    which must resolve inside it (a link out of the folder is refused, not followed)."""
    if path.is_file():
        return [path]
    tables = []
    for file in sorted(path.rglob("*")):
        if not _is_table(file.name):
            continue  # never read, never staged
        if not file.resolve().is_relative_to(path):
            raise AirflowFailException(f"{what}: {shown(file)} leads outside the folder {shown(path)}; files in an "
                                       "input folder must lie in it (nothing was read)")
        if file.is_file():
            tables.append(file)
    return tables


def _stage_code(store: ObjectStore, layout: RunLayout) -> None:
    """The scripts as the jobs get them: loose files for processing, sourcedir.tar.gz for training."""
    from churn_pipeline.services.archives import deterministic_tar  # run time only: keeps parsing light

    for path in sorted(SCRIPTS_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            store.upload_file(path, f"{layout.code_uri}/{path.relative_to(SCRIPTS_DIR).as_posix()}")
    store.write_bytes(layout.sourcedir_uri, deterministic_tar(SCRIPTS_DIR))


def py_files_archive(package: Path = SCRIPTS_DIR / SHARED_PACKAGE) -> bytes:
    """``churn_common.zip`` as ``spark-submit --py-files`` takes it: the package at the archive's root
    (``churn_common/__init__.py``, ...), its data files too, and the same bytes for the same code."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                entry = zipfile.ZipInfo(f"{package.name}/{path.relative_to(package).as_posix()}", ZIP_TIMESTAMP)
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = 0o644 << 16
                archive.writestr(entry, path.read_bytes())
    return buffer.getvalue()


def _stage_spark_code(settings: Settings, store: ObjectStore, layout: RunLayout) -> None:
    """What a Spark run's jobs get besides their scripts: ``--py-files`` and each step's configuration."""
    from churn_pipeline.domain.sizing import SIZED_STEPS
    from churn_pipeline.requests.spark import PY_FILES_ARCHIVE, spark_configuration_file

    store.write_bytes(f"{layout.py_files_uri}/{PY_FILES_ARCHIVE}", py_files_archive())
    for step in SIZED_STEPS:
        store.write_bytes(layout.spark_configuration_uri(step), spark_configuration_file(settings, step))


def _read_schema(settings: Settings, store: ObjectStore, value: str) -> tuple[bytes, dict[str, Any]]:
    """The user's schema, raw and parsed, checked with the rules the preprocessing job applies."""
    from churn_pipeline.domain.contract_rules import rules
    from churn_pipeline.services.objectstore import ObjectStoreError

    if is_s3_uri(value):
        try:
            raw = store.read_bytes(value)
        except ObjectStoreError as error:
            raise AirflowFailException(f"schema_uri: {shown(error)}") from None
    else:
        path = _plain_path(settings, value, "schema_uri", shipped=(CONFIG_DIR.resolve(),))
        if settings.backend != "local" and not path.is_relative_to(CONFIG_DIR.resolve()):
            # the worker's files are not the pipeline's on AWS: only the schemas shipped with the DAGs
            raise AirflowFailException(f"schema_uri must be an s3:// URI or a schema shipped in {CONFIG_DIR} on the "
                                       f"sagemaker backend, got {shown(value)!r}")
        if not path.is_file():
            raise AirflowFailException(f"schema_uri: no schema file at {shown(path)}")
        raw = path.read_bytes()
    try:
        schema = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AirflowFailException(f"schema_uri: {shown(value)} is not valid JSON ({error})") from None
    problems = rules().schema_problems(schema)
    if problems:
        listed = "\n".join(f"  - {shown(problem)}" for problem in problems)
        raise AirflowFailException(f"schema_uri: {shown(value)} is not a valid data contract (see "
                                   f"include/config/schema.json), {len(problems)} problem(s):\n{listed}")
    return raw, schema


def _locate_input(settings: Settings, store: ObjectStore, value: str) -> None:
    """Fail unless ``input_uri`` names something; locally, seed a missing default input with the sample."""
    from churn_pipeline.services.objectstore import ObjectStoreError

    if is_s3_uri(value):
        try:
            present = store.exists(value)
        except ObjectStoreError as error:
            raise AirflowFailException(f"input_uri: {shown(error)}") from None
        if not present and settings.backend == "local" and value == settings.default_input_uri:
            store.upload_file(SAMPLE_DATA_FILE, value)
            log.info("the local store had no default input; seeded %s with the bundled sample %s",
                     value, SAMPLE_DATA_FILE)
        elif not present:
            raise AirflowFailException(f"input_uri: no object at {shown(value)}; upload the customer CSV there first")
        return
    if settings.backend != "local":
        raise AirflowFailException(f"input_uri must be an s3:// URI on the sagemaker backend, got {shown(value)!r}")
    path = _plain_path(settings, value, "input_uri")
    if not path.exists():
        raise AirflowFailException(f"input_uri: no file or folder at {shown(path)}")


def _csv_heads(settings: Settings, store: ObjectStore, value: str) -> dict[str, bytes]:
    """The first bytes of every CSV the preprocessing job would read, by the name the user knows."""
    from churn_pipeline.domain.contract_rules import rules

    size = rules().HEADER_BYTES
    if is_s3_uri(value):
        return {uri: store.read_head(uri, size) for uri in store.list_uris(value) if _is_csv(uri)}
    heads = {}
    for file in _tables_in(_plain_path(settings, value, "input_uri")):
        if _is_csv(file.name):
            with file.open("rb") as handle:
                heads[str(file)] = handle.read(size)
    return heads


def _holds_parquet(settings: Settings, store: ObjectStore, value: str) -> bool:
    from churn_pipeline.services.parquet_inputs import PARQUET_SUFFIX

    if is_s3_uri(value):
        return any(uri.endswith(PARQUET_SUFFIX) for uri in store.list_uris(value))
    return any(file.name.endswith(PARQUET_SUFFIX) for file in _tables_in(_plain_path(settings, value, "input_uri")))


def _check_input_against_schema(input_value: str, schema_value: str, schema: dict[str, Any],
                                heads: dict[str, bytes]) -> None:
    """Every CSV of the input has a sound header holding every column the schema names, or one
    message lists what is wrong with each, the columns found and the near misses."""
    from churn_pipeline.domain.contract_rules import rules

    if not heads:
        raise AirflowFailException(f"input_uri: {shown(input_value)} holds no .csv or .parquet file (what the "
                                   "preprocessing job reads)")
    required = rules().required_columns(schema)
    problems, first_names = [], None
    for name, head in heads.items():
        header, header_problems = rules().read_header(head)
        problems += [f"{shown(name)}: {shown(problem)}" for problem in header_problems]
        if header_problems:
            continue
        names = [column.strip() for column in header]
        missing = rules().missing_column_problems(required, header)
        if missing:
            listed = ", ".join(shown(column) for column in names[:SHOWN_COLUMNS])
            problems += [f"{shown(name)}: {shown(problem)}" for problem in missing]
            problems.append(f"{shown(name)} has the columns: {listed}" + (", ..." if len(names) > SHOWN_COLUMNS
                                                                          else ""))
        if first_names is None:
            first_names = set(names)
        elif set(names) != first_names:
            problems.append(f"{shown(name)}: its columns differ from the first file's (every CSV must have the same "
                            "columns)")
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise AirflowFailException(f"input_uri {shown(input_value)} does not fit schema_uri {shown(schema_value)}; "
                                   f"nothing was started:\n{listed}")
    _check_row_count(input_value, heads)


def _check_row_count(input_value: str, heads: dict[str, bytes]) -> None:
    """Refuse an input that holds fewer rows than training needs, when its CSVs are small enough to
    count from the bytes already read (a file beyond 64 KiB holds far more rows than that)."""
    from churn_pipeline.domain.contract_rules import rules

    counts = {name: rules().rows_in_whole_file(head) for name, head in heads.items()}
    if any(count is None for count in counts.values()):
        return
    total, fewest = sum(count or 0 for count in counts.values()), rules().MIN_ROWS
    if total < fewest:
        named = ", ".join(f"{name} ({'a header and no rows' if not count else f'{count} row(s)'})"
                          for name, count in counts.items())
        raise AirflowFailException(f"input_uri {shown(input_value)} holds {total} data row(s), fewer than the {fewest} "
                                   f"training needs; nothing was started: {named}")


def _stage_input(settings: Settings, store: ObjectStore, layout: RunLayout, value: str) -> str:
    """Where the preprocessing job reads the input: an S3 URI as given, a local path staged in the
    run (its tables only: nothing else in a folder is copied)."""
    if is_s3_uri(value):
        return value
    path = _plain_path(settings, value, "input_uri")
    tables = _tables_in(path)
    if not tables:
        raise AirflowFailException(f"input_uri: the folder {shown(path)} holds no .csv or .parquet file")
    for table in tables:
        relative = table.name if table == path else table.relative_to(path).as_posix()
        store.upload_file(table, f"{layout.input_uri}/{relative}")
    log.info("staged the input %s at %s (%d table(s))", shown(path), layout.input_uri, len(tables))
    return layout.input_uri


def input_size(store: ObjectStore, input_uri: str, footers: list[ParquetFooter]) -> InputSize:
    """The staged input's size: its rows from the Parquet footers, or its CSV files' bytes."""
    from churn_pipeline.domain.sizing import InputSize

    if footers:
        return InputSize(rows=sum(footer.rows for footer in footers))
    return InputSize(csv_bytes=sum(size for uri, size in store.sizes(input_uri).items() if _is_csv(uri)))


def asked_engine(settings: Settings, params: dict[str, Any]) -> str:
    """The engine the run asks for: its ``engine`` param, else ``CHURN_ENGINE``; one line otherwise."""
    from churn_pipeline.domain.settings import ENGINE_CHOICES

    asked = params.get("engine") or settings.engine
    if not isinstance(asked, str) or asked.strip().lower() not in ENGINE_CHOICES:
        raise AirflowFailException(f"engine must be one of {', '.join(ENGINE_CHOICES)}, not {shown(repr(asked))}")
    return asked.strip().lower()


def choose_run_engine(settings: Settings, store: ObjectStore, input_uri: str, footers: list[ParquetFooter],
                      asked: str) -> EngineChoice:
    """The run's engine, from the input's size against each scikit-learn step's instance; a run that
    asked for scikit-learn and will not fit is refused before any job, one line per step, naming its
    estimate, the instance's memory, the smallest instance of the family that fits and engine=spark."""
    from churn_pipeline.domain.engine import Engine, EngineRefusal, choose_engine
    from churn_pipeline.domain.sizing import SIZED_STEPS

    size = input_size(store, input_uri, footers)
    types = {step: settings.resources_for(step).instance_type for step in SIZED_STEPS}
    try:
        choice = choose_engine(asked, size, types,
                               {step: f"CHURN_{step.upper()}_INSTANCE_TYPE" for step in SIZED_STEPS})
    except EngineRefusal as refusal:
        raise AirflowFailException(str(refusal)) from None
    if choice.engine is Engine.SPARK:
        clusters = {step: settings.spark_resources_for(step) for step in SIZED_STEPS}
        shown_types = {step: f"{item.instance_count} x {item.instance_type}" for step, item in clusters.items()}
    else:
        shown_types = types
    log.info("engine %s: %s (%s)", choice.engine, choice.reason,
             ", ".join(f"{step}: {kind}" for step, kind in shown_types.items()))
    return choice


def _stage_schema(store: ObjectStore, layout: RunLayout, value: str, raw: bytes) -> str:
    if is_s3_uri(value):
        return value
    store.write_bytes(layout.schema_uri, raw)
    return layout.schema_uri


@says_why_it_failed
def stage_run_inputs(*, extracted: Any = None, params: dict[str, Any], dag_run: Any, **context: Any) -> dict[str, Any]:
    """Fix the run's key, check input and schema, ship the code, stage input and schema, choose the
    engine and resolve its image: all before any paid job starts. ``extracted``: what
    extract_customers wrote (None when it was skipped)."""
    from churn_pipeline.domain.costs import max_run_cost_from_params
    from churn_pipeline.domain.economics import economics_from_params
    from churn_pipeline.domain.engine import Engine, engine_record
    from churn_pipeline.domain.payloads import ExtractedCustomers, StagedInputs
    from churn_pipeline.services import backend
    from churn_pipeline.services.objectstore import ObjectStoreError

    settings = load_settings()
    asked = asked_engine(settings, params)
    try:
        economics_from_params(params)
        max_run_cost_from_params(params)
    except ValueError as error:
        raise AirflowFailException(f"the run's params cannot work: {error}") from None
    if settings.backend == "sagemaker":
        try:
            settings.require_sagemaker_resources()
        except SettingsError as error:
            raise AirflowFailException(str(error)) from None
    if asked == Engine.SPARK:  # known before anything is staged: a region without the image stages nothing
        try:
            settings.spark_image()
        except SettingsError as error:
            raise AirflowFailException(str(error)) from None
    key = run_key(context.get("logical_date"), dag_run.run_after)
    layout = RunLayout(settings.base_uri, key)
    store = backend.object_store(settings)
    input_value, schema_value = str(params["input_uri"]).strip(), str(params["schema_uri"]).strip()
    try:
        raw_schema, schema = _read_schema(settings, store, schema_value)
        from_source = extracted_input(extracted, params, settings, key)
        if from_source is None:  # the run reads input_uri: check it before anything is staged
            _locate_input(settings, store, input_value)
            try:
                heads = _csv_heads(settings, store, input_value)
            except ObjectStoreError as error:
                raise AirflowFailException(f"input_uri: {shown(error)}") from None
            if heads or not _holds_parquet(settings, store, input_value):
                _check_input_against_schema(input_value, schema_value, schema, heads)
                log.info("input_uri %s fits schema_uri %s (%d CSV file(s), headers checked)", shown(input_value),
                         shown(schema_value), len(heads))
        _stage_code(store, layout)
        input_uri = from_source or _stage_input(settings, store, layout, input_value)
        schema_uri = _stage_schema(store, layout, schema_value, raw_schema)
        footers = check_parquet_header(store, input_uri, schema_uri)  # Parquet inputs: the columns of their footers
        choice = choose_run_engine(settings, store, input_uri, footers, asked)
        store.write_bytes(layout.engine_file_uri, json.dumps(engine_record(choice), indent=2).encode("utf-8"))
        _stage_spark_code(settings, store, layout)  # a scikit-learn run's too: a Spark champion scores it
    except OSError as error:
        raise AirflowFailException(f"cannot stage the run's inputs under {settings.base_uri}: "
                                   f"{error.strerror or error} ({error.filename or ''})") from None
    try:
        image_uri = settings.spark_image() if choice.engine is Engine.SPARK else backend.container_image(settings)
    except SettingsError as error:  # the Spark image is not published in the region
        raise AirflowFailException(str(error)) from None
    except ValueError as error:
        raise AirflowFailException(f"cannot resolve the scikit-learn image ({error}); set CHURN_FRAMEWORK_VERSION "
                                   "to a supported version or CHURN_IMAGE_URI") from None
    except ImportError:  # MWAA: its constraints leave no room for sagemaker-core, startup.sh sets the image
        raise AirflowFailException("CHURN_IMAGE_URI is not set and sagemaker-core, which would resolve the "
                                   "scikit-learn image, is not installed; set CHURN_IMAGE_URI (on MWAA, the "
                                   "startup.sh of make mwaa-bundle does)") from None
    staged = StagedInputs(run_key=key, run_uri=layout.run_uri, input_uri=input_uri, schema_uri=schema_uri,
                          code_uri=layout.code_uri, image_uri=image_uri,
                          data_source=described_source(received_optional(ExtractedCustomers, extracted), params),
                          engine=choice.engine.value, engine_reason=choice.reason)
    log.info("run %s stages under %s, on %s (%s)", key, layout.run_uri, choice.engine.described, image_uri)
    return staged.to_xcom()
