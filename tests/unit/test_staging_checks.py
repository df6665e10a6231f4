"""stage_inputs checks what can be checked before a paid job with the container scripts' own rules:
the whole schema, and each input CSV's header against it, reading only the first bytes of each file."""

from __future__ import annotations

import boto3
import pytest
from airflow.sdk.exceptions import AirflowFailException
from moto import mock_aws

from churn_common import schema_rules
from churn_pipeline.domain.contract_rules import rules
from churn_pipeline.services.objectstore import S3ObjectStore
from churn_pipeline.tasks.staging import _check_input_against_schema
from tests.conftest import HEADER

SCHEMA = {"id_column": "customerID", "target": {"column": "Churn", "positive": "Yes", "negative": "No"},
          "numeric": ["Age", "Tenure"], "categorical": ["Contract", "PaymentMethod"]}


def test_the_dag_side_loads_the_very_file_the_scripts_import() -> None:
    assert rules().__file__ == schema_rules.__file__
    assert rules().schema_problems({"target": {}}) == schema_rules.schema_problems({"target": {}})


def test_a_missing_column_is_named_with_the_columns_found_and_the_near_miss() -> None:
    with pytest.raises(AirflowFailException) as failure:
        _check_input_against_schema("/data/customers.csv", "/data/schema.json", SCHEMA,
                                    {"/data/customers.csv": (HEADER + "\nC1,Male,30\n").encode()})
    message = str(failure.value)
    assert message.startswith("input_uri /data/customers.csv does not fit schema_uri /data/schema.json")
    assert "missing column 'customerID' named by the schema (the file has 'CustomerID')" in message
    assert f"has the columns: {HEADER.replace(',', ', ')}" in message
    assert "'Tenure'" not in message, "present columns are not reported missing"


def test_every_file_of_a_prefix_is_checked_and_each_named() -> None:
    good = HEADER.replace("CustomerID", "customerID").encode()
    with pytest.raises(AirflowFailException) as failure:
        _check_input_against_schema("s3://b/in/", "s3://b/schema.json", SCHEMA,
                                    {"s3://b/in/a.csv": good, "s3://b/in/b.csv": b"",
                                     "s3://b/in/c.csv": good.replace(b"Tenure", b"tenure_months")})
    message = str(failure.value)
    assert "s3://b/in/b.csv: the file is empty" in message
    assert "s3://b/in/c.csv: missing column 'Tenure'" in message
    assert "s3://b/in/a.csv" not in message


FITTING_HEADER = HEADER.replace("CustomerID", "customerID")


def rows(count: int) -> str:
    return "".join(f"\nC{index},Male,30,70.5,12,Month-to-month,Card,No" for index in range(count))


def test_a_fitting_header_passes_and_a_folder_without_a_table_does_not() -> None:
    _check_input_against_schema("in.csv", "schema.json", SCHEMA, {"in.csv": (FITTING_HEADER + rows(50)).encode()})
    with pytest.raises(AirflowFailException, match=r"in/ holds no \.csv or \.parquet file"):
        _check_input_against_schema("in/", "schema.json", SCHEMA, {})


@mock_aws
def test_an_s3_header_is_read_with_a_ranged_get_not_the_whole_object() -> None:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="churn-unit")
    client.put_object(Bucket="churn-unit", Key="in/big.csv", Body=HEADER.encode() + b"\n" + b"x" * 2_000_000)
    client.put_object(Bucket="churn-unit", Key="in/empty.csv", Body=b"")
    requested, answered = [], []
    # what S3 was asked for and what it sent: a read that downloads the object and cuts it would
    # return the same bytes, so the bytes alone cannot tell
    client.meta.events.register("provide-client-params.s3.GetObject",
                                lambda params, **_: requested.append(dict(params)))
    client.meta.events.register("after-call.s3.GetObject",
                                lambda parsed, **_: answered.append(parsed.get("ContentLength")))
    store = S3ObjectStore(client)
    size = rules().HEADER_BYTES

    head = store.read_head("s3://churn-unit/in/big.csv", size)

    assert len(head) == size and head.startswith(HEADER.encode())
    assert requested == [{"Bucket": "churn-unit", "Key": "in/big.csv", "Range": f"bytes=0-{size - 1}"}]
    assert answered == [size], "S3 sent the first bytes only"
    assert store.read_head("s3://churn-unit/in/empty.csv", size) == b""


def test_a_header_without_rows_is_refused_before_any_job_naming_the_file() -> None:
    with pytest.raises(AirflowFailException) as failure:
        _check_input_against_schema("/data/customers.csv", "schema.json", SCHEMA,
                                    {"/data/customers.csv": (FITTING_HEADER + "\n\n").encode()})
    assert str(failure.value) == ("input_uri /data/customers.csv holds 0 data row(s), fewer than the 50 training "
                                  "needs; nothing was started: /data/customers.csv (a header and no rows)")


def test_fewer_rows_than_training_needs_are_refused_counting_every_file_of_a_folder() -> None:
    heads = {"in/a.csv": (FITTING_HEADER + rows(20)).encode(), "in/b.csv": (FITTING_HEADER + rows(29)).encode()}
    with pytest.raises(AirflowFailException, match=r"^input_uri in/ holds 49 data row\(s\), fewer than the 50 "
                                                   r"training needs; nothing was started: in/a.csv \(20 row\(s\)\), "
                                                   r"in/b.csv \(29 row\(s\)\)$"):
        _check_input_against_schema("in/", "schema.json", SCHEMA, heads)
    heads["in/b.csv"] += rows(1).encode()
    _check_input_against_schema("in/", "schema.json", SCHEMA, heads)


def test_a_file_larger_than_the_bytes_read_is_not_counted() -> None:
    """Its head holds a few rows; the rest is unread, so the job counts (a 64 KiB CSV has hundreds of rows)."""
    head = (FITTING_HEADER + rows(3) + "\n" + "x" * rules().HEADER_BYTES).encode()[:rules().HEADER_BYTES]
    _check_input_against_schema("big.csv", "schema.json", SCHEMA, {"big.csv": head})
