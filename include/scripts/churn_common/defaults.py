"""The model's defaults, read from ``defaults.json`` beside this file: the one place that the
training script (for runs by hand) and the DAG side (for the requests it sends) both read.

    hyperparameters   the mission's RandomForest: 100 trees, max depth 10, min 4 samples to split, and
                      ``max-samples``: the most rows each tree draws (0: every row, the full bootstrap)
    metrics           the names every step reports, in evaluation.json and the registry
    business_metrics  what evaluation.json's metrics add in the business's terms (top-decile lift, the
                      campaign's profit at the model's own threshold), which the gate may compare on too
    seed              splits, forest and bootstrap are seeded with it unless told otherwise
"""

from __future__ import annotations

import json
from pathlib import Path

from churn_common.contract import read_beside  # zip-safe, as Spark imports the package from --py-files

DEFAULTS_FILE = Path(__file__).resolve().with_name("defaults.json")



_DEFAULTS = json.loads(read_beside(DEFAULTS_FILE.name))

HYPERPARAMETERS: dict[str, int] = dict(_DEFAULTS["hyperparameters"])
METRIC_NAMES: tuple[str, ...] = tuple(_DEFAULTS["metrics"])
BUSINESS_METRIC_NAMES: tuple[str, ...] = tuple(_DEFAULTS["business_metrics"])
SEED: int = int(_DEFAULTS["seed"])


def rows_per_tree(train_rows: int, max_samples: int) -> int:
    """How many rows each tree draws (with replacement) from a training split of ``train_rows``.

    Below ``max_samples`` rows (or with ``max_samples`` 0) every tree draws as many rows as the split
    has, the mission's full bootstrap; above it each tree draws ``max_samples``. A tree of depth 10
    has at most 1,024 leaves, so beyond a few hundred thousand rows more rows per tree refine leaves
    that are already large, while the fit's time grows with them: docs/performance.md has the
    measurement behind the default.
    """
    if max_samples <= 0 or train_rows <= max_samples:
        return train_rows
    return max_samples
