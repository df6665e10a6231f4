"""What the DAG side and the container scripts must agree on, as the scripts define it: the PSI
levels, how a job says its input breaks the data contract, content types, the steps' output and
channel names, and what the steps' files hold.

One file, ``include/scripts/churn_common/contract.json``, is read here and by the scripts
(``churn_common/contract.py``), as ``defaults.json`` is (``model_defaults``): the DAG side cannot
import the container package (it is shipped to the jobs, not installed here), and the scripts must
not import the DAG side (that would ship Airflow code to the jobs). A small JSON file read once per
process: nothing heavy at DAG parse time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from churn_pipeline.domain.settings import SCRIPTS_DIR

CONTRACT_FILE = SCRIPTS_DIR / "churn_common" / "contract.json"


@cache
def shared_contract() -> Mapping[str, Any]:
    """``contract.json`` as the scripts read it."""
    loaded: Mapping[str, Any] = json.loads(CONTRACT_FILE.read_text(encoding="utf-8"))
    return loaded


_CONTRACT = shared_contract()

PSI_WATCH_FROM: float = float(_CONTRACT["drift"]["psi_watch_from"])
PSI_DRIFT_FROM: float = float(_CONTRACT["drift"]["psi_drift_from"])
DRIFT_LEVELS: tuple[str, ...] = tuple(_CONTRACT["drift"]["levels"])  # mildest first: ok, watch, drift
DRIFT_STATUSES: tuple[str, ...] = tuple(_CONTRACT["drift"]["statuses"])

CSV: str = _CONTRACT["content_types"]["csv"]
JSON: str = _CONTRACT["content_types"]["json"]
JSON_LINES: str = _CONTRACT["content_types"]["json_lines"]

PREPROCESSING_OUTPUTS: tuple[str, ...] = tuple(_CONTRACT["outputs"]["preprocessing"])
EVALUATION_OUTPUT: str = _CONTRACT["outputs"]["evaluation"]
# the champion of the other engine, scored in its own image on this run's held-out customers
CHAMPION_SCORES_OUTPUT: str = _CONTRACT["outputs"]["champion_scores"]
TRAINING_CHANNELS: tuple[str, ...] = tuple(_CONTRACT["outputs"]["training_channels"])
CSV_CHANNELS: tuple[str, ...] = tuple(_CONTRACT["outputs"]["csv_channels"])
FILES: Mapping[str, str] = dict(_CONTRACT["files"])

PROBABILITY_KEY: str = _CONTRACT["keys"]["prediction"]["probability"]  # of each of the model's predictions
PREDICTION_KEYS: Mapping[str, str] = dict(_CONTRACT["keys"]["prediction"])  # contact, drivers, value, ...
TRANSFORM_JOINED_OUTPUT_KEY: str = _CONTRACT["keys"]["transform_joined_output"]

_BAD_INPUT = _CONTRACT["bad_input"]
# What a reason of bad input begins with, per step: the contract's form up to its free text.
_BAD_INPUT_OPENINGS = {step: _BAD_INPUT["reason"].split("{detail}")[0].format(step=step)
                       for step in _BAD_INPUT["steps"]}


def bad_input_step(reason: str) -> str | None:
    """The script step that rejected its input, when a job's own reason (its ``ExitMessage``, or its
    ``FailureReason``, where SageMaker puts ``AlgorithmError: `` before what the script wrote) says
    so in the contract's form; None for any other reason.

    Read at the start only: the same words further into a reason (an unexpected error quoting
    them, an environment fault) are not the contract's signal. The start also survives SageMaker
    keeping only the first 1 KB of a reason.
    """
    for prefix in _BAD_INPUT["container_reason_prefixes"]:
        if reason.startswith(prefix):
            reason = reason[len(prefix):]
            break
    return next((step for step, opening in _BAD_INPUT_OPENINGS.items() if reason.startswith(opening)), None)
