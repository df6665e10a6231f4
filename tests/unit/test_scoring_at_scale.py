"""Scoring on the Airflow worker in bounded memory: the customers' JSON lines and the scores table are
exactly what the whole-table implementation gave (kept here, below, as the specification), for
duplicates, blank cells, several parts, mixed number types and batches that split a file."""

from __future__ import annotations

import csv
import io
import json
import math
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn_pipeline.domain.layout import ScoringLayout
from churn_pipeline.domain.payloads import ModelVersionRef, StagedScoring
from churn_pipeline.domain.settings import load_settings
from churn_pipeline.services import customer_lines
from churn_pipeline.services.customer_lines import stage_lines, table_columns
from churn_pipeline.tasks.scoring import ScoredOutput
from tests.unit.scoring_before import scores_csv, scores_from_transform, summarize

NEEDED = ["CustomerID", "Age", "MonthlyCharges", "Contract"]


# ---------------------------------------------------------------- the whole-table implementation
def whole_table_lines(paths: list[Path], needed: list[str], id_column: str | None) -> tuple[list[str], int]:
    import pandas as pd

    frames = []
    for path in paths:
        if path.suffix == ".parquet":
            frames.append(pd.read_parquet(path))
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            frame.columns = [str(name).strip() for name in frame.columns]
            frames.append(frame.apply(lambda column: column.str.strip()).replace("", None))
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def cell(value: Any) -> Any:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value.item() if hasattr(value, "item") else value

    customers = table[needed]
    unique = customers.drop_duplicates()
    if id_column:
        unique = unique[~(unique[id_column].notna() & unique.duplicated(subset=[id_column], keep="first"))]
    lines = [json.dumps({name: cell(value) for name, value in zip(needed, row, strict=True)})
             for row in unique.itertuples(index=False, name=None)]
    return lines, len(customers) - len(unique)


def staged(paths: list[Path], tmp_path: Path, id_column: str | None = "CustomerID") -> tuple[list[str], int]:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    result = stage_lines(paths, NEEDED, id_column, scratch)
    lines = result.path.read_text(encoding="utf-8").splitlines()
    assert result.customers == len(lines)
    return lines, result.dropped


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(customer_lines, "BATCH_ROWS", 7)  # so that every file below spans several batches


def write_text(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def test_csv_parts_give_the_same_lines_and_drop_the_same_duplicates(tmp_path: Path) -> None:
    rng = random.Random(3)
    rows = [f"C{rng.randint(1, 25)}, {rng.choice(['', '34', ' 51 '])},{rng.choice(['70.5', '', '19'])},"
            f"{rng.choice(['Month-to-month', ' One year', ''])},extra" for _ in range(40)]
    rows += [rows[3], rows[3], ",,,,", ",,,,"]  # repeated rows, rows without an id
    first = write_text(tmp_path / "a.csv", "\ufeffCustomerID , Age,MonthlyCharges,Contract,Other\n"
                       + "\n".join(rows[:22]) + "\n")
    second = write_text(tmp_path / "b.csv", "CustomerID,Age,MonthlyCharges,Contract,Other\n"
                        + "\n".join(rows[22:]) + "\n")

    assert staged([first, second], tmp_path) == whole_table_lines([first, second], NEEDED, "CustomerID")
    assert staged([first, second], tmp_path, id_column=None) == whole_table_lines([first, second], NEEDED, None)
    assert table_columns([first, second]) == ["CustomerID", "Age", "MonthlyCharges", "Contract", "Other"]


def test_parquet_keeps_stored_types_and_a_null_anywhere_makes_a_whole_number_column_floating(tmp_path: Path) -> None:
    ids = [f"C{index % 17}" for index in range(30)]
    ages = list(range(30))
    with_null = [*ages[:25], None, *ages[26:]]  # the null sits in the file's last batch only
    charges = [float(index) + 0.5 for index in range(30)]
    contracts = [None if index % 9 == 0 else "One year" for index in range(30)]
    integers = tmp_path / "integers.parquet"
    pq.write_table(pa.table({"CustomerID": ids, "Age": ages, "MonthlyCharges": charges, "Contract": contracts}),
                   integers, row_group_size=10)
    nulls = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"CustomerID": ids, "Age": with_null, "MonthlyCharges": charges,
                             "Contract": contracts}), nulls, row_group_size=10, write_statistics=False)

    for parts in ([integers], [nulls], [integers, nulls]):
        assert staged(parts, tmp_path) == whole_table_lines(parts, NEEDED, "CustomerID"), parts
    lines, _ = staged([nulls], tmp_path)
    assert '"Age": 1.0' in lines[1], "the file's null makes its ages floating point in every batch"


