"""The texts the Spark scripts must write exactly as the scikit-learn path does: numbers as Arrow casts
them (the canonical text a customer without an id is split by), the fitted preprocessor as SQL, and
the metrics computed without scikit-learn."""

from __future__ import annotations

import random
import struct

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from churn_common import metrics, spark_sql


def some_floats(count: int, seed: int) -> list[float]:
    """Every kind of float64: random bit patterns, money-like decimals, tiny and huge magnitudes."""
    rng = random.Random(seed)
    values = [0.0, -0.0, float("inf"), float("-inf"), 1e-6, 1e-7, 1e9, 1e10, 5e-324, 1.7976931348623157e308,
              30.0, 65.35, 2.0 ** 53, 123456789.0, 1e15]
    while len(values) < count:
        kind = rng.random()
        if kind < 0.3:
            value = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        elif kind < 0.6:
            value = round(rng.uniform(-1e4, 1e4), rng.randint(0, 6))
        else:
            value = rng.uniform(-1, 1) * 10 ** rng.randint(-12, 25)
        if value == value:
            values.append(value)
    return values


def test_number_text_is_arrows_float64_to_string_cast() -> None:
    values = some_floats(50_000, seed=3)
    arrow = pa.array(values, pa.float64()).cast(pa.string()).to_pylist()
    mismatched = [(value, expected, spark_sql.number_text(value))
                  for value, expected in zip(values, arrow, strict=True) if spark_sql.number_text(value) != expected]
    assert mismatched == []


@pytest.mark.parametrize(("value", "text"), [(30.0, "30"), (65.35, "65.35"), (1e-7, "1e-7"), (1e10, "1e+10"),
                                             (-0.0, "-0"), (0.000001, "0.000001")])
def test_number_text_examples(value: float, text: str) -> None:
    assert spark_sql.number_text(value) == text


def test_string_literals_escape_what_spark_sql_unescapes() -> None:
    assert spark_sql.string_literal("O'Brien \\ plan") == "'O\\'Brien \\\\ plan'"
    assert spark_sql.identifier("odd`name") == "`odd``name`"


def test_the_feature_statement_names_one_expression_per_feature_in_order() -> None:
    fitted = {"features": ["num__Age", "cat__Plan_A", "cat__Plan_B'"],
              "numeric": {"Age": {"median": 41.0, "mean": 40.5, "variance": 4.0, "scale": 2.0}},
              "categorical": {"Plan": {"mode": "A", "categories": ["A", "B'"]}}}
    statement = spark_sql.feature_statement(["Age"], ["Plan"], fitted, keep=["label"])
    assert statement.startswith("SELECT `label`, CAST((COALESCE(`Age`, CAST('41.0' AS DOUBLE))")
    assert statement.endswith("= 'B\\'' AS FLOAT) AS feature_2 FROM __THIS__")
    with pytest.raises(ValueError, match="give 3 feature"):
        spark_sql.feature_statement(["Age"], ["Plan"], {**fitted, "features": fitted["features"][:2]})


def test_metrics_from_counts_equal_scikit_learns_with_tied_scores() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 5000)
    scores = np.round(np.clip(labels * 0.3 + rng.random(5000) * 0.7, 0, 1), 2)  # many ties, some at 0.5
    predicted = metrics.predicted_labels(scores)
    expected = {"accuracy": accuracy_score(labels, predicted), "precision": precision_score(labels, predicted),
                "recall": recall_score(labels, predicted), "f1_score": f1_score(labels, predicted),
                "roc_auc": roc_auc_score(labels, scores)}
    assert metrics.metrics_from_counts(labels, scores) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert np.isnan(metrics.metrics_from_counts(np.ones(4, dtype=int), np.full(4, 0.7))["roc_auc"])
