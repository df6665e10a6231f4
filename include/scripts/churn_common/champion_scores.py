"""A champion's scores on this run's held-out customers, when the champion is of the other engine:
the Spark image cannot load a scikit-learn model, nor the scikit-learn image a Spark one, so the
champion's own engine scores the customers (``--write-scores`` of its evaluation script) and this
run's evaluation reads the pairs back (``--champion-scores``) and values them as it values a champion
it scored itself.

``champion_scores.npz`` holds each customer's label and probability (numpy's own format, which both
images read without pyarrow), in the scoring engine's order: every figure of the champion block is
a function of the pairs, so the order need not be the challenger's. Beside it, the champion's
``decision.json`` (its threshold and calibration), as its model folder holds it. A champion that
cannot score these customers is not a failure of the job: ``unscored.json`` then says why, and the
evaluation records the champion as not comparable with that reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from churn_common import business, contract
from churn_common.container import ContractError

SCORES_FILE = contract.FILES["champion_scores"]
UNSCORED_FILE = "unscored.json"
LABEL, PROBABILITY = contract.KEYS["champion_scores"]


def write(folder: Path, labels: Any, scores: Any, decision: dict[str, Any]) -> None:
    """The pairs, and the champion's decision (``business.load_decision`` of its model folder)."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / SCORES_FILE, "wb") as handle:  # a file object: numpy adds no suffix of its own
        arrays: dict[str, Any] = {LABEL: np.asarray(labels, dtype="int8"),
                                  PROBABILITY: np.asarray(scores, dtype="float64")}
        np.savez(handle, **arrays)  # the names only: numpy 1.26, the Spark image's, has no other keywords
    (folder / business.DECISION_FILE).write_text(json.dumps(decision, indent=2), encoding="utf-8")


def write_unscored(folder: Path, reason: str) -> None:
    """Why the champion could not score these customers, in place of its scores."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / UNSCORED_FILE).write_text(json.dumps({"reason": reason}), encoding="utf-8")


def read(folder: Path) -> tuple[Any, Any, dict[str, Any], str | None]:
    """The labels, the probabilities and the champion's decision written by ``write``; or, after
    ``write_unscored``, empty pairs and why the champion could not score."""
    import numpy as np

    unscored = Path(folder) / UNSCORED_FILE
    if unscored.is_file():
        reason = json.loads(unscored.read_text(encoding="utf-8")).get("reason") or "the champion could not score"
        return np.zeros(0, dtype="int64"), np.zeros(0), {}, str(reason)
    path = Path(folder) / SCORES_FILE
    try:
        with np.load(path, allow_pickle=False) as pairs:
            labels, scores = pairs[LABEL].astype("int64"), pairs[PROBABILITY].astype("float64")
    except (OSError, KeyError, ValueError) as error:
        raise ContractError(str(path), [f"the champion's scores cannot be read: {error}"]) from None
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ContractError(str(path), [f"{LABEL} and {PROBABILITY} differ in shape: {labels.shape}, {scores.shape}"])
    return labels, scores, business.load_decision(Path(folder)), None


def mismatch(labels: Any, champion_labels: Any) -> str | None:
    """Why the champion's pairs cannot be compared with the challenger's customers, or None: the same
    customers have as many rows and as many churners, whichever engine read them."""
    rows, positives = len(labels), int(labels.sum())
    champion_rows, champion_positives = len(champion_labels), int(champion_labels.sum())
    if (rows, positives) == (champion_rows, champion_positives):
        return None
    return (f"the champion was scored on other customers: {champion_rows} held-out rows with {champion_positives} "
            f"churners, against this run's {rows} with {positives}")
