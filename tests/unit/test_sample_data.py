"""The sample generator reproduces the bundled sample, and writes the same customers as a database
(SQLite) or a database export (Parquet) would hold them."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from churn_pipeline.tooling.sample_data import SAMPLE_ROWS, SAMPLE_SEED, SAMPLE_TABLE, main, write_sample
from tests.conftest import SAMPLE_CSV


def test_the_defaults_reproduce_the_bundled_sample_byte_for_byte(tmp_path: Path) -> None:
    written = write_sample(tmp_path / "customers.csv", SAMPLE_ROWS, SAMPLE_SEED)
    assert written.read_bytes() == SAMPLE_CSV.read_bytes()


def test_the_sqlite_sample_holds_the_bundled_customers_with_numbers_and_nulls(tmp_path: Path) -> None:
    database = write_sample(tmp_path / "customers.sqlite", SAMPLE_ROWS, SAMPLE_SEED)

    with closing(sqlite3.connect(database)) as connection:
        def one(query: str):
            return connection.execute(query.format(table=SAMPLE_TABLE)).fetchone()

        rows, distinct_ids = one("SELECT count(*), count(DISTINCT CustomerID) FROM {table}")
        types = dict(connection.execute(f"SELECT name, type FROM pragma_table_info('{SAMPLE_TABLE}')").fetchall())
        (unbilled,) = one("SELECT count(*) FROM {table} WHERE TotalCharges IS NULL")
        (blank_text,) = one("SELECT count(*) FROM {table} WHERE trim(Gender) = ''")

    csv_lines = SAMPLE_CSV.read_text().splitlines()
    assert rows == len(csv_lines) - 1 == 10_100 and distinct_ids == 10_000  # the 100 duplicate rows are kept
    assert (types["Age"], types["Tenure"], types["MonthlyCharges"], types["Gender"]) == \
        ("INTEGER", "INTEGER", "REAL", "TEXT")
    assert unbilled == sum(1 for line in csv_lines[1:] if line.split(",")[4].strip() == "")
    assert blank_text == 0, "blank cells are NULL in a database, not empty text"


def test_a_parquet_sample_keeps_column_types(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(write_sample(tmp_path / "customers.parquet", 500, 3))
    assert pa.types.is_integer(schema.field("Tenure").type)
    assert pa.types.is_floating(schema.field("MonthlyCharges").type)
    assert pa.types.is_string(schema.field("Churn").type) or pa.types.is_large_string(schema.field("Churn").type)


def test_an_unknown_format_is_refused_before_anything_is_written(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--output", str(tmp_path / "customers.xlsx")])
    assert "--output must end in .csv, .parquet, .sqlite" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_next_months_table_holds_the_same_customers_with_their_churn_drawn_again(tmp_path: Path) -> None:
    import pandas as pd

    sample = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False)
    assert main(["--next-month", "--output", str(tmp_path / "next.csv")]) == 0
    assert main(["--next-month", "--drifted", "--output", str(tmp_path / "drifted.csv")]) == 0
    for name in ("next.csv", "drifted.csv"):
        month = pd.read_csv(tmp_path / name, dtype=str, keep_default_na=False)
        assert month.drop(columns="Churn").equals(sample.drop(columns="Churn"))  # only the outcome moved
        assert abs((month["Churn"] == "Yes").mean() - (sample["Churn"] == "Yes").mean()) < 0.02
        assert 0.5 < (month["Churn"] == sample["Churn"]).mean() < 0.9  # drawn again, not copied
    assert main(["--next-month", "--output", str(tmp_path / "again.csv")]) == 0
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "next.csv").read_bytes()  # reproducible


def test_drifted_alone_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--drifted", "--output", str(tmp_path / "drifted.csv")])
    assert "--drifted describes next month's table: add --next-month" in capsys.readouterr().err
    assert not (tmp_path / "drifted.csv").exists()