def test_a_part_without_a_column_gives_nulls_there_and_floats_elsewhere(tmp_path: Path) -> None:
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"CustomerID": ["A", "B"], "Age": [30, 40], "MonthlyCharges": [1.5, 2.5],
                             "Contract": ["One year", "Two year"]}), whole)
    partial = tmp_path / "partial.parquet"
    pq.write_table(pa.table({"CustomerID": ["C"], "MonthlyCharges": [3.5], "Contract": ["One year"]}), partial)

    assert staged([whole, partial], tmp_path) == whole_table_lines([whole, partial], NEEDED, "CustomerID")


# ---------------------------------------------------------------- the scores table and summary
def transform_line(rng: random.Random, number: int) -> str:
    probability = rng.choice([0.9, 0.5, 0.25, rng.random()])  # ties on purpose
    drivers = [{"feature": f"f{index}", "contribution": rng.uniform(-0.1, 0.1)} for index in range(rng.randint(0, 3))]
    prediction = {"probability": probability, "contact": probability > 0.3, "expected_profit": rng.uniform(-5, 50),
                  "base_value": 0.27, "drivers": drivers}
    if number % 4:
        prediction["customer_value"] = rng.uniform(10, 90)
    return json.dumps({"CustomerID": f"C{number}", "SageMakerOutput": prediction})


def test_the_scores_table_and_summary_are_the_whole_lists(tmp_path: Path) -> None:
    settings = load_settings({})
    rng = random.Random(5)
    lines = [transform_line(rng, number) for number in range(1, 120)]
    files = []
    for index, chunk in enumerate((lines[:50], lines[50:51], lines[51:])):
        files.append(write_text(tmp_path / f"{index}.out", "\n".join(chunk) + "\n\n"))  # blank lines are skipped
    champion = ModelVersionRef(version=3, identifier="models:/customer-churn/3", approval_status="Approved",
                               model_uri="s3://b/m.tar.gz")
    staged_run = StagedScoring(run_key="20261201T060000Z", image_uri="local", input_uri="s3://b/in",
                               customers=len(lines), dropped_duplicates=2, id_column="CustomerID", champion=champion)
    layout = ScoringLayout(settings.base_uri, staged_run.run_key)
    expected = scores_from_transform(lines, "CustomerID", settings, version=3)

    scored = ScoredOutput(files, "CustomerID", settings, version=3)
    table = tmp_path / "scores.csv"
    scored.write_csv(table)

    assert scored.customers == len(lines)
    assert table.read_bytes() == scores_csv(expected, "CustomerID")
    assert scored.summary(staged_run, layout) == summarize(expected, settings, staged_run, layout)
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [float(row["churn_probability"]) for row in rows] == sorted(
        (float(row["churn_probability"]) for row in rows), reverse=True)


def test_a_probability_out_of_range_names_its_line_across_files(tmp_path: Path) -> None:
    settings = load_settings({})
    good = json.dumps({"id": 1, "SageMakerOutput": {"probability": 0.5}})
    bad = json.dumps({"id": 2, "SageMakerOutput": {"probability": 1.5}})
    first, second = write_text(tmp_path / "0.out", good + "\n"), write_text(tmp_path / "1.out", good + "\n" + bad)
    with pytest.raises(ValueError, match=r"line 3 of the transform output has a probability of 1\.5"):
        ScoredOutput([first, second], "id", settings, version=1)
