"""Tables in and out: the customer table read robustly in batches, and the splits written and read back.

The customer table arrives as CSV (UTF-8 with or without BOM, CRLF, quoted fields) or as Parquet (what
``extract_customers`` writes), each possibly in several parts. Both become the same batches: text cells
trimmed, blank or white-space cells missing; numeric columns that Parquet stores as numbers arrive as
numbers (never re-parsed from text), while one stored as text is parsed and checked like a CSV column.
The table is read a batch at a time (Arrow's streaming CSV reader, Parquet's row batches), so that
memory holds a batch, not the table, and written a batch at a time the same way. Arrow's readers and
writers are several times faster than pandas' on large files and deterministic, so the same input
gives byte-identical splits.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn_common.container import ContractError, UsageError, find_single_file
from churn_common.schema_rules import HEADER_BYTES, column_name_problems, missing_column_problems, read_header

TARGET_LABEL = "label"  # column name of the 0/1 target in the written splits
CSV_SUFFIX = ".csv"
PARQUET_SUFFIX = ".parquet"


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


CSV_BLOCK_BYTES = 4 << 20  # a CSV block: about 50,000 customers, parsed at once
PARQUET_BATCH_ROWS = 32_768  # a row group may hold a million rows: read it in slices, buffered
PARQUET_BUFFER_BYTES = 1 << 20
QUOTE_SCAN_BYTES = 16 << 20


@dataclass(frozen=True)
class CustomerTable:
    """The customer table's parts, checked as far as their headers (or footers) go, read in batches.

    ``batches()`` can be called again for another pass over the same rows, in the same order. Each
    batch holds the ``wanted`` columns by name: text trimmed with blank cells null; a numeric column
    float64 where Parquet stores numbers, else text for the contract check to parse.
    """

    files: tuple[Path, ...]
    wanted: tuple[str, ...]
    ignored: tuple[str, ...]
    source: str
    raw_names: tuple[dict[str, str], ...]  # per file: trimmed name -> the name as written
    as_numbers: frozenset[str] = frozenset()  # Parquet columns read as float64

    def batches(self) -> Iterator[Any]:
        rows = 0
        reader = _parquet_batches if self.files[0].suffix.lower() == PARQUET_SUFFIX else _csv_batches
        for path, raw_names in zip(self.files, self.raw_names, strict=True):
            for batch in reader(self, path, raw_names):
                rows += batch.num_rows
                yield batch
        if rows == 0:
            empty = "the Parquet file(s) hold no rows" if reader is _parquet_batches else \
                "the file has a header but no data rows"
            raise ContractError(self.source, [empty])


def open_customer_files(files: Sequence[Path], wanted: Sequence[str], numeric: Sequence[str]) -> CustomerTable:
    """The customer table from CSV or Parquet parts, after every check that needs no rows: each
    part's header (or footer), the parts agreeing on their columns, the columns the schema names,
    and for Parquet the columns' types."""
    if files[0].suffix.lower() == PARQUET_SUFFIX:
        return _open_parquet_files(files, wanted, numeric)
    return _open_csv_files(files, wanted)


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


def _read_csv_header(path: Path) -> list[str]:
    """The raw header names, after checking the file is non-empty UTF-8 text with a sound header."""
    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES)
    header, problems = read_header(head)
    if problems:
        raise ContractError(str(path), problems)
    return header


def _check_quotes(path: Path) -> None:
    """Arrow's reader accepts an unterminated quote at the end of a file silently, so quotes are
    counted first (escaped quotes come in pairs): a pass over the bytes, a block at a time."""
    quotes = 0
    with path.open("rb") as handle:
        while block := handle.read(QUOTE_SCAN_BYTES):
            quotes += block.count(b'"')
    if quotes % 2:
        raise ContractError(str(path), ["the CSV cannot be parsed: a quoted field is never closed (odd number of "
                                        "'\"' characters)"])


def _open_csv_files(files: Sequence[Path], wanted: Sequence[str]) -> CustomerTable:
    headers = {path: _read_csv_header(path) for path in files}
    names = {path: {name.strip() for name in header} for path, header in headers.items()}
    first, source = files[0], _source(files)
    _columns_agree(files, names, "CSV")
    missing = missing_column_problems(wanted, headers[first])
    if missing:
        raise ContractError(source, missing)
    for path in files:
        _check_quotes(path)
    ignored = tuple(name.strip() for name in headers[first] if name.strip() not in wanted)
    raw_names = tuple({name.strip(): name for name in headers[path]} for path in files)
    return CustomerTable(tuple(files), tuple(wanted), ignored, source, raw_names)


