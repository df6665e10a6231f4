"""Tables in and out: the customer table read robustly, and the splits written and read back.

The customer table arrives as CSV (UTF-8 with or without BOM, CRLF, quoted fields) or as Parquet (what
``extract_customers`` writes), each possibly in several parts. Both become the same frame: text cells
trimmed, blank or white-space cells missing; numeric columns that Parquet stores as numbers arrive as
numbers (never re-parsed from text), while one stored as text is parsed and checked like a CSV column.
Reading and writing go through Arrow: several times faster than pandas on large files, and
deterministic, so the same input gives byte-identical splits.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from churn_common.container import ContractError, UsageError, find_single_file
from churn_common.schema_rules import HEADER_BYTES, column_name_problems, missing_column_problems, read_header

TARGET_LABEL = "label"  # column name of the 0/1 target in the written splits
CSV_SUFFIX = ".csv"
PARQUET_SUFFIX = ".parquet"


def _read_header(data: bytes, path: Path) -> list[str]:
    """The raw header names, after checking the file is non-empty UTF-8 text with a sound header."""
    header, problems = read_header(data[:HEADER_BYTES])
    if problems:
        raise ContractError(str(path), problems)
    return header


def list_input_files(input_dir: Path) -> list[Path]:
    """Every ``.csv`` or every ``.parquet`` file below ``input_dir``: the parts of one table, in one format."""
    if not input_dir.is_dir():
        raise UsageError(f"input folder not found: {input_dir}")
    files = sorted(path for path in input_dir.rglob("*")
                   if path.is_file() and path.suffix.lower() in (CSV_SUFFIX, PARQUET_SUFFIX))
    if not files:
        raise ContractError(str(input_dir), [f"no {CSV_SUFFIX} or {PARQUET_SUFFIX} file in the input folder"])
    if len({path.suffix.lower() for path in files}) > 1:
        raise ContractError(str(input_dir), [f"the input folder holds both {CSV_SUFFIX} and {PARQUET_SUFFIX} files; "
                                             "give the table in one format"])
    return files


def read_customer_files(files: Sequence[Path], wanted: Sequence[str],
                        numeric: Sequence[str]) -> tuple[Any, list[str], str]:
    """The customer table from CSV or Parquet parts (see ``read_csv_files`` / ``read_parquet_files``)."""
    if files[0].suffix.lower() == PARQUET_SUFFIX:
        return read_parquet_files(files, wanted, numeric)
    return read_csv_files(files, wanted)


def _source(files: Sequence[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"{len(files)} files in {files[0].parent}"


def _columns_agree(files: Sequence[Path], names: dict[Path, set[str]], kind: str) -> None:
    first = files[0]
    mismatched = [
        f"{path.name} has columns {sorted(names[path] ^ names[first])} that {first.name} does not share"
        for path in files if names[path] != names[first]
    ]
    if mismatched:
        raise ContractError(_source(files), [f"the {kind} files' headers differ: " + "; ".join(mismatched)])


def _trimmed_text(column: Any) -> Any:
    """Text cells trimmed, with blank or white-space cells as missing (null)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(column)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _read_text_table(path: Path, data: bytes, header: list[str], wanted: Sequence[str]) -> Any:
    """One CSV as an Arrow table of the wanted columns, all text, trimmed, blank cells as null.

    Arrow's reader is several times faster than pandas' on large files; it accepts an unterminated
    quote at the end of the file silently, so quotes are counted first (escaped quotes come in pairs).
    """
    import pyarrow as pa
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
    return pa.table([_trimmed_text(table.column(raw_names[name])) for name in wanted], names=list(wanted))


def read_csv_files(files: Sequence[Path], wanted: Sequence[str]) -> tuple[Any, list[str], str]:
    """Read CSV files as text into one frame of the ``wanted`` columns (blank cells -> missing).

    Returns the frame, the ignored column names and a description of the source for messages.
    Every file must have the same set of columns (order may differ).
    """
    import pyarrow as pa

    contents = {path: path.read_bytes() for path in files}
    headers = {path: _read_header(data, path) for path, data in contents.items()}
    names = {path: {name.strip() for name in header} for path, header in headers.items()}
    first, source = files[0], _source(files)
    _columns_agree(files, names, "CSV")
    missing = missing_column_problems(wanted, headers[first])
    if missing:
        raise ContractError(source, missing)
    ignored = [name.strip() for name in headers[first] if name.strip() not in wanted]
    tables = []
    for path in files:
        tables.append(_read_text_table(path, contents.pop(path), headers[path], wanted))
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if table.num_rows == 0:
        raise ContractError(source, ["the file has a header but no data rows"])
    return table.to_pandas(), ignored, source


def _is_number_type(data_type: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type)
                or pa.types.is_boolean(data_type) or pa.types.is_null(data_type))


