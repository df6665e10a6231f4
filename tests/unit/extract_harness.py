"""Running ``extract_customers``' operator in this process, as the task runner would call it: a
context with params, a task instance that records its XCom pushes, and the run's date. Shared by
the unit tests (SQLite, S3 in moto's in-process mock) and the e2e tests that need a server."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.operators.extraction import ExtractCustomersOperator
from churn_pipeline.tooling.sample_data import write_sample

KEY = "20261120T000000Z"
LAYOUT = RunLayout("s3://customer-churn-pipeline/churn-pipeline", KEY)


@dataclass
class FakeTaskInstance:
    pushed: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@dataclass
class FakeDagRun:
    run_after: datetime


def run_extract(params: dict[str, Any] | None = None, ti: FakeTaskInstance | None = None) -> dict[str, Any]:
    moment = datetime(2026, 11, 20, tzinfo=UTC)
    context = {"params": {"source_query": "", **(params or {})}, "ti": ti or FakeTaskInstance(),
               "dag_run": FakeDagRun(moment), "logical_date": moment}
    return ExtractCustomersOperator(task_id="extract_customers").execute(context)


@pytest.fixture()
def local_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local backend reading the sample customers from a SQLite file through an Airflow connection;
    returns the local store's root. The file also holds an empty table of the same shape."""
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
