"""Parquet inputs judged from their footers alone, before any job: rows and columns of what the extract
wrote (``services/parquet_inputs.py``), and stage_inputs refusing Parquet that lacks the schema's
columns (``tasks/extracted_input.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from churn_pipeline.services.objectstore import LocalObjectStore
from churn_pipeline.services.parquet_inputs import NotParquetError, missing_columns, read_footer
from churn_pipeline.tooling.sample_data import write_sample


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


def test_an_object_that_is_not_parquet_is_named_and_none_of_its_bytes_are_quoted(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    store.write_bytes("s3://bucket/p/customers.parquet", b"root:$6$secret-hash:19000:0:99999:7:::\n")
    with pytest.raises(NotParquetError, match=r"customers.parquet is not a Parquet file") as refused:
        read_footer(store, "s3://bucket/p/customers.parquet")
    assert "root" not in str(refused.value) and "secret" not in str(refused.value)


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


def test_staging_refuses_parquet_with_fewer_rows_than_training_needs_from_the_footers(tmp_path: Path) -> None:
    from churn_pipeline.tasks.extracted_input import check_parquet_header

    store = LocalObjectStore(tmp_path)
    schema_uri = "s3://bucket/run/schema/schema.json"
    store.write_bytes(schema_uri, Path("include/config/schema.json").read_bytes())
    import pyarrow.parquet as pq

    sample = pq.read_table(write_sample(tmp_path / "sample.parquet", 100, 1))  # every column of the schema
    for name, rows in (("empty", 0), ("few", 49)):
        pq.write_table(sample.slice(0, rows), tmp_path / f"{name}.parquet")
        store.upload_file(tmp_path / f"{name}.parquet", f"s3://bucket/{name}/customers.parquet")
    with pytest.raises(AirflowFailException, match=r"holds 0 row\(s\), fewer than the 50 training needs, so no job "
                                                   r"is started: s3://bucket/empty/customers.parquet \(0 row\(s\)\)"):
        check_parquet_header(store, "s3://bucket/empty", schema_uri)
    with pytest.raises(AirflowFailException, match=r"holds 49 row\(s\), fewer than the 50"):
        check_parquet_header(store, "s3://bucket/few", schema_uri)
