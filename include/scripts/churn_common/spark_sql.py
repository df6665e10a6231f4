"""The fitted preprocessor as Spark SQL, and the other texts the Spark scripts must write exactly as the
scikit-learn path computes them. Standard library only: the Spark image has no pyarrow or
scikit-learn, and the same statement must come out of preprocessing (which writes the features) and
training (which packages it in the model), so it is built in one place.

    feature_statement   preprocessor.json's statistics as one ``SELECT`` over the raw records: the
                        numbers imputed with the median, centred and scaled in float64, then cast to
                        float32 (the features the scikit-learn forest splits on); every training
                        category as a 0/1 indicator, a missing cell counting as the mode and a value the
                        training split lacks as all zeros (``handle_unknown="ignore"``). It is both how
                        preprocessing writes the splits and the ``SQLTransformer`` stage of the model,
                        so raw records are scored through the very expressions the forest was fitted on.
    number_text         a float64 as Arrow casts it to text (``30``, ``65.35``, ``1e-7``), the form the
                        row's canonical text (the split key of a customer without an id) holds
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

THIS = "__THIS__"  # the placeholder SQLTransformer replaces with its input
FEATURE_PREFIX = "feature_"  # the transformed columns, by position: feature_0, feature_1, ...
# Arrow (double-conversion's shortest form) writes a number in positional notation when its decimal
# exponent lies in [-6, 10), otherwise as d.ddde+N
POSITIONAL_FROM, POSITIONAL_BELOW = -6, 10


def number_text(value: float) -> str:
    """``value`` as pyarrow's float64 -> string cast writes it: the shortest digits that read back as
    the same float64 (Python's ``repr`` finds the same), positional for decimal exponents -6 to 9,
    else ``1.5e+20`` / ``1e-7``; whole numbers without ``.0``; ``-0`` for negative zero."""
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0")
    if not text:  # zero
        return "-0" if sign else "0"
    exponent += len(digits) - len(text)  # value = 0.<text> ... as <text> x 10**exponent
    decimal_exponent = len(text) + exponent - 1  # the position of the first digit, 10**decimal_exponent
    prefix = "-" if sign else ""
    if POSITIONAL_FROM <= decimal_exponent < POSITIONAL_BELOW:
        if exponent >= 0:
            return prefix + text + "0" * exponent
        point = len(text) + exponent
        if point > 0:
            return prefix + text[:point] + "." + text[point:]
        return prefix + "0." + "0" * -point + text
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{prefix}{mantissa}e{'+' if decimal_exponent >= 0 else '-'}{abs(decimal_exponent)}"


def identifier(name: str) -> str:
    """A column name as a Spark SQL identifier: back-quoted, back-quotes doubled."""
    return "`" + name.replace("`", "``") + "`"


def string_literal(value: Any) -> str:
    """A Spark SQL string literal of ``value``'s text (backslashes and quotes escaped, as Spark's
    parser unescapes them by default)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def double_literal(value: float) -> str:
    """A float64 as a Spark SQL double, to the last bit (``repr`` reads back as the same float)."""
    return f"CAST({string_literal(repr(float(value)))} AS DOUBLE)"


def feature_columns(count: int) -> list[str]:
    return [f"{FEATURE_PREFIX}{index}" for index in range(count)]


def feature_expressions(numeric: Sequence[str], categorical: Sequence[str],
                        fitted: Mapping[str, Any]) -> list[str]:
    """One SQL expression per transformed feature, in preprocessor.json's ``features`` order (the
    numbers first, then each column's categories, as the ColumnTransformer orders them)."""
    expressions = []
    for name in numeric:
        statistics = fitted["numeric"][name]
        imputed = f"COALESCE({identifier(name)}, {double_literal(statistics['median'])})"
        expressions.append(f"CAST(({imputed} - {double_literal(statistics['mean'])}) / "
                           f"{double_literal(statistics['scale'])} AS FLOAT)")
    for name in categorical:
        statistics = fitted["categorical"][name]
        imputed = f"COALESCE({identifier(name)}, {string_literal(statistics['mode'])})"
        for category in statistics["categories"]:
            expressions.append(f"CAST({imputed} = {string_literal(category)} AS FLOAT)")
    return expressions


def feature_statement(numeric: Sequence[str], categorical: Sequence[str], fitted: Mapping[str, Any],
                      keep: Sequence[str] | None = None) -> str:
    """``SELECT <keep or *>, <feature expressions> AS feature_0, ... FROM __THIS__``: the statement of
    the model's SQLTransformer (and, with ``keep``, of the splits preprocessing writes)."""
    expressions = feature_expressions(numeric, categorical, fitted)
    if len(expressions) != len(fitted["features"]):
        raise ValueError(f"the statistics give {len(expressions)} feature(s) but name {len(fitted['features'])}")
    kept = [identifier(name) for name in keep] if keep is not None else ["*"]
    selected = [f"{expression} AS {column}"
                for expression, column in zip(expressions, feature_columns(len(expressions)), strict=True)]
    return f"SELECT {', '.join(kept + selected)} FROM {THIS}"
