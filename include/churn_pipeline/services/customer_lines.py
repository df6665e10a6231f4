"""The scoring run's customers as JSON lines, in bounded memory: what the transform job reads.

The customer table (CSV or Parquet parts, already copied to local files) is read in batches, never
whole: each needed cell becomes a JSON value, each customer one line. Duplicate rows and repeated ids
are dropped, the first one kept, by 64-bit hashes of the line and of the id held in numpy arrays
(16 bytes a customer, against a whole table in pandas before). The lines pass through a local file,
never a list.

The JSON values are the ones the whole table read with pandas gave (so nothing changes for the
model's ``input_fn`` or for a rerun): CSV cells are text, trimmed, blank as null; Parquet cells are
as stored, except that an integer column holding a null anywhere in its file, or stored as floating
point in another file, is floating point throughout, as pandas' concatenated frame made it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BATCH_ROWS = 65_536
PARQUET_SUFFIX = ".parquet"


class CustomerTableError(ValueError):
    """The customer table cannot give what the champion needs (the message names what is wrong)."""


@dataclass(frozen=True)
class StagedLines:
    path: Path  # the kept customers' JSON lines
    customers: int
    dropped: int  # duplicate rows and repeated ids


def _csv_columns(path: Path) -> list[str]:
    import pandas as pd

    header = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", nrows=0)
    return [str(name).strip() for name in header.columns]


def _parquet_file(path: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path)


def table_columns(paths: Sequence[Path]) -> list[str]:
    """Every column of the table, in the order the parts give them (a part may lack some)."""
    seen: dict[str, None] = {}
    for path in paths:
        names = (_parquet_file(path).schema_arrow.names if path.suffix.lower() == PARQUET_SUFFIX
                 else _csv_columns(path))
        seen.update(dict.fromkeys(map(str, names)))
    return list(seen)


def _has_nulls(parquet: Any, column: str) -> bool:
    """Whether a Parquet column holds a null: from the row groups' statistics where written, else read."""
    index = parquet.schema_arrow.names.index(column)
    metadata = parquet.metadata
    counts = [metadata.row_group(group).column(index).statistics for group in range(metadata.num_row_groups)]
    if all(statistics is not None and statistics.has_null_count for statistics in counts):
        return any(statistics.null_count for statistics in counts)
    return any(batch.column(0).null_count for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=[column]))


def _floating_columns(paths: Sequence[Path], needed: Sequence[str]) -> set[str]:
    """The numeric columns whose values are floating point in every part (see the module)."""
    import pyarrow.types as pat

    kinds: dict[str, set[str]] = {name: set() for name in needed}
    for path in paths:
        if path.suffix.lower() != PARQUET_SUFFIX:
            for name in needed:
                kinds[name].add("text")
            continue
        parquet = _parquet_file(path)
        for name in needed:
            if name not in parquet.schema_arrow.names:  # pandas filled the part's rows with NaN: floats
                kinds[name].add("missing")
                continue
            data_type = parquet.schema_arrow.field(name).type
            if pat.is_floating(data_type) or (pat.is_integer(data_type) and _has_nulls(parquet, name)):
                kinds[name].add("float")
            elif pat.is_integer(data_type):
                kinds[name].add("integer")
            else:
                kinds[name].add("other")
    return {name for name, found in kinds.items() if found <= {"float", "integer", "missing"}
            and ("float" in found or {"integer", "missing"} <= found)}


def _cell(value: Any, floating: bool) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if floating and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _csv_rows(path: Path, needed: Sequence[str]) -> Iterator[list[list[Any]]]:
    import pandas as pd

    with pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", chunksize=BATCH_ROWS) as chunks:
        for chunk in chunks:
            chunk.columns = [str(name).strip() for name in chunk.columns]
            columns: list[list[Any]] = []
            for name in needed:
                if name not in chunk.columns:
                    columns.append([None] * len(chunk))
                    continue
                trimmed = (str(cell).strip() for cell in chunk[name].tolist())
                columns.append([cell or None for cell in trimmed])
            yield [list(row) for row in zip(*columns, strict=True)] if columns else []


def _parquet_rows(path: Path, needed: Sequence[str], floating: set[str]) -> Iterator[list[list[Any]]]:
    parquet = _parquet_file(path)
    present = [name for name in needed if name in parquet.schema_arrow.names]
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=present):
        columns: list[list[Any]] = []
        for name in needed:
            if name not in present:
                columns.append([None] * batch.num_rows)
                continue
            values = batch.column(present.index(name)).to_pylist()
            columns.append([_cell(value, name in floating) for value in values])
        yield [list(row) for row in zip(*columns, strict=True)]


def customer_rows(paths: Sequence[Path], needed: Sequence[str]) -> Iterator[list[Any]]:
    """Every customer's needed cells, part after part, batch after batch."""
    floating = _floating_columns(paths, needed)
    for path in paths:
        batches = (_parquet_rows(path, needed, floating) if path.suffix.lower() == PARQUET_SUFFIX
                   else _csv_rows(path, needed))
        for batch in batches:
            yield from batch


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _first_occurrences(hashes: Any) -> Any:
    """A mask of the entries whose hash has not appeared before them."""
    import numpy as np

    keep = np.zeros(len(hashes), dtype=bool)
    if len(hashes):
        _, first = np.unique(hashes, return_index=True)
        keep[first] = True
    return keep


def stage_lines(paths: Sequence[Path], needed: Sequence[str], id_column: str | None, scratch: Path) -> StagedLines:
    """Write one JSON line per kept customer to a file under ``scratch``; count what was dropped."""
    import numpy as np

    every_line, kept_lines = scratch / "every-customer.jsonl", scratch / "customers.jsonl"
    id_index = list(needed).index(id_column) if id_column else None
    line_hashes: list[Any] = []
    id_hashes: list[Any] = []
    with every_line.open("w", encoding="utf-8") as out:
        batch_lines: list[int] = []
        batch_ids: list[int] = []
        for row in customer_rows(paths, needed):
            line = json.dumps(dict(zip(needed, row, strict=True)))
            out.write(line + "\n")
            batch_lines.append(_hash64(line))
            # 0 stands for "no id": a missing id never makes a customer a repeat of another
            batch_ids.append(0 if id_index is None or row[id_index] is None else _hash64(json.dumps(row[id_index])) | 1)
            if len(batch_lines) == BATCH_ROWS:
                line_hashes.append(np.array(batch_lines, dtype=np.uint64))
                id_hashes.append(np.array(batch_ids, dtype=np.uint64))
                batch_lines, batch_ids = [], []
        line_hashes.append(np.array(batch_lines, dtype=np.uint64))
        id_hashes.append(np.array(batch_ids, dtype=np.uint64))
    rows, ids = np.concatenate(line_hashes), np.concatenate(id_hashes)
    del line_hashes, id_hashes
    keep = _first_occurrences(rows)  # duplicate rows first, then repeated ids among the rest, as before
    with_id = keep & (ids != 0)
    repeated = np.zeros(len(ids), dtype=bool)
    repeated[np.flatnonzero(with_id)] = ~_first_occurrences(ids[with_id])
    keep &= ~repeated
    with every_line.open(encoding="utf-8") as lines, kept_lines.open("w", encoding="utf-8") as out:
        for kept, line in zip(keep, lines, strict=True):
            if kept:
                out.write(line)
    every_line.unlink()
    customers = int(keep.sum())
    return StagedLines(kept_lines, customers, len(keep) - customers)