def _csv_error(path: Path, error: Exception) -> ContractError:
    message = str(error).replace("CSV parse error: ", "")
    if "UTF8" in message:
        return ContractError(str(path), [f"the file is not UTF-8 text ({message})"])
    return ContractError(str(path), [f"the CSV cannot be parsed: {message}"])


def _row_end(data: bytes) -> int:
    """Where the last complete row of ``data`` ends (its newline), or -1: a newline outside quotes,
    which is one with an even number of quotes before it, since ``data`` begins at a row's start and
    escaped quotes come in pairs."""
    position = data.rfind(b"\n")
    if b'"' not in data:
        return position
    while position >= 0 and data.count(b'"', 0, position) % 2:
        position = data.rfind(b"\n", 0, position)
    return position


def _csv_blocks(path: Path) -> Iterator[bytes]:
    """A CSV's data rows in blocks of about CSV_BLOCK_BYTES, each ending where a row ends."""
    with path.open("rb") as handle:
        handle.readline()  # the header (which ``read_header`` takes to be the first line), read apart
        carry = b""
        while block := handle.read(CSV_BLOCK_BYTES):
            data = carry + block
            end = _row_end(data)
            if end < 0:
                carry = data
                continue
            yield data[:end + 1]
            carry = data[end + 1:]
        if carry.strip():
            yield carry


def _csv_batches(table: CustomerTable, path: Path, raw_names: dict[str, str]) -> Iterator[Any]:
    """One CSV's rows in batches, every cell read as text. Each block is handed whole to Arrow's
    reader, which parses it on all cores; memory holds a block, not the file (Arrow's streaming
    reader reads ahead on many threads and held several times as much for no gain in speed)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = list(raw_names.values())
    columns = [raw_names[name] for name in table.wanted]
    read_options = pacsv.ReadOptions(column_names=header, use_threads=True)
    parse_options = pacsv.ParseOptions(newlines_in_values=True)
    convert_options = pacsv.ConvertOptions(column_types={name: pa.string() for name in header}, include_columns=columns,
                                           strings_can_be_null=False, quoted_strings_can_be_null=False)
    for block in _csv_blocks(path):
        try:
            parsed = pacsv.read_csv(pa.py_buffer(block), read_options=read_options, parse_options=parse_options,
                                    convert_options=convert_options)
        except pa.ArrowInvalid as error:
            raise _csv_error(path, error) from None
        for batch in parsed.to_batches():
            yield pa.RecordBatch.from_arrays([_trimmed_text(batch.column(name)) for name in columns],
                                             names=list(table.wanted))


def _is_number_type(data_type: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type)
                or pa.types.is_boolean(data_type) or pa.types.is_null(data_type))


def _is_plain_type(data_type: Any) -> bool:
    """A type whose values read as one cell of text: not a list, map, struct or raw bytes."""
    import pyarrow as pa

    return not (pa.types.is_nested(data_type) or pa.types.is_binary(data_type)
                or pa.types.is_large_binary(data_type) or pa.types.is_fixed_size_binary(data_type))


def _value_type(data_type: Any) -> Any:
    """A dictionary-encoded column's value type (the parts may encode differently)."""
    import pyarrow as pa

    return data_type.value_type if pa.types.is_dictionary(data_type) else data_type


