"""Parquet inputs judged from their footers, before any job: how many rows they hold, which columns
they have, and whether those are the columns the data contract names.

A Parquet file ends with its metadata (the footer), its length and ``PAR1``; one ranged read of the
object's end (two for a footer past 64 KB) gives rows and columns without the data. pyarrow is
imported when a footer is read, never at DAG parse time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from churn_pipeline.domain.text import shown
from churn_pipeline.services.objectstore import ObjectStore

PARQUET_MAGIC = b"PAR1"
PARQUET_SUFFIX = ".parquet"
FOOTER_GUESS_BYTES = 64 * 1024
_TRAILER_BYTES = 8  # the footer's length (4 bytes, little-endian) and PAR1


class NotParquetError(ValueError):
    """An object that is not a readable Parquet file."""


@dataclass(frozen=True)
class ParquetFooter:
    uri: str
    rows: int
    columns: tuple[str, ...]


def read_footer(store: ObjectStore, uri: str) -> ParquetFooter:
    """Rows and column names of the Parquet object at ``uri``, from its footer alone."""
    tail = store.read_tail(uri, FOOTER_GUESS_BYTES)
    if len(tail) < len(PARQUET_MAGIC) + _TRAILER_BYTES or tail[-4:] != PARQUET_MAGIC:
        # its bytes are not quoted: an object that is not a table may be anything (a key, a password file)
        raise NotParquetError(f"{shown(uri)} is not a Parquet file ({len(tail)} byte(s) read from its end, not ending "
                              "in PAR1)")
    footer_length = int.from_bytes(tail[-8:-4], "little")
    if footer_length + _TRAILER_BYTES > len(tail):
        tail = store.read_tail(uri, footer_length + _TRAILER_BYTES)
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:  # the footer, framed as a file of its own: all read_metadata looks at
        metadata = pq.read_metadata(pa.BufferReader(PARQUET_MAGIC + tail[-(footer_length + _TRAILER_BYTES):]))
        columns = tuple(metadata.schema.to_arrow_schema().names)
    except (pa.ArrowException, OSError) as error:
        raise NotParquetError(f"{uri}: the Parquet footer cannot be read ({error})") from None
    return ParquetFooter(uri=uri, rows=metadata.num_rows, columns=columns)


def schema_columns(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """The columns a data contract (the schema JSON) names: id, target, numeric and categorical."""
    target = schema.get("target") or {}
    named = [schema.get("id_column"), target.get("column"), *schema.get("numeric", []), *schema.get("categorical", [])]
    return tuple(str(name) for name in named if name)


def missing_columns(footers: Sequence[ParquetFooter], schema: Mapping[str, Any]) -> list[str]:
    """One line per Parquet object that lacks columns the schema names (names compared trimmed, as
    preprocessing compares them)."""
    wanted = schema_columns(schema)
    problems = []
    for footer in footers:
        present = {name.strip() for name in footer.columns}
        absent = [name for name in wanted if name not in present]
        if absent:
            present_names = ", ".join(shown(name) for name in footer.columns) or "no columns"
            problems.append(f"{shown(footer.uri)} lacks the column(s) {', '.join(repr(name) for name in absent)} that "
                            f"the schema names (it has {present_names})")
    return problems
