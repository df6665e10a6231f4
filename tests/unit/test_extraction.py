"""extract_customers: which transfer a source gets, which failures are retried, and what the extract
leaves under the run's own prefix, with the amazon provider's real transfer operators reading a real
SQLite database and a loopback HTTP export (the local backend), and Redshift's UNLOAD statement as the
provider builds it."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from churn_pipeline.domain.extraction import SourceError, SourceKind, diagnose, plan_extract
from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.operators.extraction import ExtractCustomersOperator, SourceUnavailable
from churn_pipeline.services.objectstore import LocalObjectStore
from churn_pipeline.services.parquet_inputs import NotParquetError, missing_columns, read_footer
from churn_pipeline.tooling.sample_data import write_sample
from tests.e2e.moto_server import free_port

KEY = "20261120T000000Z"
LAYOUT = RunLayout("s3://customer-churn-pipeline/churn-pipeline", KEY)
ROLE = "arn:aws:iam::123456789012:role/churn-redshift-unload"


# ---------------------------------------------------------------- which transfer, which query

@pytest.mark.parametrize(("conn_type", "backend", "kind"), [
    ("postgres", "local", SourceKind.SQL), ("sqlite", "sagemaker", SourceKind.SQL),
    ("redshift", "sagemaker", SourceKind.REDSHIFT),
    ("redshift", "local", SourceKind.SQL),  # UNLOAD writes only to S3: locally the result passes through
    ("http", "local", SourceKind.HTTP), ("HTTPS", "sagemaker", SourceKind.HTTP),
])
def test_the_connection_type_picks_the_transfer(conn_type: str, backend: str, kind: SourceKind) -> None:
    settings = load_settings({"CHURN_BACKEND": backend, "CHURN_SOURCE_CONN_ID": "src",
                              "CHURN_SOURCE_UNLOAD_CONN_ID": "unload",
                              **({} if kind is SourceKind.HTTP else {"CHURN_SOURCE_QUERY": "SELECT * FROM c"})})
    plan = plan_extract(settings, conn_type, "", LAYOUT)
    assert plan.kind is kind
    assert plan.prefix_uri == LAYOUT.input_uri and plan.key_stem == f"churn-pipeline/runs/{KEY}/input/customers"


def test_the_source_query_param_replaces_the_setting_for_one_run() -> None:
    settings = load_settings({"CHURN_SOURCE_CONN_ID": "src", "CHURN_SOURCE_QUERY": "SELECT * FROM customers"})
    assert plan_extract(settings, "postgres", "", LAYOUT).query == "SELECT * FROM customers"
    assert plan_extract(settings, "postgres", "  SELECT * FROM eu_customers ", LAYOUT).query == \
        "SELECT * FROM eu_customers"


@pytest.mark.parametrize(("environment", "conn_type", "query_param", "expected"), [
    ({}, "postgres", "", "no query for the postgres connection 'src'"),
    ({"CHURN_SOURCE_ENDPOINT": "/export"}, "postgres", "SELECT 1", "CHURN_SOURCE_ENDPOINT names an HTTP export"),
    ({"CHURN_SOURCE_QUERY": "SELECT 1"}, "http", "", "runs no query"),
    ({}, "http", "SELECT 1", "runs no query"),
    ({"CHURN_BACKEND": "sagemaker", "CHURN_SOURCE_QUERY": "SELECT 1"}, "redshift", "", "CHURN_SOURCE_UNLOAD_CONN_ID"),
    ({"CHURN_SOURCE_QUERY": "SELECT 1"}, None, "", "has no type"),
])
def test_a_source_that_cannot_work_is_named_before_anything_runs(environment: dict, conn_type: str | None,
                                                                 query_param: str, expected: str) -> None:
    settings = load_settings({"CHURN_SOURCE_CONN_ID": "src", **environment})
    with pytest.raises(SourceError, match=expected):
        plan_extract(settings, conn_type, query_param, LAYOUT)


# ---------------------------------------------------------------- retry or not

def _sqlite_error(query: str, database: str = ":memory:") -> BaseException:
    import pandas as pd

    with closing(sqlite3.connect(database, timeout=0)) as connection:
        try:
            pd.read_sql(query, connection)
        except Exception as error:  # pandas wraps the driver's error, as the SQL hook's get_df does
            return error
    raise AssertionError("the query was expected to fail")


@dataclass
class _DriverError(Exception):
    """A PEP 249 error as drivers raise it; the class name carries the PEP 249 category."""

    message: str
    sqlstate: str | None = None

    def __str__(self) -> str:
        return self.message


class ProgrammingError(_DriverError):
    pass


class OperationalError(_DriverError):
    pass


def test_a_missing_table_or_broken_query_is_not_retried_and_quotes_the_database() -> None:
    missing = diagnose(_sqlite_error("SELECT * FROM nowhere"))
    assert (missing.transient, missing.message) == (False, "no such table: nowhere")
    broken = diagnose(_sqlite_error("SELEC 1"))
    assert not broken.transient and "syntax error" in broken.message
    assert diagnose(RuntimeError("something unforeseen")).transient  # unknown: left to Airflow's retries
    wrapped = RuntimeError("Execution failed")
    wrapped.__cause__ = ProgrammingError('relation "customers" does not exist\nLINE 1: SELECT', "42P01")
    assert diagnose(wrapped) == diagnose(wrapped.__cause__)
    assert diagnose(wrapped).message == 'relation "customers" does not exist LINE 1: SELECT'
    assert not diagnose(wrapped).transient


@pytest.mark.parametrize(("error", "transient"), [
    (OperationalError("connection refused"), True),  # no SQLSTATE: PEP 249's class decides
    (ProgrammingError("syntax error"), False),
    (OperationalError("could not serialize access", "40001"), True),
    (OperationalError("the database system is shutting down", "57P03"), True),
    (OperationalError("password authentication failed", "28P01"), False),
    (ConnectionRefusedError(111, "Connection refused"), True),
    (TimeoutError("timed out"), True),
])
def test_connection_trouble_is_retried_and_query_trouble_is_not(error: BaseException, transient: bool) -> None:
    assert diagnose(error).transient is transient


def test_a_locked_sqlite_database_is_retried(tmp_path: Path) -> None:
    database = tmp_path / "busy.sqlite"
    with closing(sqlite3.connect(database)) as holder:
        holder.execute("CREATE TABLE customers (id TEXT)")
        holder.execute("BEGIN EXCLUSIVE")
        diagnosis = diagnose(_sqlite_error("SELECT * FROM customers", str(database)))
    assert diagnosis.transient and "locked" in diagnosis.message


@pytest.mark.parametrize(("status", "transient"), [(404, False), (401, False), (429, True), (503, True)])
def test_http_statuses_decide_for_an_export(status: int, transient: bool) -> None:
    import requests

    response = requests.Response()
    response.status_code, response.reason, response.url = status, "Reason", "http://127.0.0.1/export.parquet"
    try:
        response.raise_for_status()
    except requests.HTTPError as http_error:
        error = http_error
    diagnosis = diagnose(error)
    assert diagnosis.transient is transient and f"{status} Reason" in diagnosis.message


# ---------------------------------------------------------------- footers, never the data

def test_rows_and_columns_come_from_the_footer(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = LocalObjectStore(tmp_path)
    wide = pa.table({f"column_{index:04d}_{'x' * 40}": [index] for index in range(1500)})  # a footer past 64 KB
    for name, table in (("small", pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]})), ("wide", wide)):
        path = store.path_for(f"s3://bucket/p/{name}.parquet")
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
    assert path.stat().st_size > 64 * 1024

    small, large = (read_footer(store, f"s3://bucket/p/{name}.parquet") for name in ("small", "wide"))
    assert (small.rows, small.columns) == (3, ("a", "b"))
    assert (large.rows, len(large.columns)) == (1, 1500)


def test_an_object_that_is_not_parquet_is_named(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    store.write_bytes("s3://bucket/p/customers.parquet", b"CustomerID,Churn\nC1,Yes\n")
    with pytest.raises(NotParquetError, match=r"is not a Parquet file .* it begins 'CustomerID,Churn"):
        read_footer(store, "s3://bucket/p/customers.parquet")


def test_missing_columns_are_listed_per_object() -> None:
    from churn_pipeline.services.parquet_inputs import ParquetFooter

    schema = json.loads(Path("include/config/schema.json").read_text())
    footers = [ParquetFooter("s3://b/k/a.parquet", 5, ("CustomerID", " Churn ", "Age", "MonthlyCharges",
                                                       "TotalCharges", "Tenure", "Gender", "Contract",
                                                       "InternetService", "TechSupport", "StreamingTV",
                                                       "PaymentMethod")),
               ParquetFooter("s3://b/k/b.parquet", 5, ("CustomerID", "Age"))]
    (problem,) = missing_columns(footers, schema)
    assert problem.startswith("s3://b/k/b.parquet lacks the column(s) 'Churn', 'MonthlyCharges'")


# ---------------------------------------------------------------- the operator, in process

@dataclass
class FakeTaskInstance:
    pushed: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@dataclass
class FakeDagRun:
    run_after: datetime


def run_extract(params: dict[str, Any] | None = None, ti: FakeTaskInstance | None = None):
    moment = datetime(2026, 11, 20, tzinfo=UTC)
    context = {"params": {"source_query": "", **(params or {})}, "ti": ti or FakeTaskInstance(),
               "dag_run": FakeDagRun(moment), "logical_date": moment}
    return ExtractCustomersOperator(task_id="extract_customers").execute(context)


@pytest.fixture()
def local_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local backend reading the sample customers from a SQLite file through an Airflow connection."""
    for name in [name for name in os.environ if name.startswith("CHURN_")]:
        monkeypatch.delenv(name)
    database = write_sample(tmp_path / "customers.sqlite", 10_000, 7)
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("CREATE TABLE no_customers AS SELECT * FROM customers WHERE 0")
        connection.commit()
    monkeypatch.setenv("AIRFLOW_CONN_CHURN_SOURCE", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path / "store"))
    monkeypatch.setenv("CHURN_SOURCE_CONN_ID", "churn_source")
    monkeypatch.setenv("CHURN_SOURCE_QUERY", "SELECT * FROM customers")
    return tmp_path / "store"


