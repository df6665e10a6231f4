"""preprocessing.py: the data contract is checked before anything is transformed, bad input gets one
clear message and no output, messy but valid input passes, the split follows the customer id, the
packaged preprocessor holds the statistics the batches were transformed with, and the result is
reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CONFIG, HEADER, make_rows, run_script, write_csv
from tests.scripts.preprocessing_runs import ROWS, fitted_statistics, packaged_preprocessor, preprocess, replace_cell

BAD_INPUTS = {
    "empty file": (lambda d: (d / "data.csv").write_bytes(b""), ["data.csv", "empty"]),
    "header only": (lambda d: write_csv(d / "data.csv", [HEADER]), ["data.csv", "no data rows"]),
    "missing columns": (
        lambda d: write_csv(d / "data.csv", [HEADER.replace(",Age", "").replace(",Contract", "")]
                            + [",".join(c for i, c in enumerate(r.split(",")) if i not in (2, 6)) for r in ROWS]),
        ["data.csv", "missing column 'Age'", "missing column 'Contract'"]),
    "every target missing": (
        lambda d: write_csv(d / "data.csv", [HEADER] + [replace_cell(r, "Churn", "") for r in ROWS]),
        ["data.csv", "usable row", "class 'Yes'"]),
    "unknown target values": (
        lambda d: write_csv(d / "data.csv",
                            [HEADER] + ROWS[:100] + [replace_cell(r, "Churn", "Maybe") for r in ROWS[100:]]),
        ["data.csv", "'Churn'", "'Maybe' (20)"]),
    "single class": (
        lambda d: write_csv(d / "data.csv", [HEADER] + [replace_cell(r, "Churn", "No") for r in ROWS]),
        ["data.csv", "0 usable row(s) of class 'Yes'"]),
    "too few of one class": (
        lambda d: write_csv(d / "data.csv", [HEADER] + [r for r in ROWS if r.endswith("No")]
                            + [r for r in ROWS if r.endswith("Yes")][:4]),
        ["data.csv", "4 usable row(s) of class 'Yes'", "stratified"]),
    "non-numeric values": (
        lambda d: write_csv(d / "data.csv", [HEADER] + [replace_cell(ROWS[0], "Age", "forty")] + ROWS[1:3]
                            + [replace_cell(r, "MonthlyCharges", "n/a") for r in ROWS[3:5]] + ROWS[5:]),
        ["data.csv", "'Age' has 1 non-numeric", "'forty'", "'MonthlyCharges' has 2 non-numeric"]),
    "duplicate column names": (
        lambda d: write_csv(d / "data.csv", [HEADER + ",Age"] + [r + ",30" for r in ROWS]),
        ["data.csv", "duplicate column names", "Age"]),
    "unterminated quote": (
        lambda d: write_csv(d / "data.csv", [HEADER] + ROWS[:50] + ['C9,"Male,30'] + ROWS[50:]),
        ["data.csv", "cannot be parsed", "never closed"]),
    "not text": (lambda d: (d / "data.csv").write_bytes(bytes(range(256)) * 40), ["data.csv", "not text"]),
    "a row with too few fields": (
        lambda d: write_csv(d / "data.csv", [HEADER] + ROWS[:10] + ["C9,Male,30"] + ROWS[10:]),
        ["data.csv", "cannot be parsed", "Expected 12 columns, got 3"]),
    "not UTF-8": (lambda d: (d / "data.csv").write_bytes(
        "\n".join([HEADER, replace_cell(ROWS[0], "Gender", "M\xe4nnlich")] + ROWS[1:]).encode("latin-1")),
                  ["data.csv", "not UTF-8"]),
    "no table in the folder": (lambda d: (d / "notes.txt").write_text("hello"), ["no .csv or .parquet file"]),
    "headers differ": (
        lambda d: (write_csv(d / "a.csv", [HEADER] + ROWS),
                   write_csv(d / "b.csv", [HEADER + ",Extra"] + [r + ",1" for r in ROWS])),
        ["headers differ", "b.csv", "Extra"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_with_one_clear_message_and_writes_nothing(tmp_path: Path, case: str) -> None:
    make, expected = BAD_INPUTS[case]
    (tmp_path / "in").mkdir()
    make(tmp_path / "in")

    result, out, base = preprocess(tmp_path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("preprocessing rejected its input:")
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in {result.stderr!r}"
    assert list(out.iterdir()) == [], "the output folder must stay empty"
    assert not [p for p in out.parent.iterdir() if "staging" in p.name], "no staging folder may be left behind"
    assert (base / "output" / "message").read_text().startswith("preprocessing rejected its input:")


def test_every_violation_is_listed_in_one_message(tmp_path: Path) -> None:
    rows = [replace_cell(replace_cell(r, "Age", "old"), "Churn", "Perhaps") for r in ROWS]
    write_csv(tmp_path / "in" / "data.csv", [HEADER] + rows)

    result, _, _ = preprocess(tmp_path)

    assert "2 problem(s) found" in result.stderr
    assert "'Perhaps'" in result.stderr and "'Age'" in result.stderr


def test_a_bad_schema_is_named(tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "data.csv", [HEADER] + ROWS)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"target": {"column": "Churn", "positive": "Yes", "negative": "Yes"}}))

    result, out, _ = preprocess(tmp_path, "--schema", schema)

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "schema.json" in result.stderr and "must differ" in result.stderr and "no feature column" in result.stderr
    assert list(out.iterdir()) == []


def test_messy_but_valid_input_passes(tmp_path: Path) -> None:
    """BOM, CRLF, blank and white-space cells, extra and reordered columns, quoted commas, duplicates."""
    columns = HEADER.split(",")
    order = list(reversed(columns)) + ["Notes"]
    lines = [",".join(order)]
    for index, row in enumerate(ROWS):
        cells = dict(zip(columns, row.split(","), strict=True))
        if index % 10 == 1:
            cells["Age"] = "   "
        if index % 10 == 2:
            cells["TechSupport"] = ""
        if index % 10 == 3:
            cells["TotalCharges"] = " "
        cells["PaymentMethod"] = f'"{cells["PaymentMethod"]}, paperless"' if index % 7 == 0 else cells["PaymentMethod"]
        cells["Churn"] = f" {cells['Churn']} "
        lines.append(",".join(cells[c] for c in order[:-1]) + ',"free text, with a comma"')
    lines += lines[1:6]  # five exact duplicate rows
    write_csv(tmp_path / "in" / "data.csv", lines, newline="\r\n", bom=True)

    result, out, _ = preprocess(tmp_path)

    assert result.returncode == 0, result.stderr
    quality = json.loads((out / "quality" / "data_quality.json").read_text())
    assert quality["duplicate_rows"] == 5
    assert quality["rows_used"] == len(ROWS)
    assert quality["ignored_columns"] == ["Notes"]
    assert quality["missing_values"]["Age"] == 12 and quality["missing_values"]["TechSupport"] == 12
    assert "ignoring 1 column(s)" in result.stdout and "Notes" in result.stdout


def test_rows_without_target_and_duplicate_ids_are_dropped_and_counted(tmp_path: Path) -> None:
    no_target = [replace_cell(r, "Churn", "") for r in make_rows(7, seed=5)]
    same_id_other_values = [replace_cell(ROWS[0], "Age", "99"), replace_cell(ROWS[1], "Age", "98")]
    write_csv(tmp_path / "in" / "data.csv", [HEADER] + ROWS + no_target + same_id_other_values)

    result, out, _ = preprocess(tmp_path)

    quality = json.loads((out / "quality" / "data_quality.json").read_text())
    assert result.returncode == 0, result.stderr
    assert quality["rows_read"] == len(ROWS) + 9
    assert quality["rows_without_target"] == 7
    assert quality["duplicate_ids"] == 2
    assert quality["rows_used"] == len(ROWS)


def test_split_follows_the_id_hash_70_10_20_and_writes_every_artefact(sample_outputs: dict[str, Path]) -> None:
    """crc32(id) % 100 below 70 is train, below 80 validation, else test: near the configured shares,
    each class near its overall share (not stratified, so not exactly), the held-out ids all >= 80."""
    import zlib

    import pyarrow.parquet as pq

    out = sample_outputs["out"]
    quality = json.loads((out / "quality" / "data_quality.json").read_text())
    splits = quality["splits"]
    total = sum(info["rows"] for info in splits.values())
    assert total == quality["rows_used"]
    for name, share in (("train", 0.7), ("validation", 0.1), ("test", 0.2)):
        assert abs(splits[name]["rows"] / total - share) < 0.01
        assert abs(splits[name]["positive"] / splits[name]["rows"] - quality["class_counts"]["Yes"] / total) < 0.03
    held_out = pq.read_table(out / "holdout" / "holdout.parquet").column("CustomerID").to_pylist()
    assert len(held_out) == splits["test"]["rows"]
    assert all(zlib.crc32(customer.encode()) % 100 >= 80 for customer in held_out)
    for path in ("train/train.csv", "validation/validation.csv", "test/test.csv",
                 "preprocessor/preprocessor.json", "preprocessor/schema.json"):
        assert (out / path).is_file(), path


def _sample_splits():
    """The bundled sample read independently of the script (pandas, all text), de-duplicated as the
    contract says, with each customer's split by the documented rule: (features, split names)."""
    import zlib

    import pandas as pd

    from churn_common import data_contract
    from tests.conftest import SAMPLE_CSV

    schema = data_contract.load_schema(CONFIG / "schema.json")
    frame = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False)
    frame = frame.apply(lambda column: column.str.strip()).replace("", None)
    numeric = frame[list(schema.numeric)].apply(pd.to_numeric)
    frame = frame[~pd.concat([frame.drop(columns=list(schema.numeric)), numeric], axis=1).duplicated()]
    frame = frame[~frame[schema.id_column].duplicated()].reset_index(drop=True)
    buckets = frame[schema.id_column].map(lambda customer: zlib.crc32(customer.encode()) % 100)
    names = buckets.map(lambda bucket: "train" if bucket < 70 else "validation" if bucket < 80 else "test")
    return schema, data_contract.features_from_text(frame, schema), names


