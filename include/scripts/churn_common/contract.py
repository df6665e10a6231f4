"""What the container scripts and the DAG side must agree on, read from ``contract.json`` beside this
file: the one place both sides read (the DAG side through ``churn_pipeline.domain.contract``), since
neither may import the other's package.

    drift          PSI from 0.1 is "watch", from 0.25 "drift"; the statuses of drift.json
    bad_input      how a step says that its input breaks the data contract: a failure reason that
                   *begins* ``<step> rejected its input: ``, which the DAG side reads at that place only
                   (after SageMaker's own prefix) and then fails the task without a retry
    content_types  the media types of requests, responses, channels and reports
    outputs        the steps' output and channel names, as the requests name them (champion-scores:
                   the champion of the other engine, scored in its own image on this run's customers)
    files          the files inside those outputs that the DAG side reads
    keys           what those files, the model's predictions and the joined transform output hold
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTRACT_FILE = Path(__file__).resolve().with_name("contract.json")


def read_beside(name: str) -> str:
    """A data file shipped beside this module: from the folder, or through the module's loader where
    the package is imported from a zip (Spark ships it as ``--py-files churn_common.zip``)."""
    import os
    import pkgutil

    path = os.path.join(os.path.dirname(__file__), name)
    if os.path.isfile(path):
        return Path(path).read_text(encoding="utf-8")
    data = pkgutil.get_data(__package__ or "churn_common", name)
    if data is None:
        raise FileNotFoundError(path)
    return data.decode("utf-8")


_CONTRACT: dict[str, Any] = json.loads(read_beside(CONTRACT_FILE.name))

PSI_WATCH_FROM: float = float(_CONTRACT["drift"]["psi_watch_from"])
PSI_DRIFT_FROM: float = float(_CONTRACT["drift"]["psi_drift_from"])
DRIFT_LEVELS: tuple[str, ...] = tuple(_CONTRACT["drift"]["levels"])
DRIFT_STATUSES: tuple[str, ...] = tuple(_CONTRACT["drift"]["statuses"])

BAD_INPUT_REASON: str = _CONTRACT["bad_input"]["reason"]
BAD_INPUT_STEPS: tuple[str, ...] = tuple(_CONTRACT["bad_input"]["steps"])

CSV: str = _CONTRACT["content_types"]["csv"]
JSON: str = _CONTRACT["content_types"]["json"]
JSON_LINES: str = _CONTRACT["content_types"]["json_lines"]

PREPROCESSING_OUTPUTS: tuple[str, ...] = tuple(_CONTRACT["outputs"]["preprocessing"])
EVALUATION_OUTPUT: str = _CONTRACT["outputs"]["evaluation"]
# the champion of the other engine, scored in its own image on this run's held-out customers
CHAMPION_SCORES_OUTPUT: str = _CONTRACT["outputs"]["champion_scores"]
TRAINING_CHANNELS: tuple[str, ...] = tuple(_CONTRACT["outputs"]["training_channels"])
CSV_CHANNELS: tuple[str, ...] = tuple(_CONTRACT["outputs"]["csv_channels"])
FILES: dict[str, str] = dict(_CONTRACT["files"])

KEYS: dict[str, tuple[str, ...]] = {name: tuple(value) for name, value in _CONTRACT["keys"].items()
                                    if isinstance(value, list)}
PREDICTED_CHURN_KEY: str = _CONTRACT["keys"]["prediction"]["predicted_churn"]
PROBABILITY_KEY: str = _CONTRACT["keys"]["prediction"]["probability"]
PREDICTION_KEYS: dict[str, str] = dict(_CONTRACT["keys"]["prediction"])
TRANSFORM_JOINED_OUTPUT_KEY: str = _CONTRACT["keys"]["transform_joined_output"]


def bad_input_reason(step: str, detail: str) -> str:
    """The failure reason of a step whose input breaks the data contract, in the form the DAG side
    recognises: the step first, then the marker, then what is wrong."""
    if step not in BAD_INPUT_STEPS:
        raise ValueError(f"{step!r} is not a step the DAG side knows ({', '.join(BAD_INPUT_STEPS)}): "
                         f"add it to {CONTRACT_FILE.name}")
    return BAD_INPUT_REASON.format(step=step, detail=detail)
