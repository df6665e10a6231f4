"""The data contract's rules that need no data: is a schema well formed, does a CSV header hold what
it names. Pure standard library, with no import from this package, so that the DAG side applies the
very same rules before any job starts by loading this one file (``churn_pipeline.domain.contract_rules``)
and the scripts apply them again inside the job (``data_contract``, ``tables``).
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SCHEMA_KEYS = ("id_column", "target", "numeric", "categorical", "value_column", "description")
HEADER_BYTES = 64 * 1024  # the header must lie within a file's first 64 KiB; checks read no more
MIN_ROWS = 50  # the fewest usable rows preprocessing trains on (its --min-rows default)


def schema_problems(raw: Any) -> list[str]:
    """Every way ``raw`` (a parsed schema file) fails to be a data contract; empty when it is one."""
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
    value_column = raw.get("value_column")
    if value_column is not None and value_column not in (raw.get("numeric") or []):
        problems.append(f"'value_column' must name one of the numeric columns (what a customer is worth per "
                        f"period), got {value_column!r}")
    if not problems:
        names = [raw["target"]["column"], *raw.get("numeric", []), *raw.get("categorical", [])]
        if id_column:
            names.append(id_column)
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            problems.append(f"columns named more than once: {', '.join(repeated)}")
    unknown = sorted(set(raw) - set(SCHEMA_KEYS))
    if unknown:
        problems.append(f"unknown keys: {', '.join(unknown)}")
    return problems


def required_columns(raw: Mapping[str, Any]) -> list[str]:
    """The columns a well-formed schema needs in the file: id (if any), target, then the features."""
    id_part = [raw["id_column"]] if raw.get("id_column") else []
    return [*id_part, raw["target"]["column"], *raw.get("numeric", []), *raw.get("categorical", [])]


def read_header(head: bytes) -> tuple[list[str], list[str]]:
    """The raw header names in the first bytes of a CSV file, and every problem with them.

    The file must be non-empty UTF-8 text (a BOM is allowed) whose first line is a CSV header with
    unique, non-empty names (compared after trimming white space).
    """
    head = head[:HEADER_BYTES]
    if not head.strip():
        return [], ["the file is empty"]
    if b"\x00" in head:
        return [], ["the file is not text (it contains NUL bytes)"]
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        header = next(csv.reader([first_line.decode("utf-8-sig")]))
    except UnicodeDecodeError as error:
        return [], [f"the file is not UTF-8 text ({error.reason} at byte {error.start})"]
    except (csv.Error, StopIteration) as error:
        return [], [f"the header row cannot be parsed: {error}"]
    return header, column_name_problems(header)


def rows_in_whole_file(head: bytes) -> int | None:
    """The data rows (not blank) under the header of a CSV whose whole content is ``head``; None when
    ``head`` may be only the start of the file (it fills ``HEADER_BYTES``): then no count is made, and a
    file of more than 64 KiB is not refused for its rows before the job."""
    if len(head) >= HEADER_BYTES:
        return None
    text = head.decode("utf-8-sig", errors="replace")
    try:
        rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    except csv.Error:
        return None  # the job's own reader says what is wrong
    return max(len(rows) - 1, 0)


def column_name_problems(names: Sequence[str]) -> list[str]:
    """What makes a table's column names unusable (compared after trimming): repeated or empty names."""
    trimmed = [name.strip() for name in names]
    problems = []
    repeated = sorted({name for name in trimmed if trimmed.count(name) > 1})
    if repeated:
        problems.append(f"duplicate column names in the header: {', '.join(repeated)}")
    if any(name == "" for name in trimmed):
        problems.append("the header has an empty column name")
    return problems


def near_matches(name: str, candidates: Iterable[str]) -> list[str]:
    """Columns the user may have meant by ``name``: same letters in another case first, then close spellings."""
    pool = list(dict.fromkeys(candidates))
    same_letters = [candidate for candidate in pool if candidate.casefold() == name.casefold()]
    close = difflib.get_close_matches(name, pool, n=3, cutoff=0.75)
    return list(dict.fromkeys(same_letters + close))[:3]


def missing_column_problems(required: Sequence[str], header: Sequence[str]) -> list[str]:
    """One line per required column the header lacks, naming what the header has that comes close."""
    present = [name.strip() for name in header]
    problems = []
    for name in required:
        if name in present:
            continue
        suggestions = near_matches(name, present)
        hint = f" (the file has {', '.join(repr(s) for s in suggestions)})" if suggestions else ""
        problems.append(f"missing column '{name}' named by the schema{hint}")
    return problems
