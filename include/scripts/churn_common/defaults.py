"""The model's defaults, read from ``defaults.json`` beside this file: the one place that the
training script (for runs by hand) and the DAG side (for the requests it sends) both read.

    hyperparameters   the mission's RandomForest: 100 trees, max depth 10, min 4 samples to split
    metrics           the names every step reports, in evaluation.json and the registry
    business_metrics  what evaluation.json's metrics add in the business's terms (top-decile lift, the
                      campaign's profit at the model's own threshold), which the gate may compare on too
    seed              splits, forest and bootstrap are seeded with it unless told otherwise
"""

from __future__ import annotations

import json
from pathlib import Path

DEFAULTS_FILE = Path(__file__).resolve().with_name("defaults.json")
_DEFAULTS = json.loads(DEFAULTS_FILE.read_text(encoding="utf-8"))

HYPERPARAMETERS: dict[str, int] = dict(_DEFAULTS["hyperparameters"])
METRIC_NAMES: tuple[str, ...] = tuple(_DEFAULTS["metrics"])
BUSINESS_METRIC_NAMES: tuple[str, ...] = tuple(_DEFAULTS["business_metrics"])
SEED: int = int(_DEFAULTS["seed"])