def test_transforms_are_fitted_on_the_training_split_only(sample_outputs: dict[str, Path]) -> None:
    """The packaged preprocessor's statistics (computed by the script's pass over the batches) equal
    those of scikit-learn's own fit on the training split's rows."""
    import numpy as np

    from churn_common.preprocessor import build_preprocessor

    persisted = fitted_statistics(packaged_preprocessor(sample_outputs["out"]))
    schema, features, names = _sample_splits()
    quality = json.loads((sample_outputs["out"] / "quality" / "data_quality.json").read_text())
    assert int((names == "train").sum()) == quality["splits"]["train"]["rows"]
    on_train = fitted_statistics(build_preprocessor(schema).fit(features[names == "train"]))
    on_all_rows = fitted_statistics(build_preprocessor(schema).fit(features))

    assert persisted.keys() == on_train.keys()
    for name in ("medians", "modes", "categories"):
        assert persisted[name] == on_train[name], name
    for name in ("means", "scales"):
        assert np.allclose(persisted[name], on_train[name], rtol=1e-12, atol=0), name
    # The comparison can tell: a preprocessor fitted on every row (the leak) differs from one fitted
    # on the training split, so a script that leaked would fail the assertions above.
    assert not np.allclose(on_all_rows["means"], on_train["means"], rtol=1e-12, atol=0)


