"""Shared helpers for the container scripts: the data contract, robust CSV reading, the SageMaker
container paths, failure reporting and all-or-nothing output folders.

This module ships beside the scripts (processing code input, training ``sourcedir.tar.gz`` and the
model's ``code/`` folder), so it imports nothing from Airflow or from the DAG-side package.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAGEMAKER_ROOT = "/opt/ml"
# The default contract lives in include/config/; inside a container the schema always arrives as an input.
DEFAULT_SCHEMA_FILE = Path(__file__).resolve().parent.parent / "config" / "schema.json"
TARGET_LABEL = "label"  # column name of the 0/1 target in the written splits
SEED = 42
# Failure reasons of bad input contain this phrase; the DAG side fails such jobs without retrying.
BAD_INPUT_PHRASE = "rejected its input"


class ContractError(Exception):
    """Input that breaks the data contract; carries every violation found."""

    def __init__(self, source: str, violations: Sequence[str]):
        self.source = source
        self.violations = list(violations)
        lines = "\n".join(f"  - {violation}" for violation in self.violations)
        super().__init__(f"{source}: {len(self.violations)} problem(s) found:\n{lines}")


# --------------------------------------------------------------------------- container paths


def base_dir() -> Path | None:
    """The SageMaker root (``/opt/ml`` in a container, ``$SAGEMAKER_BASE_DIR`` in the local runner).

    None when running by hand on a laptop, where nothing must be written under ``/opt/ml``.
    """
    configured = os.environ.get("SAGEMAKER_BASE_DIR")
    if configured:
        return Path(configured)
    root = Path(SAGEMAKER_ROOT)
    return root if root.is_dir() else None


def container_path(relative: str) -> str:
    """A default path inside the container, e.g. ``processing/input/data``."""
    root = base_dir() or Path(SAGEMAKER_ROOT)
    return str(root / relative)


def write_failure_reason(kind: str, message: str) -> None:
    """Write the reason where SageMaker reads it: ``output/message`` (processing) or ``output/failure``."""
    root = base_dir()
    if root is None:
        return
    target = root / "output" / kind
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # SageMaker keeps the first 1 KB of the reason; the full text is in the log.
        target.write_text(message[:1024], encoding="utf-8")
    except OSError as error:  # the reason still reaches stderr and the exit code
        print(f"could not write the failure reason to {target}: {error}", file=sys.stderr)


def run_main(step: str, failure_kind: str, body: Callable[[], None]) -> int:
    """Run a script body; turn known failures into one readable message and a non-zero exit code.

    Bad input (``ContractError``, ``UsageError``) and environment faults (``OSError``: disk full,
    permission denied) are expected: one message, no traceback. Anything else is a bug, so its
    traceback is printed as well.
    """
    try:
        body()
    except (ContractError, UsageError) as error:
        message = f"{step} {BAD_INPUT_PHRASE}: {error}"
    except OSError as error:
        message = f"{step} failed: {error.strerror or error}" + (f" ({error.filename})" if error.filename else "")
    except Exception as error:  # noqa: BLE001 - reported with traceback, never swallowed
        traceback.print_exc()
        message = f"{step} failed with an unexpected error: {type(error).__name__}: {error}"
    else:
        return 0
    print(message, file=sys.stderr)
    write_failure_reason(failure_kind, message)
    return 1


class UsageError(Exception):
    """A wrong argument or a missing file given on the command line."""


# --------------------------------------------------------------------------- all-or-nothing output


@contextmanager
def staged_output(output_dir: Path) -> Iterator[Path]:
    """Yield a private staging folder; move its contents into ``output_dir`` only on success.

    A failure leaves ``output_dir`` as it was (empty in a fresh job) and removes the staging folder,
    so no reader ever sees half of a step's outputs.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}-staging-", dir=output_dir.parent))
    try:
        yield staging
        for child in sorted(staging.iterdir()):
            destination = output_dir / child.name
            if destination.is_dir():
                shutil.rmtree(destination)
            os.replace(child, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- the data contract


@dataclass(frozen=True)
class Schema:
    """The data contract: which columns are features, which is the target, which is the id."""

    id_column: str | None
    target_column: str
    positive: str
    negative: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    @property
    def required_columns(self) -> tuple[str, ...]:
        id_part = (self.id_column,) if self.id_column else ()
        return id_part + (self.target_column,) + self.features

    def to_dict(self) -> dict[str, Any]:
        return {
            "id_column": self.id_column,
            "target": {"column": self.target_column, "positive": self.positive, "negative": self.negative},
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
        }


def _schema_problems(raw: Any) -> list[str]:
    if not isinstance(raw, dict):
        return ["the schema must be a JSON object"]
    problems = []
    target = raw.get("target")
    if not isinstance(target, dict):
        problems.append("'target' must be an object with 'column', 'positive' and 'negative'")
    else:
        for key in ("column", "positive", "negative"):
            if not isinstance(target.get(key), (str, int)) or str(target.get(key)).strip() == "":
                problems.append(f"'target.{key}' must be a non-empty string")
        if str(target.get("positive")).strip() == str(target.get("negative")).strip():
            problems.append("'target.positive' and 'target.negative' must differ")
    for key in ("numeric", "categorical"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            problems.append(f"'{key}' must be a list of column names")
    if not raw.get("numeric") and not raw.get("categorical"):
        problems.append("the schema names no feature column ('numeric' and 'categorical' are both empty)")
    id_column = raw.get("id_column")
    if id_column is not None and (not isinstance(id_column, str) or not id_column):
        problems.append("'id_column' must be a column name or null")
    if not problems:
        names = [raw["target"]["column"], *raw.get("numeric", []), *raw.get("categorical", [])]
        if id_column:
            names.append(id_column)
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            problems.append(f"columns named more than once: {', '.join(repeated)}")
    unknown = sorted(set(raw) - {"id_column", "target", "numeric", "categorical", "description"})
    if unknown:
        problems.append(f"unknown keys: {', '.join(unknown)}")
    return problems


def load_schema(path: Path | str | None) -> Schema:
    """Read and check a schema file; a folder means the single ``.json`` file inside it."""
    schema_path = Path(path) if path else DEFAULT_SCHEMA_FILE
    if schema_path.is_dir():
        candidates = sorted(schema_path.glob("*.json"))
        if len(candidates) != 1:
            raise UsageError(f"expected exactly one .json schema in {schema_path}, found {len(candidates)}")
        schema_path = candidates[0]
    if not schema_path.is_file():
        raise UsageError(f"schema file not found: {schema_path}")
    try:
        raw = json.loads(schema_path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ContractError(f"schema {schema_path}", [f"not valid JSON: {error}"]) from None
    problems = _schema_problems(raw)
    if problems:
        raise ContractError(f"schema {schema_path}", problems)
    return Schema(
        id_column=raw.get("id_column"),
        target_column=raw["target"]["column"],
        positive=str(raw["target"]["positive"]).strip(),
        negative=str(raw["target"]["negative"]).strip(),
        numeric=tuple(raw.get("numeric", [])),
        categorical=tuple(raw.get("categorical", [])),
    )


# --------------------------------------------------------------------------- robust reading

_SNIFF_BYTES = 64 * 1024


def _read_header(data: bytes, path: Path) -> list[str]:
    """The raw header names, after checking the file is non-empty UTF-8 text with a sound header."""
    head = data[:_SNIFF_BYTES]
    if not head.strip():
        raise ContractError(str(path), ["the file is empty"])
    if b"\x00" in head:
        raise ContractError(str(path), ["the file is not text (it contains NUL bytes)"])
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        header = next(csv.reader([first_line.decode("utf-8-sig")]))
    except UnicodeDecodeError as error:
        raise ContractError(str(path), [f"the file is not UTF-8 text ({error.reason} at byte {error.start})"]) from None
    except (csv.Error, StopIteration) as error:
        raise ContractError(str(path), [f"the header row cannot be parsed: {error}"]) from None
    names = [name.strip() for name in header]
    problems = []
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        problems.append(f"duplicate column names in the header: {', '.join(repeated)}")
    if any(name == "" for name in names):
        problems.append("the header has an empty column name")
    if problems:
        raise ContractError(str(path), problems)
    return header


def list_csv_files(input_dir: Path) -> list[Path]:
    if not input_dir.is_dir():
        raise UsageError(f"input folder not found: {input_dir}")
    files = sorted(path for path in input_dir.rglob("*") if path.is_file() and path.suffix.lower() == ".csv")
    if not files:
        raise ContractError(str(input_dir), ["no .csv file in the input folder"])
    return files


def _read_text_table(path: Path, data: bytes, header: list[str], wanted: Sequence[str]) -> "Any":
    """One CSV as an Arrow table of the wanted columns, all text, trimmed, blank cells as null.

    Arrow's reader is several times faster than pandas' on large files; it accepts an unterminated
    quote at the end of the file silently, so quotes are counted first (escaped quotes come in pairs).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    if data.count(b'"') % 2:
        raise ContractError(str(path), ["the CSV cannot be parsed: a quoted field is never closed (odd number of "
                                        "'\"' characters)"])
    raw_names = {name.strip(): name for name in header}
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                include_columns=[raw_names[name] for name in wanted],
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except pa.ArrowInvalid as error:
        message = str(error).replace("CSV parse error: ", "")
        if "UTF8" in message:
            raise ContractError(str(path), [f"the file is not UTF-8 text ({message})"]) from None
        raise ContractError(str(path), [f"the CSV cannot be parsed: {message}"]) from None
    columns = []
    for name in wanted:
        trimmed = pc.utf8_trim_whitespace(table.column(raw_names[name]))
        columns.append(pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed))
    return pa.table(columns, names=list(wanted))


def read_csv_files(files: Sequence[Path], wanted: Sequence[str]) -> tuple["Any", list[str], str]:
    """Read CSV files as text into one frame of the ``wanted`` columns (blank cells -> missing).

    Returns the frame, the ignored column names and a description of the source for messages.
    Every file must have the same set of columns (order may differ).
    """
    import pyarrow as pa

    contents = {path: path.read_bytes() for path in files}
    headers = {path: _read_header(data, path) for path, data in contents.items()}
    names = {path: {name.strip() for name in header} for path, header in headers.items()}
    first = files[0]
    mismatched = [
        f"{path.name} has columns {sorted(names[path] ^ names[first])} that {first.name} does not share"
        for path in files if names[path] != names[first]
    ]
    source = str(first) if len(files) == 1 else f"{len(files)} files in {first.parent}"
    if mismatched:
        raise ContractError(source, ["the CSV files' headers differ: " + "; ".join(mismatched)])
    missing = [name for name in wanted if name not in names[first]]
    if missing:
        raise ContractError(source, [f"missing column '{name}' named by the schema" for name in missing])
    ignored = [name.strip() for name in headers[first] if name.strip() not in wanted]
    tables = []
    for path in files:
        tables.append(_read_text_table(path, contents.pop(path), headers[path], wanted))
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if table.num_rows == 0:
        raise ContractError(source, ["the file has a header but no data rows"])
    return table.to_pandas(), ignored, source


def parse_numbers(frame: "Any", columns: Sequence[str], limit: int = 3) -> tuple[dict[str, "Any"], dict[str, tuple[int, list[str]]]]:
    """Numeric columns parsed once: (float64 columns with NaN for missing or bad cells, and per column
    with text that is not a number: how many such cells and a few examples)."""
    import pandas as pd

    parsed, problems = {}, {}
    for column in columns:
        values = frame[column]
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        bad = values.notna() & numbers.isna()
        count = int(bad.sum())
        if count:
            problems[column] = (count, list(dict.fromkeys(values[bad].astype(str).tolist()))[:limit])
        parsed[column] = numbers
    return parsed, problems


def features_from_text(frame: "Any", schema: Schema) -> "Any":
    """Text columns (missing as null) -> the feature frame the preprocessor is fitted on: numbers as
    float64 (missing NaN), categories as plain object text (missing NaN), in the schema's order."""
    import numpy as np
    import pandas as pd

    features = {}
    for column in schema.numeric:
        features[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in schema.categorical:
        values = frame[column]
        features[column] = values.astype(object).where(values.notna(), np.nan)
    return pd.DataFrame(features, index=frame.index)[list(schema.features)]


def prepare_features(records: "Any", schema: Schema) -> "Any":
    """Raw customer records of any cell types (a CSV or JSON request) -> the model's feature frame."""
    import pandas as pd

    missing = [name for name in schema.features if name not in records.columns]
    if missing:
        raise ContractError("records", [f"missing column '{name}'" for name in missing])

    def as_text(value: Any) -> str | None:
        if value is None or (isinstance(value, float) and value != value):
            return None
        return str(value).strip() or None

    text = pd.DataFrame({name: records[name].astype(object).map(as_text) for name in schema.features},
                        index=records.index)
    return features_from_text(text, schema)


def write_matrix_csv(path: Path, labels: "Any", matrix: "Any", feature_names: Sequence[str]) -> None:
    """A split as CSV: the 0/1 label first, then the features (the layout SageMaker's built-in
    algorithms use too). Arrow's writer is deterministic and many times faster than pandas'."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    arrays = [pa.array(np.asarray(labels, dtype="int64"))]
    arrays += [pa.array(np.ascontiguousarray(matrix[:, index], dtype="float64")) for index in range(matrix.shape[1])]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        pacsv.write_csv(pa.table(arrays, names=[TARGET_LABEL, *feature_names]), str(path),
                        pacsv.WriteOptions(quoting_style="needed"))
    except OSError as error:  # Arrow's message names neither the file nor the errno attribute
        raise OSError(error.errno or errno.EIO, f"cannot write the split: {error}", str(path)) from None


def read_matrix_csv(folder: Path) -> tuple["Any", "Any"]:
    """The single split CSV in ``folder`` written by ``write_matrix_csv``: (features, labels)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = find_single_file(folder, "*.csv")
    try:
        table = pacsv.read_csv(str(path))
    except pa.ArrowInvalid as error:
        raise ContractError(str(path), [f"the split cannot be parsed: {error}"]) from None
    if table.num_rows == 0 or table.column_names[0] != TARGET_LABEL or table.num_columns < 2:
        raise ContractError(str(path), [f"expected a '{TARGET_LABEL}' column first and data rows; "
                                        "was it written by preprocessing.py?"])
    try:
        features = np.column_stack([table.column(i).to_numpy().astype("float64") for i in range(1, table.num_columns)])
        labels = table.column(0).to_numpy().astype("int64")
    except (ValueError, TypeError, pa.ArrowInvalid) as error:
        raise ContractError(str(path), [f"the split holds values that are not numbers: {error}"]) from None
    return features, labels


def find_single_file(folder: Path, pattern: str) -> Path:
    matches = sorted(Path(folder).glob(pattern))
    if len(matches) != 1:
        raise UsageError(f"expected exactly one {pattern} in {folder}, found {len(matches)}")
    return matches[0]