def test_the_sample_database_lands_as_parquet_under_the_runs_own_prefix(local_source: Path) -> None:
    import pyarrow.parquet as pq

    store = LocalObjectStore(local_source)
    other_run = RunLayout(LAYOUT.base_uri, "20261119T000000Z")
    store.write_bytes(f"{other_run.input_uri}/customers.parquet", b"another run's")
    store.write_bytes(f"{LAYOUT.input_uri}/customers_0001.parquet", b"a stale part of an earlier try")

    result = run_extract()

    assert result == {"run_key": KEY, "input_uri": LAYOUT.input_uri, "rows": 10_100,
                      "objects": (f"{LAYOUT.input_uri}/customers.parquet",),
                      "source": "sqlite connection 'churn_source'", "transfer": "SqlToS3Operator"}
    table = pq.read_table(store.path_for(f"{LAYOUT.input_uri}/customers.parquet"))
    assert table.num_rows == 10_100 and "__index_level_0__" not in table.column_names
    assert str(table.schema.field("MonthlyCharges").type) == "double"
    assert store.read_bytes(f"{other_run.input_uri}/customers.parquet") == b"another run's"
    again = run_extract()  # a retry or a rerun of the run: its own objects, replaced
    assert again == result


def test_the_query_param_picks_other_rows_for_one_run(local_source: Path) -> None:
    result = run_extract({"source_query": "SELECT * FROM customers WHERE Contract = 'Two year'"})
    assert 1_000 < result["rows"] < 4_000


