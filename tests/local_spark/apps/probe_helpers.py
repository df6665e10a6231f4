"""Shipped to the probe app as a --py-files archive, as churn_common is to the Spark scripts."""

from __future__ import annotations

from typing import Any


def doubled(frame: Any) -> Any:
    from pyspark.sql import functions

    return frame.withColumn("value", functions.col("value") * 2)