def test_the_packaged_preprocessor_transforms_as_the_batches_were(sample_outputs: dict[str, Path]) -> None:
    """The model scores raw records through the packaged preprocessor: on the held-out customers it
    gives the features the script wrote to test.csv, at float32 precision."""
    import numpy as np

    from churn_common import data_contract, tables

    out = sample_outputs["out"]
    preprocessor = packaged_preprocessor(out)
    schema = data_contract.load_schema(out / "preprocessor" / "schema.json")
    records = tables.read_records(out / "holdout")
    written, labels = tables.read_matrix_csv(out / "test")

    transformed = preprocessor.transform(data_contract.prepare_features(records, schema))

    assert transformed.shape == written.shape
    assert (labels == records[tables.TARGET_LABEL].to_numpy()).all()
    assert np.allclose(transformed.astype("float32"), written, rtol=1e-6, atol=1e-6)
    assert (transformed.astype("float32") == written.astype("float32")).mean() > 0.999


def test_same_input_and_schema_give_byte_identical_splits(tmp_path: Path, sample_outputs: dict[str, Path]) -> None:
    from tests.conftest import SAMPLE_CSV

    out = tmp_path / "again"
    result = run_script("preprocessing.py", "--input-dir", SAMPLE_CSV.parent, "--output-dir", out)
    assert result.returncode == 0, result.stderr
    for split in ("train/train.csv", "validation/validation.csv", "test/test.csv", "quality/data_quality.json"):
        assert (out / split).read_bytes() == (sample_outputs["out"] / split).read_bytes(), split


def test_a_customer_stays_in_their_split_when_others_come_and_go(tmp_path: Path) -> None:
    """Tonight's table without half of last night's customers, in another order, plus new ones: every
    customer who was held out last night is held out again, and no one else who was there before."""
    import pyarrow.parquet as pq

    rows = make_rows(400, seed=3)
    write_csv(tmp_path / "first" / "in" / "data.csv", [HEADER] + rows)
    newcomers = [row.replace("C", "N", 1) for row in make_rows(100, seed=4)]
    write_csv(tmp_path / "second" / "in" / "data.csv", [HEADER] + newcomers + rows[::2][::-1])

    held_out = []
    for night in ("first", "second"):
        result, out, _ = preprocess(tmp_path / night)
        assert result.returncode == 0, result.stderr
        held_out.append(set(pq.read_table(out / "holdout" / "holdout.parquet").column("CustomerID").to_pylist()))
    returning = {row.split(",")[0] for row in rows[::2]}
    assert held_out[0] & returning == held_out[1] & returning
    assert held_out[1] - returning, "some of the new customers are held out too"


def test_without_schema_the_default_contract_is_used(tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "data.csv", [HEADER] + ROWS)
    result, out, _ = preprocess(tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "preprocessor" / "schema.json").read_text())["numeric"] == \
        json.loads((CONFIG / "schema.json").read_text())["numeric"]


def test_container_defaults_are_sagemaker_paths_under_the_base_dir(tmp_path: Path) -> None:
    base = tmp_path / "ml"
    write_csv(base / "processing" / "input" / "data" / "part.csv", [HEADER] + ROWS)
    (base / "processing" / "input" / "schema").mkdir(parents=True)
    (base / "processing" / "input" / "schema" / "schema.json").write_bytes((CONFIG / "schema.json").read_bytes())

    result = run_script("preprocessing.py", env={"SAGEMAKER_BASE_DIR": str(base)})

    assert result.returncode == 0, result.stderr
    assert (base / "processing" / "output" / "train" / "train.csv").is_file()