def test_a_missing_table_fails_at_once_in_the_databases_words(local_source: Path) -> None:
    with pytest.raises(AirflowFailException, match=r"no such table: nowhere .*not retried") as raised:
        run_extract({"source_query": "SELECT * FROM nowhere"})
    assert "sqlite connection 'churn_source'" in str(raised.value)


def test_an_empty_result_fails_with_no_rows_and_leaves_nothing(local_source: Path) -> None:
    with pytest.raises(AirflowFailException, match="the query returned no rows"):
        run_extract({"source_query": "SELECT * FROM no_customers"})
    assert LocalObjectStore(local_source).list_uris(LAYOUT.input_uri) == []


def test_an_unreachable_source_may_pass_on_a_retry(local_source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_CHURN_SOURCE", f"postgresql://churn:secret-pw@127.0.0.1:{port}/customers")
    with pytest.raises(SourceUnavailable, match="Connection refused") as raised:
        run_extract()
    assert not isinstance(raised.value, AirflowFailException)
    assert "secret-pw" not in str(raised.value)


def test_the_failure_reason_is_left_for_the_notification(local_source: Path) -> None:
    ti = FakeTaskInstance()
    with pytest.raises(AirflowFailException):
        run_extract({"source_query": "SELECT * FROM nowhere"}, ti)
    assert ti.pushed["failure"]["job_name"] == "sqlite connection 'churn_source'"
    assert "no such table: nowhere" in ti.pushed["failure"]["reason"]


def test_without_a_source_the_extract_is_skipped(local_source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHURN_SOURCE_CONN_ID")
    monkeypatch.delenv("CHURN_SOURCE_QUERY")
    with pytest.raises(AirflowSkipException, match="reads input_uri"):
        run_extract()
    with pytest.raises(AirflowFailException, match="no source is configured"):
        run_extract({"source_query": "SELECT 1"})


def test_an_unknown_connection_is_named(local_source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_SOURCE_CONN_ID", "nobody_made_this")
    with pytest.raises(AirflowFailException, match="connection 'nobody_made_this', which Airflow does not have"):
        run_extract()


# ---------------------------------------------------------------- an HTTP export

@pytest.fixture()
def export_server(tmp_path: Path):
    folder = tmp_path / "exports"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_http_export_is_fetched_into_the_runs_prefix(local_source: Path, export_server,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    folder, url = export_server
    write_sample(folder / "customers.parquet", 2_000, 5)
    (folder / "customers.csv").write_text("CustomerID,Churn\nC1,Yes\n")
    monkeypatch.setenv("AIRFLOW_CONN_CHURN_SOURCE", json.dumps({"conn_type": "http", "host": url}))
    monkeypatch.delenv("CHURN_SOURCE_QUERY")
    monkeypatch.setenv("CHURN_SOURCE_ENDPOINT", "customers.parquet")

    result = run_extract()
    assert (result["rows"], result["transfer"]) == (2_020, "HttpToS3Operator")

    monkeypatch.setenv("CHURN_SOURCE_ENDPOINT", "missing.parquet")
    with pytest.raises(AirflowFailException, match="404"):
        run_extract()
    monkeypatch.setenv("CHURN_SOURCE_ENDPOINT", "customers.csv")
    with pytest.raises(AirflowFailException, match=r"did not give Parquet.*begins 'CustomerID,Churn"):
        run_extract()
    assert LocalObjectStore(local_source).list_uris(LAYOUT.input_uri) == []


# ---------------------------------------------------------------- Redshift: UNLOAD as a role

def test_redshift_unloads_parquet_as_the_role_and_never_with_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
    from airflow.providers.amazon.aws.transfers.redshift_to_s3 import RedshiftToS3Operator

    from churn_pipeline.operators.transfers import build_transfer, run_transfer

    monkeypatch.setenv("AIRFLOW_CONN_CHURN_UNLOAD", json.dumps({"conn_type": "aws", "extra": {"role_arn": ROLE}}))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAKEYTHATMUSTNOTSHOW")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-that-must-not-show")
    statements: list[str] = []
    monkeypatch.setattr(RedshiftSQLHook, "run", lambda self, sql, *args, **kwargs: statements.append(sql))
    settings = load_settings({"CHURN_BACKEND": "sagemaker", "CHURN_SOURCE_CONN_ID": "warehouse",
                              "CHURN_SOURCE_QUERY": "SELECT * FROM crm.customers WHERE region = 'EU'",
                              "CHURN_SOURCE_UNLOAD_CONN_ID": "churn_unload"})
    plan = plan_extract(settings, "redshift", "", LAYOUT)

    transfer = build_transfer(plan, settings, LocalObjectStore(Path("/nonexistent")), task_id="extract_customers")
    run_transfer(transfer, {})

    assert isinstance(transfer, RedshiftToS3Operator)
    (statement,) = statements
    unload = " ".join(statement.split())
    assert "UNLOAD ($$SELECT * FROM crm.customers WHERE region = 'EU'$$)" in unload
    assert f"TO 's3://customer-churn-pipeline/churn-pipeline/runs/{KEY}/input/customers_'" in unload
    assert f"'aws_iam_role={ROLE}'" in unload and "FORMAT AS PARQUET" in unload
    assert "AKIA" not in unload and "secret-that-must-not-show" not in unload


def test_an_unload_connection_without_a_role_is_refused(local_source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_BACKEND", "sagemaker")
    monkeypatch.setenv("CHURN_ROLE_ARN", "arn:aws:iam::123456789012:role/churn")
    monkeypatch.setenv("CHURN_SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:churn")
    monkeypatch.setenv("AIRFLOW_CONN_CHURN_SOURCE", json.dumps({"conn_type": "redshift", "host": "example"}))
    monkeypatch.setenv("CHURN_SOURCE_UNLOAD_CONN_ID", "churn_unload")
    monkeypatch.setenv("AIRFLOW_CONN_CHURN_UNLOAD", json.dumps({"conn_type": "aws"}))
    with pytest.raises(AirflowFailException, match="names no role_arn"):
        run_extract()


# ---------------------------------------------------------------- stage_inputs' header check

def test_staging_refuses_parquet_without_the_schemas_columns_from_the_footer_alone(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from churn_pipeline.tasks.extracted_input import check_parquet_header

    store = LocalObjectStore(tmp_path)
    schema_uri = "s3://bucket/run/schema/schema.json"
    store.write_bytes(schema_uri, Path("include/config/schema.json").read_bytes())
    good = write_sample(tmp_path / "good.parquet", 100, 1)
    store.upload_file(good, "s3://bucket/run/input/customers.parquet")
    check_parquet_header(store, "s3://bucket/run/input", schema_uri)  # the sample carries every column

    path = store.path_for("s3://bucket/run/input/customers_0001_part_00.parquet")
    pq.write_table(pa.table({"CustomerID": ["C1"], "churned": ["Yes"]}), path)
    with pytest.raises(AirflowFailException, match="breaks the data contract") as raised:
        check_parquet_header(store, "s3://bucket/run/input", schema_uri)
    assert "customers_0001_part_00.parquet lacks the column(s) 'Churn', 'Age'" in str(raised.value)
    assert "customers.parquet lacks" not in str(raised.value)