def _open_parquet(path: Path) -> tuple[Any, list[str]]:
    """The Parquet file's schema (from the footer), its names checked like a CSV header."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as error:
        raise ContractError(str(path), [f"the file is not a readable Parquet file ({error})"]) from None
    problems = column_name_problems(schema.names)
    if problems:
        raise ContractError(str(path), problems)
    return schema, list(schema.names)


def _open_parquet_files(files: Sequence[Path], wanted: Sequence[str], numeric: Sequence[str]) -> CustomerTable:
    """Parquet parts: columns of ``numeric`` stored as numbers (integers, floats, decimals, booleans)
    in every part are read as float64 (never parsed from text); stored as text in any part they are
    read as text, trimmed, for the contract check to parse. Every other column becomes trimmed text
    with blank cells missing, as a CSV cell would be read."""
    opened = {path: _open_parquet(path) for path in files}
    names = {path: {name.strip() for name in columns} for path, (_, columns) in opened.items()}
    source = _source(files)
    _columns_agree(files, names, "Parquet")
    header = opened[files[0]][1]
    missing = missing_column_problems(wanted, header)
    if missing:
        raise ContractError(source, missing)
    ignored = tuple(name.strip() for name in header if name.strip() not in wanted)
    raw_names = tuple({name.strip(): name for name in opened[path][1]} for path in files)

    problems, as_numbers = [], set()
    for name in wanted:
        types = [_value_type(schema.field(raw[name]).type) for (schema, _), raw in zip(opened.values(), raw_names,
                                                                                       strict=True)]
        unusable = sorted({str(data_type) for data_type in types if not _is_plain_type(data_type)})
        if unusable:
            problems.append(f"column '{name}' holds {', '.join(unusable)} values, not numbers or text")
        elif name in numeric and all(_is_number_type(data_type) for data_type in types):
            as_numbers.add(name)
    if problems:
        raise ContractError(source, problems)
    return CustomerTable(tuple(files), tuple(wanted), ignored, source, raw_names, frozenset(as_numbers))


def _parquet_batches(table: CustomerTable, path: Path, raw_names: dict[str, str]) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [raw_names[name] for name in table.wanted]
    try:
        # buffered reads of the column chunks, not the whole row group at once: the same speed, less memory
        parquet = pq.ParquetFile(path, buffer_size=PARQUET_BUFFER_BYTES, pre_buffer=False)
        batches = parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns,
                                                    use_threads=True, use_pandas_metadata=False)
        for batch in batches:
            arrays = []
            for name, raw in zip(table.wanted, columns, strict=True):
                column = batch.column(raw)
                if pa.types.is_dictionary(column.type):
                    column = column.cast(column.type.value_type)
                if name in table.as_numbers:
                    arrays.append(column.cast(pa.float64()))
                    continue
                try:
                    arrays.append(_trimmed_text(column.cast(pa.string())))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                    raise ContractError(table.source, [f"column '{name}' cannot be read as text: {error}"]) from None
            yield pa.RecordBatch.from_arrays(arrays, names=list(table.wanted))
    except (pa.ArrowException, OSError) as error:
        raise ContractError(str(path), [f"the Parquet file cannot be read: {error}"]) from None


class SplitWriter:
    """A split as CSV, written a batch at a time: the 0/1 label first, then the features, with a
    header (the layout SageMaker's built-in algorithms use too). Arrow's writer is deterministic, so
    the same input gives byte-identical splits.

    The scaled numbers are float32; the one-hot indicators are written from bytes, which gives the
    same text as float32 zeros and ones ("0", "1") at a fraction of the cost: Arrow formats a float32
    about twice as slowly as a float64, and an integer far faster than either.
    """

    def __init__(self, path: Path, number_names: Sequence[str], indicator_names: Sequence[str] = ()):
        import pyarrow as pa
        import pyarrow.csv as pacsv

        self.path = path
        self.schema = pa.schema([(TARGET_LABEL, pa.int64()), *((name, pa.float32()) for name in number_names),
                                 *((name, pa.uint8()) for name in indicator_names)])
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = pacsv.CSVWriter(str(path), self.schema, write_options=pacsv.WriteOptions(
                quoting_style="needed"))
        except OSError as error:
            raise _write_error(error, "split", path) from None

    def write(self, labels: Any, numbers: Any, indicators: Any = ()) -> None:
        """Rows of the split: int labels, their float32 numbers and 0/1 indicators, one array per feature."""
        import numpy as np
        import pyarrow as pa

        if len(labels) == 0:
            return
        arrays = [pa.array(np.asarray(labels, dtype=np.int64))]
        arrays += [pa.array(np.ascontiguousarray(column, dtype=np.float32)) for column in numbers]
        arrays += [pa.array(np.ascontiguousarray(column, dtype=np.uint8)) for column in indicators]
        try:
            self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        except OSError as error:
            raise _write_error(error, "split", self.path) from None

    def close(self) -> None:
        try:
            self._writer.close()
        except OSError as error:
            raise _write_error(error, "split", self.path) from None


class RecordsWriter:
    """Raw records as Parquet, a batch at a time: column types kept, deterministic for the same input."""

    def __init__(self, path: Path, schema: Any):
        import pyarrow.parquet as pq

        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = pq.ParquetWriter(str(path), schema)
        except OSError as error:
            raise _write_error(error, "records", path) from None

    def write(self, batch: Any) -> None:
        if batch.num_rows == 0:
            return
        try:
            self._writer.write_batch(batch)
        except OSError as error:
            raise _write_error(error, "records", self.path) from None

    def close(self) -> None:
        try:
            self._writer.close()
        except OSError as error:
            raise _write_error(error, "records", self.path) from None


def release_arrow_memory() -> None:
    """Hand the memory Arrow's allocator keeps for reuse back to the system, once what held it is gone."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _write_error(error: OSError, what: str, path: Path) -> OSError:
    # Arrow's message names neither the file nor the errno attribute
    return OSError(error.errno or errno.EIO, f"cannot write the {what}: {error}", str(path))


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
