"""The three ways the customers leave their source, each through a provider's public hook, into the
run's input prefix through this project's object store (S3, or the local store on the local backend):

    query      the connection's own DB-API hook (``Connection.get_hook()``), its ``get_df``, one Parquet object
    unload     ``RedshiftSQLHook.run`` of an UNLOAD statement: Redshift writes the Parquet parts itself
    download   ``HttpHook.run``, the body streamed to a temporary file, then stored as it came

No operator runs inside the task, no provider module is patched and no private attribute is touched,
so a provider upgrade changes only what its public hooks document. Imported by ``extract_customers``
when it runs, never at DAG parse time: pandas, requests and the database drivers come with it. Each
hook is imported where it is used, so a PostgreSQL read does not load the Redshift driver.

Every object replaces what stands under its key (the extract clears its prefix first anyway), so a
retry or a rerun of the run overwrites its own objects, and no other run's.
"""

from __future__ import annotations

import tempfile
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churn_pipeline.domain.extraction import EXTRACT_STEM, ExtractPlan, SourceError, SourceKind

if TYPE_CHECKING:
    from churn_pipeline.services.objectstore import ObjectStore

# An HTTP export may take long to produce but must not hang: seconds to connect, and to wait for
# each chunk of the answer.
HTTP_TIMEOUT_SECONDS = (30, 600)
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
# Floats hold every integer exactly up to 2**53; past that a "whole" float is not a trustworthy integer.
EXACT_FLOAT_INTEGERS = 2**53


def extract(plan: ExtractPlan, store: ObjectStore, unload: str | None = None) -> None:
    """Carry out ``plan``; ``unload`` is the UNLOAD statement of a Redshift plan (``unload_statement``)."""
    if plan.kind is SourceKind.REDSHIFT:
        if unload is None:
            raise SourceError(f"the {plan.source} is unloaded by Redshift, but no UNLOAD statement was given")
        run_unload(plan, unload)
    elif plan.kind is SourceKind.HTTP:
        download_export(plan, store)
    else:
        read_query(plan, store)


def read_query(plan: ExtractPlan, store: ObjectStore) -> None:
    """The query's result through the connection's DB-API hook, stored as ``customers.parquet``.

    The whole result is held in the worker's memory, as ``SqlToS3Operator`` holds it; the Parquet is
    written to a temporary file rather than a second in-memory copy, and uploaded from there (in
    parts, when S3 is the store and the file is large).
    """
    assert plan.query is not None  # plan_extract gives every SQL plan a query
    frame = parquet_ready(database_hook(plan).get_df(plan.query, df_type="pandas"))
    with tempfile.TemporaryDirectory(prefix="churn-extract-") as folder:
        path = Path(folder) / f"{EXTRACT_STEM}.parquet"
        frame.to_parquet(path, index=False)  # the frame's row numbers are not customer data
        del frame
        store.upload_file(path, plan.object_uri)


def database_hook(plan: ExtractPlan) -> Any:
    """The connection's own hook, as ``SqlToS3Operator`` finds it: any hook with ``get_df`` will do."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowException

    try:
        hook = BaseHook.get_connection(plan.conn_id).get_hook()
    except (AirflowException, ImportError) as error:  # no provider installed for the type, or it fails to load
        raise SourceError(f"Airflow has no usable hook for the {plan.source} ({error}): install the provider of "
                          f"'{plan.conn_type}' connections, or use a connection of another type") from None
    if not callable(getattr(hook, "get_df", None)):
        raise SourceError(f"the {plan.source} is not a database Airflow can query: its hook, {type(hook).__name__}, "
                          "has no get_df")
    return hook


def parquet_ready(frame: Any) -> Any:
    """The query's frame with the column types ``SqlToS3Operator`` gives it before writing Parquet
    (its ``_fix_dtypes``, amazon provider 9.39, ``transfers/sql_to_s3.py``), kept here because the
    extract no longer runs that operator:

    - an integer column with NULLs, which the driver hands pandas as float64 with NaN, is stored as a
      nullable integer, so that ids and counts stay whole (``17``, not ``17.0``);
    - a column of Python objects that pandas could not type (PostgreSQL's numerics as ``Decimal``,
      booleans with NULLs, SQLite's mixed values) is stored as text, which preprocessing parses as it
      parses a CSV cell.

    A NULL stays missing in both: the provider's ``astype(str)`` writes the word ``None`` under pandas 2.
    Column names must be distinct: Parquet cannot hold two columns of one name.
    """
    import numpy as np

    repeated = sorted({str(name) for name in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise SourceError(f"the query returns the column(s) {', '.join(repeated)} more than once: give each column "
                          "a name of its own (... AS name)")
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object:
            frame[name] = column.astype("string")
        elif column.dtype.kind == "f" and column.hasnans:
            present = column.dropna().to_numpy()
            whole = np.isfinite(present).all() and (np.abs(present) < EXACT_FLOAT_INTEGERS).all() and \
                np.equal(present, np.round(present)).all()
            if whole:
                frame[name] = column.astype("Int64")
    return frame


def run_unload(plan: ExtractPlan, statement: str) -> None:
    """Redshift runs the UNLOAD and writes the parts to S3 itself; nothing passes through the worker.
    Not autocommitted, as the provider's operator runs it: the hook commits when the statement ends."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    RedshiftSQLHook(redshift_conn_id=plan.conn_id).run(statement, autocommit=False)


def download_export(plan: ExtractPlan, store: ObjectStore) -> None:
    """The export at the plan's endpoint, stored as ``customers.parquet`` byte for byte.

    The body is streamed to a temporary file (``HttpToS3Operator`` holds it whole in memory), so its
    size is bounded by the worker's disk; an answer outside 2xx/3xx raises the hook's error, whose
    cause carries the status for ``diagnose``.
    """
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="GET", http_conn_id=plan.conn_id)
    response = hook.run(plan.endpoint, extra_options={"timeout": HTTP_TIMEOUT_SECONDS, "stream": True})
    with closing(response), tempfile.TemporaryDirectory(prefix="churn-extract-") as folder:
        path = Path(folder) / f"{EXTRACT_STEM}.parquet"
        with path.open("wb") as file:
            for chunk in response.iter_content(DOWNLOAD_CHUNK_BYTES):
                file.write(chunk)
        store.upload_file(path, plan.object_uri)
