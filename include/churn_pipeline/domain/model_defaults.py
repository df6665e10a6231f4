"""The model's defaults as the container scripts define them: the mission's hyperparameters and the
metric names every step reports. One file, ``include/scripts/churn_common/defaults.json``, is read
by the training script (for runs by hand) and here (for the requests the DAG sends, the registry's
metadata and the gate's choices), so the two sides cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from churn_pipeline.domain.settings import SCRIPTS_DIR

DEFAULTS_FILE = SCRIPTS_DIR / "churn_common" / "defaults.json"


@cache
def model_defaults() -> Mapping[str, Any]:
    """The container scripts' defaults (hyperparameters, metric names): one file both sides read."""
    defaults: Mapping[str, Any] = json.loads(DEFAULTS_FILE.read_text(encoding="utf-8"))
    return defaults


def default_hyperparameters() -> dict[str, int]:
    return dict(model_defaults()["hyperparameters"])


def metric_names() -> tuple[str, ...]:
    return tuple(model_defaults()["metrics"])


def business_metric_names() -> tuple[str, ...]:
    """What evaluation adds in the business's terms: top-decile lift, the campaign's expected profit."""
    return tuple(model_defaults()["business_metrics"])


def comparable_metric_names() -> tuple[str, ...]:
    """Every metric the gate may compare a challenger and its champion on (``champion_metric``)."""
    return metric_names() + business_metric_names()