def _is_plain_type(data_type: Any) -> bool:
    """A type whose values read as one cell of text: not a list, map, struct or raw bytes."""
    import pyarrow as pa

    return not (pa.types.is_nested(data_type) or pa.types.is_binary(data_type)
                or pa.types.is_large_binary(data_type) or pa.types.is_fixed_size_binary(data_type))


def _open_parquet(path: Path) -> tuple[Any, list[str]]:
    """The Parquet file and its column names (from the footer), checked like a CSV header."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        names = list(parquet.schema_arrow.names)
    except (pa.ArrowException, OSError) as error:
        raise ContractError(str(path), [f"the file is not a readable Parquet file ({error})"]) from None
    problems = column_name_problems(names)
    if problems:
        raise ContractError(str(path), problems)
    return parquet, names


def read_parquet_files(files: Sequence[Path], wanted: Sequence[str],
                       numeric: Sequence[str]) -> tuple[Any, list[str], str]:
    """Read Parquet parts into one frame of the ``wanted`` columns, like ``read_csv_files`` reads CSV.

    Columns of ``numeric`` stored as numbers (integers, floats, decimals, booleans) become float64 at
    once; stored as text (in any part) they stay text, trimmed, for the contract check to parse. Every
    other column becomes trimmed text with blank cells missing, as a CSV cell would be read.
    """
    import pyarrow as pa

    opened = {path: _open_parquet(path) for path in files}
    names = {path: {name.strip() for name in columns} for path, (_, columns) in opened.items()}
    source = _source(files)
    _columns_agree(files, names, "Parquet")
    header = opened[files[0]][1]
    missing = missing_column_problems(wanted, header)
    if missing:
        raise ContractError(source, missing)
    ignored = [name.strip() for name in header if name.strip() not in wanted]

    parts = []
    for path, (parquet, columns) in opened.items():
        raw_names = {name.strip(): name for name in columns}
        try:
            table = parquet.read(columns=[raw_names[name] for name in wanted], use_pandas_metadata=False)
        except (pa.ArrowException, OSError) as error:
            raise ContractError(str(path), [f"the Parquet file cannot be read: {error}"]) from None
        parts.append({name: _decoded(table.column(raw_names[name])) for name in wanted})

    problems, columns = [], []
    for name in wanted:
        types = [part[name].type for part in parts]
        unusable = sorted({str(data_type) for data_type in types if not _is_plain_type(data_type)})
        if unusable:
            problems.append(f"column '{name}' holds {', '.join(unusable)} values, not numbers or text")
            continue
        if name in numeric and all(_is_number_type(data_type) for data_type in types):
            columns.append(_joined([part[name] for part in parts], pa.float64()))
            continue
        try:
            text = _joined([part[name] for part in parts], pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            problems.append(f"column '{name}' cannot be read as text: {error}")
            continue
        columns.append(_trimmed_text(text))
    if problems:
        raise ContractError(source, problems)
    table = pa.table(columns, names=list(wanted))
    if table.num_rows == 0:
        raise ContractError(source, ["the Parquet file(s) hold no rows"])
    return table.to_pandas(), ignored, source


def _joined(columns: Sequence[Any], data_type: Any) -> Any:
    """The parts' columns as one column of ``data_type``, chunk by chunk (nothing passes through Python)."""
    import pyarrow as pa

    return pa.chunked_array([chunk for column in columns for chunk in column.cast(data_type).chunks], data_type)


def _decoded(column: Any) -> Any:
    """A dictionary-encoded column as its plain values (the parts may encode differently)."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def parse_numbers(frame: Any, columns: Sequence[str],
                  limit: int = 3) -> tuple[dict[str, Any], dict[str, tuple[int, list[str]]]]:
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


def write_matrix_csv(path: Path, labels: Any, matrix: Any, feature_names: Sequence[str]) -> None:
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


def read_matrix_csv(folder: Path) -> tuple[Any, Any]:
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


def write_records(path: Path, records: Any) -> None:
    """Raw records (a DataFrame) as Parquet: column types kept, deterministic for the same input."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        pq.write_table(pa.Table.from_pandas(records, preserve_index=False), str(path))
    except OSError as error:  # Arrow's message names neither the file nor the errno attribute
        raise OSError(error.errno or errno.EIO, f"cannot write the records: {error}", str(path)) from None


def read_records(folder: Path) -> Any:
    """The single Parquet file of raw records in ``folder`` written by ``write_records``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = find_single_file(folder, "*.parquet")
    try:
        frame = pq.read_table(str(path)).to_pandas()
    except (pa.ArrowInvalid, OSError) as error:
        raise ContractError(str(path), [f"the records cannot be read: {error}"]) from None
    if TARGET_LABEL not in frame.columns or frame.empty:
        raise ContractError(str(path), [f"expected a '{TARGET_LABEL}' column and rows; was it written by "
                                        "preprocessing.py?"])
    return frame
