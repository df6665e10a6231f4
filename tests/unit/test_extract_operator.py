"""extract_customers' operator in this process, through the providers' real hooks: a real SQLite
database through its Airflow connection into the local store, the same into S3 (moto's in-process
mock) on the sagemaker backend, and Redshift's UNLOAD as it reaches the Redshift hook. What the
extract leaves under the run's own prefix, what it refuses, and what it tells the notification.
(The HTTP export and an unreachable PostgreSQL need a socket: tests/e2e/test_sources.py.)"""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.services.objectstore import LocalObjectStore
from tests.unit.extract_harness import KEY, LAYOUT, FakeTaskInstance, local_source, run_extract

__all__ = ["local_source"]  # the fixture, imported for the tests below

ROLE = "arn:aws:iam::123456789012:role/churn-redshift-unload"


# ---------------------------------------------------------------- the local backend, SQLite

def test_the_sample_database_lands_as_parquet_under_the_runs_own_prefix(local_source: Path) -> None:
    import pyarrow.parquet as pq

    store = LocalObjectStore(local_source)
    other_run = RunLayout(LAYOUT.base_uri, "20261119T000000Z")
    store.write_bytes(f"{other_run.input_uri}/customers.parquet", b"another run's")
    store.write_bytes(f"{LAYOUT.input_uri}/customers_0001.parquet", b"a stale part of an earlier try")

    result = run_extract()

    assert result == {"run_key": KEY, "input_uri": LAYOUT.input_uri, "rows": 10_100,
                      "objects": (f"{LAYOUT.input_uri}/customers.parquet",),
                      "source": "sqlite connection 'churn_source'", "transfer": "query"}
    table = pq.read_table(store.path_for(f"{LAYOUT.input_uri}/customers.parquet"))
    assert table.num_rows == 10_100 and "__index_level_0__" not in table.column_names
    assert str(table.schema.field("MonthlyCharges").type) == "double"
    assert store.read_bytes(f"{other_run.input_uri}/customers.parquet") == b"another run's"
    again = run_extract()  # a retry or a rerun of the run: its own objects, replaced
    assert again == result


def test_integers_with_nulls_stay_integers_and_nulls_stay_missing(local_source: Path) -> None:
    import pyarrow.parquet as pq

    run_extract()

    table = pq.read_table(LocalObjectStore(local_source).path_for(f"{LAYOUT.input_uri}/customers.parquet"))
    age, gender = table.column("Age"), table.column("Gender")  # the sample leaves some of both blank
    assert str(age.type) == "int64" and age.null_count > 0
    assert gender.null_count > 0 and "None" not in gender.to_pylist()


def test_the_providers_dtype_fixes_are_kept_without_writing_none() -> None:
    import pandas as pd

    from churn_pipeline.operators.transfers import parquet_ready

    frame = parquet_ready(pd.DataFrame({
        "charges": pd.Series([Decimal("19.90"), None, Decimal("5.00")], dtype=object),  # PostgreSQL's numeric
        "mixed": pd.Series([1, "two", None], dtype=object),  # SQLite's dynamic types
        "tenure": [3.0, None, 12.0], "ratio": [0.5, None, 2.0], "huge": [1e20, None, 2e20]}))

    assert frame["charges"].tolist()[::2] == ["19.90", "5.00"] and frame["charges"].isna().tolist()[1]
    assert frame["mixed"].tolist()[:2] == ["1", "two"] and frame["mixed"].isna().tolist()[2]
    assert str(frame["tenure"].dtype) == "Int64" and frame["tenure"].tolist()[::2] == [3, 12]
    assert str(frame["ratio"].dtype) == str(frame["huge"].dtype) == "float64"


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


def test_the_failure_reason_is_left_for_the_notification(local_source: Path) -> None:
    ti = FakeTaskInstance()
    with pytest.raises(AirflowFailException):
        run_extract({"source_query": "SELECT * FROM nowhere"}, ti)
    assert ti.pushed["failure"]["job_name"] == "sqlite connection 'churn_source'"
    assert "no such table: nowhere" in ti.pushed["failure"]["reason"]


def test_a_result_parquet_cannot_hold_fails_at_once(local_source: Path) -> None:
    ti = FakeTaskInstance()
    with pytest.raises(AirflowFailException, match=r"column\(s\) CustomerID more than once.*not retried"):
        run_extract({"source_query": 'SELECT "CustomerID", "CustomerID" FROM customers'}, ti)
    assert "more than once" in ti.pushed["failure"]["reason"]


