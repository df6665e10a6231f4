"""What ``extract_customers`` decides, as plain functions: how a source is read, which query a run
runs, the Redshift UNLOAD statement, and whether a failure may pass on a retry.

    a database connection (postgres, sqlite, mysql, ...)   query: its DB-API hook's result passes through the worker
    a redshift connection                                  unload: UNLOAD, Redshift writes the Parquet to S3 itself
    an http or https connection                            download: the export, streamed to a file, then stored

The connection's type decides, at run time: a connection can change without the DAG being parsed again,
and looking it up at parse time would reach the metadata database or a secrets backend. On the local
backend a Redshift connection is queried like any database, because UNLOAD can only write to S3.
No Airflow import here: the operator (``churn_pipeline.operators.extraction``) and the reads it runs
(``churn_pipeline.operators.transfers``) act on these.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from churn_pipeline.domain.layout import LabelsLayout, RunLayout
from churn_pipeline.domain.s3_uris import parse_s3_uri
from churn_pipeline.domain.settings import Settings

# The extract's objects under the run's input prefix: customers.parquet, or customers_0000_part_00.parquet
# and further parts from a Redshift UNLOAD.
EXTRACT_STEM = "customers"
HTTP_CONN_TYPES = frozenset({"http", "https"})
REDSHIFT_CONN_TYPES = frozenset({"redshift"})
MAX_MESSAGE_CHARS = 600


# The role (or chain of roles) Redshift assumes to write the UNLOAD: it stands quoted in the statement.
_ROLE_ARN = r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=.@/-]+"
ROLE_ARNS = re.compile(f"{_ROLE_ARN}(,{_ROLE_ARN})*")
UNLOAD_OPTIONS = ("FORMAT AS PARQUET",)


class SourceKind(StrEnum):
    """How the customers leave the source (recorded as ``ExtractedCustomers.transfer``)."""

    SQL = "query"
    REDSHIFT = "unload"
    HTTP = "download"


class SourceError(ValueError):
    """A source that cannot work as configured: no retry can fix it."""


@dataclass(frozen=True)
class ExtractPlan:
    """One run's extract: the transfer, what it reads, and the run's own prefix it writes under."""

    kind: SourceKind
    conn_id: str
    conn_type: str
    prefix_uri: str  # s3://<bucket>/<prefix>/runs/<run key>/input: this run's, and only the extract's
    query: str | None = None  # SQL and Redshift
    endpoint: str | None = None  # HTTP
    unload_conn_id: str | None = None  # Redshift: the AWS connection naming the role UNLOAD writes as

    @property
    def source(self) -> str:
        return f"{self.conn_type} connection '{self.conn_id}'"

    @property
    def bucket(self) -> str:
        return parse_s3_uri(self.prefix_uri)[0]

    @property
    def key_stem(self) -> str:
        """The key the parts start with: UNLOAD adds ``_0000_part_00.parquet``, ..."""
        return f"{parse_s3_uri(self.prefix_uri)[1]}/{EXTRACT_STEM}"

    @property
    def object_uri(self) -> str:
        """The one object a query or a download writes."""
        return f"{self.prefix_uri}/{EXTRACT_STEM}.parquet"

    @property
    def empty_result(self) -> str:
        """What an extract without rows fails with."""
        if self.kind is SourceKind.HTTP:
            return f"the export of the {self.source} at '{self.endpoint or '/'}' holds no rows"
        return "the query returned no rows"


def plan_extract(settings: Settings, conn_type: str | None, query_param: str,
                 layout: RunLayout | LabelsLayout) -> ExtractPlan:
    """The run's extract for the source connection of type ``conn_type``, or ``SourceError``.

    ``query_param`` is the run's ``source_query`` param: non-empty, it replaces ``CHURN_SOURCE_QUERY``.
    """
    conn_id = settings.source_conn_id
    if not conn_id:
        raise SourceError("no source is configured (CHURN_SOURCE_CONN_ID)")
    conn_type = (conn_type or "").strip().lower()
    if not conn_type:
        raise SourceError(f"the connection '{conn_id}' has no type; give it one (postgres, sqlite, redshift, "
                          "http, ...)")
    query = query_param.strip() or settings.source_query
    if conn_type in HTTP_CONN_TYPES:
        if query:
            raise SourceError(f"'{conn_id}' is an {conn_type} connection, which serves an export and runs no query: "
                              "leave CHURN_SOURCE_QUERY and the source_query param empty, and name the export "
                              "with CHURN_SOURCE_ENDPOINT")
        return ExtractPlan(SourceKind.HTTP, conn_id, conn_type, layout.input_uri, endpoint=settings.source_endpoint)
    if settings.source_endpoint:
        raise SourceError(f"CHURN_SOURCE_ENDPOINT names an HTTP export, but '{conn_id}' is a {conn_type} connection: "
                          "unset CHURN_SOURCE_ENDPOINT, or point CHURN_SOURCE_CONN_ID at the HTTP connection")
    if not query:
        raise SourceError(f"no query for the {conn_type} connection '{conn_id}': set CHURN_SOURCE_QUERY, or pass the "
                          "source_query param")
    if conn_type in REDSHIFT_CONN_TYPES and settings.backend == "sagemaker":
        if not settings.source_unload_conn_id:
            raise SourceError("a Redshift source is unloaded straight to S3 under an IAM role that Redshift assumes: "
                              "set CHURN_SOURCE_UNLOAD_CONN_ID to an AWS connection whose extra names that role "
                              "(role_arn); see docs/aws.md")
        return ExtractPlan(SourceKind.REDSHIFT, conn_id, conn_type, layout.input_uri, query=query,
                           unload_conn_id=settings.source_unload_conn_id)
    return ExtractPlan(SourceKind.SQL, conn_id, conn_type, layout.input_uri, query=query)


def unload_statement(plan: ExtractPlan, role_arn: str) -> str:
    """Redshift's UNLOAD of the plan's query into the run's prefix as Parquet parts, written as ``role_arn``.

    Built as the amazon provider's ``RedshiftToS3Operator`` builds it (``transfers/redshift_to_s3.py``,
    provider 9.39): the query dollar-quoted, ``TO`` the key stem, ``credentials 'aws_iam_role=...'``,
    the options. Two differences, on purpose: there is no access-key form (the provider falls back to
    the worker's key and secret in the statement, which the SQL hook logs), and no rewriting of
    doubled quotes (the provider turns ``''x''`` into ``'x'``, which breaks ``'it''s' ... 'we''re'``;
    inside ``$$`` a quote needs no escaping at all).
    """
    if plan.kind is not SourceKind.REDSHIFT or not plan.query:
        raise SourceError(f"the {plan.source} is not unloaded by Redshift")
    role_arn = role_arn.strip()
    if not ROLE_ARNS.fullmatch(role_arn):
        raise SourceError(f"the AWS connection '{plan.unload_conn_id}' (CHURN_SOURCE_UNLOAD_CONN_ID) names the "
                          f"role_arn {role_arn!r}, which is not an IAM role ARN (arn:aws:iam::<account>:role/<name>, "
                          "or a comma-separated chain of them)")
    query = plan.query.strip().rstrip(";").rstrip()
    if "$$" in query:
        raise SourceError("the query holds '$$', which would end the dollar quotes UNLOAD wraps it in: write the "
                          "query without it")
    options = "\n".join(UNLOAD_OPTIONS)
    return (f"UNLOAD ($${query}$$)\nTO 's3://{plan.bucket}/{plan.key_stem}_'\ncredentials\n"
            f"'aws_iam_role={role_arn}'\n{options};")


# ---------------------------------------------------------------- faults: retry or not

# SQLSTATE classes that can pass on a retry: connection exception, transaction rollback (deadlock,
# serialization), insufficient resources, operator intervention (shutdown, cancel), system error.
# Every other class (42 syntax error or undefined table, 22 data exception, 28 authorization, ...)
# fails the same way again.
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
TRANSIENT_SQLITE_ERRORS = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_PROTOCOL", "SQLITE_INTERRUPT")
# PEP 249's exception classes where a driver gives no SQLSTATE: a broken query, or a lost connection.
PERMANENT_DBAPI_ERRORS = frozenset({"ProgrammingError", "DataError", "IntegrityError", "NotSupportedError"})
TRANSIENT_DBAPI_ERRORS = frozenset({"OperationalError", "InterfaceError"})
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Diagnosis:
    transient: bool  # a retry may pass (a server down or busy); otherwise the same source fails again
    message: str  # the database's or server's own words


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and what caused it: ``__cause__``, ``__context__`` and SQLAlchemy's ``orig``."""
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]


