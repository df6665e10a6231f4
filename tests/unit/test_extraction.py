"""extract_customers' decisions, as plain functions: how a source is read, which query a run runs, the
Redshift UNLOAD statement, and which failures are retried (``churn_pipeline.domain.extraction``).
The operator running them is tested in test_extract_operator.py, the footers in test_parquet_footers.py."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from churn_pipeline.domain.extraction import SourceError, SourceKind, diagnose, plan_extract, unload_statement
from churn_pipeline.domain.settings import load_settings
from tests.unit.extract_harness import KEY, LAYOUT

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


def test_a_source_that_cannot_work_as_configured_is_never_retried() -> None:
    wrapped = RuntimeError("reading failed")
    wrapped.__cause__ = SourceError("the aws connection 'src' is not a database Airflow can query")
    assert diagnose(wrapped) == diagnose(wrapped.__cause__)
    assert not diagnose(wrapped).transient and "not a database" in diagnose(wrapped).message


# ---------------------------------------------------------------- Redshift: UNLOAD as a role, never keys

def redshift_plan(query: str):
    settings = load_settings({"CHURN_BACKEND": "sagemaker", "CHURN_SOURCE_CONN_ID": "warehouse",
                              "CHURN_SOURCE_QUERY": query, "CHURN_SOURCE_UNLOAD_CONN_ID": "churn_unload"})
    return plan_extract(settings, "redshift", "", LAYOUT)


def test_the_unload_writes_parquet_parts_under_the_runs_prefix_as_the_role() -> None:
    statement = unload_statement(redshift_plan("SELECT * FROM crm.customers WHERE region = 'EU';\n"), ROLE)

    unload = " ".join(statement.split())
    assert unload == ("UNLOAD ($$SELECT * FROM crm.customers WHERE region = 'EU'$$) "
                      f"TO 's3://customer-churn-pipeline/churn-pipeline/runs/{KEY}/input/customers_' "
                      f"credentials 'aws_iam_role={ROLE}' FORMAT AS PARQUET;")


def test_the_query_reaches_redshift_as_written_inside_the_dollar_quotes() -> None:
    query = "SELECT * FROM crm.customers WHERE note IN ('it''s', 'we''re')"  # the provider would rewrite this
    assert f"($${query}$$)" in unload_statement(redshift_plan(query), ROLE)


@pytest.mark.parametrize(("query", "role", "expected"), [
    ("SELECT $$x$$ AS note", ROLE, "holds '\\$\\$'"),
    ("SELECT 1", "AKIAKEYTHATMUSTNOTSHOW", "not an IAM role ARN"),
    ("SELECT 1", f"{ROLE}' ACCESS_KEY_ID 'AKIA", "not an IAM role ARN"),  # nothing breaks out of the quotes
])
def test_an_unload_that_cannot_be_written_safely_is_refused(query: str, role: str, expected: str) -> None:
    with pytest.raises(SourceError, match=expected):
        unload_statement(redshift_plan(query), role)


def test_a_chain_of_roles_is_accepted() -> None:
    chain = f"{ROLE},arn:aws:iam::210987654321:role/warehouse-writer"
    assert f"'aws_iam_role={chain}'" in unload_statement(redshift_plan("SELECT 1"), chain)
