"""The data contract: a JSON schema file names the id column, the target and its two values, and
the numeric and categorical feature columns, and optionally ``value_column``, the numeric column
that says what a customer is worth per period (scores weigh their risk by it). No code names a data
column; only schema files do.

It also turns raw customer records (text cells from a CSV, or any cells from a JSON request) into
the feature frame the preprocessor was fitted on, the same way at training and at serving time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn_common.container import ContractError, UsageError
from churn_common.schema_rules import schema_problems

# The default contract lives in include/config/; inside a container the schema always arrives as an input.
DEFAULT_SCHEMA_FILE = Path(__file__).resolve().parent.parent.parent / "config" / "schema.json"


@dataclass(frozen=True)
class Schema:
    """The data contract: which columns are features, which is the target, which is the id."""

    id_column: str | None
    target_column: str
    positive: str
    negative: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    value_column: str | None = None

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
            **({"value_column": self.value_column} if self.value_column else {}),
        }


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
    problems = schema_problems(raw)
    if problems:
        raise ContractError(f"schema {schema_path}", problems)
    return Schema(
        id_column=raw.get("id_column"),
        target_column=raw["target"]["column"],
        positive=str(raw["target"]["positive"]).strip(),
        negative=str(raw["target"]["negative"]).strip(),
        numeric=tuple(raw.get("numeric", [])),
        categorical=tuple(raw.get("categorical", [])),
        value_column=raw.get("value_column"),
    )


def features_from_text(frame: Any, schema: Schema) -> Any:
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


def prepare_features(records: Any, schema: Schema) -> Any:
    """Raw customer records of any cell types (a CSV or JSON request) -> the model's feature frame.

    Every cell is read as its trimmed text would be (blank or missing -> missing), so a record scores
    the same whether its numbers arrive as numbers or as text. Columns of one plain kind, what a typed
    table (the held-out customers' Parquet) or a CSV holds, are converted a column at a time with the
    same result; a column of mixed cells (JSON's numbers beside strings) goes cell by cell.
    """
    import numpy as np
    import pandas as pd

    missing = [name for name in schema.features if name not in records.columns]
    if missing:
        raise ContractError("records", [f"missing column '{name}'" for name in missing])
    features = {}
    for column in schema.numeric:
        values = records[column]
        if _is_plain_number(values):  # the text of a number parses back to the same float64
            features[column] = values.astype("float64")
        else:
            features[column] = pd.to_numeric(_cells_as_text(values), errors="coerce").astype("float64")
    for column in schema.categorical:
        text = _cells_as_text(records[column]).astype(object)
        features[column] = text.where(text.notna(), np.nan)
    return pd.DataFrame(features, index=records.index)[list(schema.features)]


def _is_plain_number(values: Any) -> bool:
    from pandas.api.types import is_bool_dtype, is_float_dtype, is_integer_dtype

    # booleans are not numbers here: their text, "True", is not one either
    return not is_bool_dtype(values.dtype) and (is_float_dtype(values.dtype) or is_integer_dtype(values.dtype))


def _as_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value).strip() or None


def _cells_as_text(values: Any) -> Any:
    """One column's cells as trimmed text (object), missing (None, NaN, blank) as None."""
    from pandas.api.types import infer_dtype

    if getattr(values.dtype, "kind", None) in ("i", "u"):  # plain integers: never missing, text at once
        return values.astype(str).astype(object)
    if infer_dtype(values, skipna=True) in ("string", "empty"):
        # text cells: each distinct value is trimmed once (a category column holds a handful)
        import numpy as np
        import pandas as pd

        codes, distinct = pd.factorize(values.astype(object), use_na_sentinel=True)
        cleaned = np.array([_as_text(value) for value in distinct] + [None], dtype=object)
        return pd.Series(cleaned[codes], index=values.index, dtype=object)  # code -1 (missing) -> None
    return values.astype(object).map(_as_text)
