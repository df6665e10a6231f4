"""preprocessing.py on Parquet, what extract_customers writes: the same customers give the same splits
as from CSV, numbers stored as numbers are not parsed again while text is checked, bad Parquet gets
one clear message like bad CSV, and text cells are trimmed and blanks missing as in CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import HEADER, write_csv
from tests.scripts.preprocessing_runs import ROWS, preprocess, replace_cell

NUMERIC = ("Age", "MonthlyCharges", "TotalCharges", "Tenure")


def parquet_table(rows: list[str], **replaced):
    """The rows as a database export holds them: numeric columns as numbers, blank cells as null.
    ``replaced`` swaps a column for another Arrow array (to break the contract on purpose)."""
    import pyarrow as pa

    columns = HEADER.split(",")
    cells = [row.split(",") for row in rows]
    arrays = {}
    for index, name in enumerate(columns):
        values = [cell[index].strip() or None for cell in cells]
        if name in NUMERIC:
            arrays[name] = pa.array([None if value is None else float(value) for value in values], pa.float64())
        else:
            arrays[name] = pa.array(values, pa.string())
    arrays.update(replaced)
    return pa.table(arrays)


def write_parquet(path: Path, table) -> Path:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def test_the_same_customers_from_parquet_give_byte_identical_splits(tmp_path: Path,
                                                                     sample_outputs: dict[str, Path]) -> None:
    """The bundled sample as a database holds it (numbers as numbers, blanks as NULL), in three parts:
    the same splits, preprocessor statistics and counts as from the CSV."""
    from churn_pipeline.tooling.sample_data import SAMPLE_ROWS, SAMPLE_SEED, generate, typed

    customers = typed(generate(SAMPLE_ROWS, SAMPLE_SEED))
    for part, rows in enumerate((slice(0, 3000), slice(3000, 7000), slice(7000, None))):
        path = tmp_path / "in" / f"customers_{part:04d}_part_00.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        customers.iloc[rows].to_parquet(path, index=False)

    result, out, _ = preprocess(tmp_path)

    assert result.returncode == 0, result.stderr
    assert "read 10100 row(s) from 3 files" in result.stdout
    expected = sample_outputs["out"]
    for split in ("train/train.csv", "validation/validation.csv", "test/test.csv"):
        assert (out / split).read_bytes() == (expected / split).read_bytes(), split
    assert (out / "preprocessor" / "preprocessor.json").read_bytes() == \
        (expected / "preprocessor" / "preprocessor.json").read_bytes()
    quality, from_csv = (json.loads((folder / "quality" / "data_quality.json").read_text())
                         for folder in (out, expected))
    assert {**quality, "files": None} == {**from_csv, "files": None}
    assert len(quality["files"]) == 3


def test_numbers_stored_as_numbers_are_not_parsed_again_but_text_is_checked(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from churn_common import tables

    path = write_parquet(tmp_path / "customers.parquet", parquet_table(ROWS, Age=_ages_as_text(ROWS[0].split(",")[2])))
    assert pq.read_schema(path).field("MonthlyCharges").type == pa.float64()

    table = tables.open_customer_files([path], HEADER.split(","), NUMERIC)
    (batch,) = table.batches()

    assert batch.column("MonthlyCharges").type == pa.float64()  # as stored: nothing to parse
    assert batch.column("Age").type == pa.string()  # text: parsed and checked as a CSV column is


def _parquet_case(make_table):
    return lambda d: write_parquet(d / "customers.parquet", make_table())


def _lists():
    import pyarrow as pa

    return pa.array([[1, 2]] * len(ROWS), pa.list_(pa.int64()))


def _ages_as_text(first: str):
    import pyarrow as pa

    return pa.array([first] + [row.split(",")[2] for row in ROWS[1:]], pa.string())


BAD_PARQUET = {
    "missing columns": (
        _parquet_case(lambda: parquet_table(ROWS).drop_columns(["Age", "Contract"])),
        ["customers.parquet", "missing column 'Age'", "missing column 'Contract'"]),
    "a numeric column as text with words in it": (
        _parquet_case(lambda: parquet_table(ROWS, Age=_ages_as_text("forty"))),
        ["customers.parquet", "'Age' has 1 non-numeric", "'forty'"]),
    "unknown target values": (
        _parquet_case(lambda: parquet_table(ROWS[:100] + [replace_cell(r, "Churn", "Maybe") for r in ROWS[100:]])),
        ["customers.parquet", "'Maybe' (20)"]),
    "no rows": (_parquet_case(lambda: parquet_table(ROWS).slice(0, 0)), ["customers.parquet", "hold no rows"]),
    "not Parquet": (lambda d: (d / "customers.parquet").write_text("CustomerID,Churn\nC1,Yes\n"),
                    ["customers.parquet", "not a readable Parquet file"]),
    "a list where a category belongs": (
        _parquet_case(lambda: parquet_table(ROWS, Contract=_lists())),
        ["column 'Contract' holds list<", "values, not numbers or text"]),
    "parts with different columns": (
        lambda d: (write_parquet(d / "a.parquet", parquet_table(ROWS)),
                   write_parquet(d / "b.parquet", parquet_table(ROWS).drop_columns(["StreamingTV"]))),
        ["the Parquet files' headers differ", "b.parquet", "StreamingTV"]),
    "CSV beside Parquet": (
        lambda d: (write_parquet(d / "a.parquet", parquet_table(ROWS)), write_csv(d / "b.csv", [HEADER] + ROWS)),
        ["both .csv and .parquet files"]),
}


@pytest.mark.parametrize("case", list(BAD_PARQUET))
def test_bad_parquet_fails_like_bad_csv_with_one_clear_message(tmp_path: Path, case: str) -> None:
    make, expected = BAD_PARQUET[case]
    (tmp_path / "in").mkdir()
    make(tmp_path / "in")

    result, out, _ = preprocess(tmp_path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("preprocessing rejected its input:")
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in {result.stderr!r}"
    assert list(out.iterdir()) == []


def test_parquet_text_cells_are_trimmed_and_blank_ones_missing_as_in_csv(tmp_path: Path) -> None:
    padded = [replace_cell(replace_cell(r, "Churn", f" {r.split(',')[-1]} "), "TechSupport", "  ") for r in ROWS]
    write_parquet(tmp_path / "in" / "customers.parquet", parquet_table(padded))

    result, out, _ = preprocess(tmp_path)

    assert result.returncode == 0, result.stderr
    quality = json.loads((out / "quality" / "data_quality.json").read_text())
    assert quality["missing_values"]["TechSupport"] == len(ROWS)
    assert quality["rows_used"] == len(ROWS)