def test_a_connection_that_is_no_database_fails_at_once(local_source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CHURN_SOURCE", json.dumps({"conn_type": "aws"}))
    ti = FakeTaskInstance()
    with pytest.raises(AirflowFailException, match=r"not a database Airflow can query.*AwsGenericHook"):
        run_extract(ti=ti)
    assert "not a database" in ti.pushed["failure"]["reason"]


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


# ---------------------------------------------------------------- the sagemaker backend: S3

@pytest.fixture()
def s3(local_source: Path, monkeypatch: pytest.MonkeyPatch):
    """The sagemaker backend's S3 (moto, in this process), holding a stale part of an earlier try; the
    worker's AWS keys are set, so that a statement holding them would show."""
    import boto3
    from moto import mock_aws

    for name, value in {"CHURN_BACKEND": "sagemaker", "CHURN_ROLE_ARN": "arn:aws:iam::123456789012:role/churn",
                        "CHURN_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:churn",
                        "CHURN_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ACCESS_KEY_ID": "AKIAKEYTHATMUSTNOTSHOW",
                        "AWS_SECRET_ACCESS_KEY": "secret-that-must-not-show"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="customer-churn-pipeline")
        stale = f"churn-pipeline/runs/{KEY}/input/customers_0003_part_00.parquet"
        client.put_object(Bucket="customer-churn-pipeline", Key=stale, Body=b"a stale part of an earlier try")
        yield client


def input_keys(client: Any) -> list[str]:
    listed = client.list_objects_v2(Bucket="customer-churn-pipeline", Prefix=f"churn-pipeline/runs/{KEY}/input/")
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_database_lands_in_s3_under_the_runs_own_prefix(s3: Any) -> None:
    import pyarrow.parquet as pq

    result = run_extract()

    assert (result["rows"], result["objects"]) == (10_100, (f"{LAYOUT.input_uri}/customers.parquet",))
    assert input_keys(s3) == [f"churn-pipeline/runs/{KEY}/input/customers.parquet"]
    body = s3.get_object(Bucket="customer-churn-pipeline", Key=input_keys(s3)[0])["Body"].read()
    assert pq.read_table(io.BytesIO(body)).num_rows == 10_100


def test_redshift_unloads_parquet_as_the_role_and_never_with_keys(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "redshift", "host": "example"}))
    monkeypatch.setenv("AIRFLOW_CONN_CHURN_UNLOAD", json.dumps({"conn_type": "aws", "extra": {"role_arn": ROLE}}))
    monkeypatch.setenv("CHURN_SOURCE_CONN_ID", "warehouse")
    monkeypatch.setenv("CHURN_SOURCE_UNLOAD_CONN_ID", "churn_unload")
    monkeypatch.setenv("CHURN_SOURCE_QUERY", "SELECT * FROM crm.customers WHERE region = 'EU'")
    statements: list[tuple[str, bool]] = []

    def redshift_runs(hook: RedshiftSQLHook, sql: str, autocommit: bool = False, **_: Any) -> None:
        """What Redshift does with the statement: it writes the parts to S3 itself."""
        statements.append((sql, autocommit))
        part = io.BytesIO()
        pq.write_table(pa.table({"CustomerID": ["C1", "C2"], "Churn": ["Yes", "No"]}), part)
        s3.put_object(Bucket="customer-churn-pipeline", Key=f"churn-pipeline/runs/{KEY}/input/customers_0000_part_00"
                      ".parquet", Body=part.getvalue())

    monkeypatch.setattr(RedshiftSQLHook, "run", redshift_runs)

    result = run_extract()

    ((statement, autocommit),) = statements
    unload = " ".join(statement.split())
    assert "UNLOAD ($$SELECT * FROM crm.customers WHERE region = 'EU'$$)" in unload and not autocommit
    assert f"TO 's3://customer-churn-pipeline/churn-pipeline/runs/{KEY}/input/customers_'" in unload
    assert f"'aws_iam_role={ROLE}'" in unload and "FORMAT AS PARQUET" in unload
    assert "AKIA" not in unload and "secret-that-must-not-show" not in unload
    assert (result["rows"], result["transfer"]) == (2, "unload")
    assert input_keys(s3) == [f"churn-pipeline/runs/{KEY}/input/customers_0000_part_00.parquet"]  # stale one gone


def test_an_unload_connection_without_a_role_is_refused(local_source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_BACKEND", "sagemaker")
    monkeypatch.setenv("CHURN_ROLE_ARN", "arn:aws:iam::123456789012:role/churn")
    monkeypatch.setenv("CHURN_SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:churn")
    monkeypatch.setenv("AIRFLOW_CONN_CHURN_SOURCE", json.dumps({"conn_type": "redshift", "host": "example"}))
    monkeypatch.setenv("CHURN_SOURCE_UNLOAD_CONN_ID", "churn_unload")
    monkeypatch.setenv("AIRFLOW_CONN_CHURN_UNLOAD", json.dumps({"conn_type": "aws"}))
    with pytest.raises(AirflowFailException, match="names no role_arn"):
        run_extract()