def _words(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS - 3] + "..."


def _sqlstate(error: BaseException) -> str | None:
    for attribute in ("sqlstate", "pgcode"):  # psycopg 3 and most drivers; psycopg2
        value = getattr(error, attribute, None)
        if isinstance(value, str) and len(value) == 5:
            return value
    return None


def diagnose(error: BaseException) -> Diagnosis:
    """Whether a failed transfer may pass on a retry, in the source's own words.

    The SQLSTATE decides where the driver gives one (PostgreSQL, Redshift, MySQL, ...), SQLite's
    error name where it is SQLite, the HTTP status for an export; otherwise PEP 249's class (a
    ProgrammingError is the query's fault, an OperationalError the connection's). Network errors are
    transient. What none of these recognise is left to Airflow's retries.
    """
    chain = list(_chain(error))
    for cause in chain:
        if isinstance(cause, SourceError):  # the source as configured cannot work, whatever the try
            return Diagnosis(False, _words(cause))
        state = _sqlstate(cause)
        if state:
            return Diagnosis(state[:2] in TRANSIENT_SQLSTATE_CLASSES, _words(cause))
        sqlite_error = getattr(cause, "sqlite_errorname", None)
        if isinstance(sqlite_error, str):
            return Diagnosis(sqlite_error.startswith(TRANSIENT_SQLITE_ERRORS), _words(cause))
        response = getattr(cause, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            transient = status >= 500 or status in TRANSIENT_HTTP_STATUSES
            return Diagnosis(transient, f"the server answered {status} {getattr(response, 'reason', '')} for "
                                        f"{getattr(response, 'url', 'the export')}")
    for cause in reversed(chain):  # the driver's own error lies deepest
        if type(cause).__name__ in PERMANENT_DBAPI_ERRORS:
            return Diagnosis(False, _words(cause))
        if type(cause).__name__ in TRANSIENT_DBAPI_ERRORS:
            return Diagnosis(True, _words(cause))
    for cause in chain:
        if isinstance(cause, OSError):  # refused, reset, timed out; requests' errors are OSErrors too
            return Diagnosis(True, _words(cause))
    return Diagnosis(True, _words(error))
