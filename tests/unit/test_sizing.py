"""Sizing: each job's peak memory estimated from the input's size, and a run that will not fit its
instance refused by stage_inputs before any job, in one line naming what would fit."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException
from moto import mock_aws

from churn_pipeline.domain import sizing
from churn_pipeline.domain.settings import DEFAULT_SCHEMA_FILE, SAMPLE_DATA_FILE
from churn_pipeline.domain.sizing import InputSize, estimated_peak_mib, memory_refusal, smallest_fitting


def test_the_estimate_grows_with_the_customers_from_the_measured_fixed_part() -> None:
    assert estimated_peak_mib("preprocess", InputSize(rows=0)) == sizing.FIXED_MIB["preprocess"]
    one = estimated_peak_mib("train", InputSize(rows=1_000_000))
    ten = estimated_peak_mib("train", InputSize(rows=10_000_000))
    assert ten - one == pytest.approx(9 * sizing.MIB_PER_MILLION_ROWS["train"])
    # the measured peaks at 1M (make bench) and 10M customers (make bench-dag) the coefficients go through
    assert estimated_peak_mib("preprocess", InputSize(rows=1_000_000)) == pytest.approx(321, abs=1)
    assert estimated_peak_mib("preprocess", InputSize(rows=10_000_000)) == pytest.approx(1490, abs=1)
    assert estimated_peak_mib("train", InputSize(rows=10_000_000)) == pytest.approx(1961, abs=1)
    assert estimated_peak_mib("evaluate", InputSize(rows=10_000_000)) == pytest.approx(742, abs=1)


def test_a_csv_is_sized_by_its_bytes_at_the_benchs_bytes_per_row() -> None:
    assert InputSize(csv_bytes=88_066_327).customers == pytest.approx(1_000_000, rel=0.001)
    assert InputSize(rows=5, csv_bytes=10**9).customers == 5, "counted rows win over an estimate"
    assert "from 84 MiB of CSV" in InputSize(csv_bytes=88_066_327).described()


def test_the_smallest_instance_of_the_same_family_that_fits_is_named() -> None:
    assert smallest_fitting("ml.m5.xlarge", 20_000) == "ml.m5.2xlarge"  # 32 GiB x 0.85 = 27.2 GiB
    assert smallest_fitting("ml.c5.xlarge", 100) == "ml.c5.xlarge"
    assert smallest_fitting("ml.r5.large", 13_000) == "ml.r5.large"  # 16 GiB x 0.85 = 13.6 GiB
    assert smallest_fitting("ml.m5.large", 10**7) is None
    assert smallest_fitting("ml.g4dn.xlarge", 100) is None


def test_a_run_that_fits_is_not_refused_and_an_unknown_type_is_not_guessed() -> None:
    assert memory_refusal("preprocess", "ml.m5.xlarge", InputSize(rows=1_000_000), "X") is None
    assert memory_refusal("preprocess", "ml.g4dn.xlarge", InputSize(rows=10**9), "X") is None


def test_the_refusal_is_one_line_with_the_step_the_estimate_the_memory_and_what_fits() -> None:
    message = memory_refusal("train", "ml.m5.large", InputSize(rows=50_000_000), "CHURN_TRAIN_INSTANCE_TYPE")
    assert message == ("train would need about 8.4 GiB for 50,000,000 customers (from the Parquet footers), "
                       "more than the 85% of ml.m5.large's 8 GiB a job can use (6.8 GiB); the smallest of its "
                       "family that fits is ml.m5.xlarge (16 GiB): set CHURN_TRAIN_INSTANCE_TYPE")
    beyond = memory_refusal("train", "ml.c5.xlarge", InputSize(rows=10**9), "CHURN_TRAIN_INSTANCE_TYPE")
    assert beyond is not None and "\n" not in beyond
    assert beyond.endswith("no instance of its family fits: choose a larger family (ml.r5) in "
                           "CHURN_TRAIN_INSTANCE_TYPE")


def test_every_step_that_does_not_fit_is_refused_in_the_steps_order() -> None:
    types = {"preprocess": "ml.m5.large", "train": "ml.m5.24xlarge", "evaluate": "ml.c5.xlarge"}
    names = {step: f"CHURN_{step.upper()}_INSTANCE_TYPE" for step in types}
    refusals = sizing.memory_refusals(types, InputSize(rows=200_000_000), names)
    assert [line.split(" ")[0] for line in refusals] == ["preprocess", "evaluate"]


def _stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, input_path: Path, **environment: str) -> dict:
    from churn_pipeline.tasks.staging import stage_run_inputs

    monkeypatch.setenv("CHURN_LOCAL_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("CHURN_IMAGE_URI", "local")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    pushed: list = []
    ti = SimpleNamespace(task_id="stage_inputs", xcom_push=lambda key, value: pushed.append((key, value)))
    from datetime import UTC, datetime

    run_after = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    return stage_run_inputs(params={"input_uri": str(input_path), "schema_uri": str(DEFAULT_SCHEMA_FILE)},
                            dag_run=SimpleNamespace(run_after=run_after), ti=ti, logical_date=run_after)


def test_stage_inputs_refuses_a_parquet_input_too_large_for_the_preprocessing_instance(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(str(SAMPLE_DATA_FILE))
    pq.write_table(table, tmp_path / "customers.parquet")
    rows = table.num_rows
    # The bundled sample is small: rather than write gigabytes, the measured per-customer coefficient
    # is scaled so that this many customers need more than an ml.m5.large and less than an ml.m5.xlarge.
    per_million = (10 * 1024 - sizing.FIXED_MIB["preprocess"]) * 1_000_000 / rows  # 10 GiB in all
    monkeypatch.setitem(sizing.MIB_PER_MILLION_ROWS, "preprocess", per_million)

    with pytest.raises(AirflowFailException) as refused:
        _stage(tmp_path, monkeypatch, tmp_path / "customers.parquet", CHURN_PREPROCESS_INSTANCE_TYPE="ml.m5.large",
               CHURN_ENGINE="sklearn")  # auto would run it on Spark (test_spark_staging.py)

    message = str(refused.value)
    assert message.count("\n") == 0
    assert message.startswith(f"preprocess would need about 10.0 GiB for {rows:,} customers (from the Parquet footers)")
    assert "ml.m5.large's 8 GiB" in message and "ml.m5.xlarge (16 GiB): set CHURN_PREPROCESS_INSTANCE_TYPE" in message
    assert "or run it on Spark with engine=spark" in message
    assert message.endswith("nothing was started")


def test_stage_inputs_sizes_a_csv_by_its_bytes_and_passes_what_fits(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    staged = _stage(tmp_path, monkeypatch, SAMPLE_DATA_FILE)
    assert staged["input_uri"].endswith("/input")
    monkeypatch.setitem(sizing.MIB_PER_MILLION_ROWS, "evaluate", 10**9)
    with pytest.raises(AirflowFailException, match=r"^evaluate would need about .* customers \(from 1 MiB of CSV\)"):
        _stage(tmp_path, monkeypatch, SAMPLE_DATA_FILE, CHURN_ENGINE="sklearn")


def test_a_parquet_input_is_sized_from_its_footers_and_a_csv_from_its_bytes(tmp_path: Path) -> None:
    from churn_pipeline.services.objectstore import LocalObjectStore
    from churn_pipeline.services.parquet_inputs import read_footer
    from churn_pipeline.tasks.staging import input_size

    store = LocalObjectStore(tmp_path)
    pq.write_table(pa.table({"a": list(range(1000))}), tmp_path / "t.parquet")
    store.upload_file(tmp_path / "t.parquet", "s3://churn-unit/in/t.parquet")
    store.write_bytes("s3://churn-unit/csv/a.csv", b"x" * 880)
    footers = [read_footer(store, "s3://churn-unit/in/t.parquet")]
    assert input_size(store, "s3://churn-unit/in", footers).customers == 1000
    assert input_size(store, "s3://churn-unit/csv", []) == InputSize(csv_bytes=880)


@mock_aws
def test_s3_gives_the_objects_sizes_from_its_listing_without_reading_them() -> None:
    import boto3

    from churn_pipeline.services.objectstore import S3ObjectStore

    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="churn-unit")
    client.put_object(Bucket="churn-unit", Key="in/a.csv", Body=b"x" * 1234)
    client.put_object(Bucket="churn-unit", Key="in/b.csv", Body=b"")
    client.put_object(Bucket="churn-unit", Key="inside/c.csv", Body=b"y")
    reads: list = []
    client.meta.events.register("provide-client-params.s3.GetObject", lambda params, **_: reads.append(params))
    store = S3ObjectStore(client)
    assert store.sizes("s3://churn-unit/in") == {"s3://churn-unit/in/a.csv": 1234, "s3://churn-unit/in/b.csv": 0}
    assert store.list_uris("s3://churn-unit/in") == ["s3://churn-unit/in/a.csv", "s3://churn-unit/in/b.csv"]
    assert reads == []
