"""The amazon provider's transfer operators, configured from an ``ExtractPlan`` to write the run's
Parquet, and, on the local backend, the same operators writing into the local store instead of S3.

Imported by ``extract_customers`` when it runs, never at DAG parse time (the transfers pull in boto3,
requests and, for SQL, pandas). Every transfer writes with ``replace=True`` under the run's own input
prefix: a retry or a rerun of the run overwrites its own objects, and no other run's.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import IO, Any

from airflow.providers.amazon.aws.transfers import sql_to_s3
from airflow.providers.amazon.aws.transfers.http_to_s3 import HttpToS3Operator
from airflow.providers.amazon.aws.transfers.redshift_to_s3 import RedshiftToS3Operator
from airflow.providers.amazon.aws.transfers.sql_to_s3 import SqlToS3Operator
from airflow.sdk import BaseOperator

from churn_pipeline.domain.extraction import ExtractPlan, SourceKind
from churn_pipeline.domain.settings import Settings
from churn_pipeline.services.objectstore import ObjectStore

# An HTTP export may take long to produce but must not hang: seconds to connect, and to wait for
# each chunk of the answer.
HTTP_TIMEOUT_SECONDS = (30, 600)
PARQUET_OPTIONS = {"index": False}  # the frame's row numbers are not customer data


class LocalStoreS3Hook:
    """The two ``S3Hook`` methods the transfers upload with, writing into the local store with the
    same ``replace`` rule (an existing key is an error unless ``replace``)."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def _write(self, data: bytes, key: str, bucket_name: str | None, replace: bool) -> None:
        uri = f"s3://{bucket_name}/{key}"
        if not replace and self.store.exists(uri):
            raise ValueError(f"The key {key} already exists.")
        self.store.write_bytes(uri, data)

    def load_file_obj(self, file_obj: IO[bytes], key: str, bucket_name: str | None = None, replace: bool = False,
                      encrypt: bool = False, acl_policy: str | None = None) -> None:
        self._write(file_obj.read(), key, bucket_name, replace)

    def load_bytes(self, bytes_data: bytes, key: str, bucket_name: str | None = None, replace: bool = False,
                   encrypt: bool = False, acl_policy: str | None = None) -> None:
        self._write(bytes_data, key, bucket_name, replace)


class LocalStoreHttpToS3Operator(HttpToS3Operator):
    """``HttpToS3Operator`` whose upload goes to the local store (its ``s3_hook`` is the seam)."""

    def __init__(self, *, store: ObjectStore, **kwargs: Any):
        super().__init__(**kwargs)
        self._store = store

    @cached_property
    def s3_hook(self) -> LocalStoreS3Hook:  # type: ignore[override]  # duck-typed: the methods execute calls
        return LocalStoreS3Hook(self._store)


@contextmanager
def _sql_to_s3_uploads_into(store: ObjectStore) -> Iterator[None]:
    """``SqlToS3Operator.execute`` builds its ``S3Hook`` inline from its module's global, so for the
    length of one call that name yields the local store's hook. Everything else (the query through
    the connection's hook, the provider's dtype fixes, the Parquet writing and the key) stays the
    provider's own code."""
    original = sql_to_s3.S3Hook
    sql_to_s3.S3Hook = lambda **_: LocalStoreS3Hook(store)  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        sql_to_s3.S3Hook = original  # type: ignore[misc]


class LocalStoreSqlToS3Operator(SqlToS3Operator):
    """``SqlToS3Operator`` whose upload goes to the local store."""

    def __init__(self, *, store: ObjectStore, **kwargs: Any):
        super().__init__(**kwargs)
        self._store = store

    def execute(self, context: Any) -> None:
        with _sql_to_s3_uploads_into(self._store):
            super().execute(context)


def build_transfer(plan: ExtractPlan, settings: Settings, store: ObjectStore, task_id: str) -> BaseOperator:
    """The provider operator that carries out ``plan``; on the local backend, its local-store twin."""
    local = settings.backend == "local"
    if plan.kind is SourceKind.HTTP:
        http: dict[str, Any] = {
            "task_id": task_id, "http_conn_id": plan.conn_id, "endpoint": plan.endpoint, "method": "GET",
            "s3_bucket": plan.bucket, "s3_key": f"{plan.key_stem}.parquet", "replace": True,
            "aws_conn_id": settings.aws_conn_id, "extra_options": {"timeout": HTTP_TIMEOUT_SECONDS}}
        return LocalStoreHttpToS3Operator(store=store, **http) if local else HttpToS3Operator(**http)
    if plan.kind is SourceKind.REDSHIFT:
        # UNLOAD writes the parts itself, as the role of the unload connection (never access keys,
        # which would stand in the statement the SQL hook logs): customers_0000_part_00.parquet, ...
        return RedshiftToS3Operator(
            task_id=task_id, redshift_conn_id=plan.conn_id, select_query=plan.query, s3_bucket=plan.bucket,
            s3_key=f"{plan.key_stem}_", aws_conn_id=plan.unload_conn_id, unload_options=["FORMAT AS PARQUET"],
            table_as_file_name=False)
    sql: dict[str, Any] = {
        "task_id": task_id, "sql_conn_id": plan.conn_id, "query": plan.query, "s3_bucket": plan.bucket,
        "s3_key": f"{plan.key_stem}.parquet", "replace": True, "file_format": "parquet",
        "df_kwargs": dict(PARQUET_OPTIONS), "aws_conn_id": settings.aws_conn_id}
    return LocalStoreSqlToS3Operator(store=store, **sql) if local else SqlToS3Operator(**sql)


def run_transfer(transfer: BaseOperator, context: Any) -> Any:
    """Run the transfer's ``execute`` as this task's body, the way the task runner runs a task's own
    (Airflow's ExecutorSafeguard would otherwise warn that it ran outside the task runner)."""
    scope = contextvars.copy_context()
    try:
        from airflow.sdk.bases.operator import ExecutorSafeguard
    except ImportError:  # an Airflow without the safeguard has nothing to warn about
        pass
    else:
        scope.run(ExecutorSafeguard.tracker.set, transfer)
    return scope.run(transfer.execute, context)
