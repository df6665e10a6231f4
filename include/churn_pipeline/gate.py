"""The quality gate: does this run's model earn a place in the registry?

Only a readable ``evaluation.json`` with a finite accuracy at or above the threshold passes. A
missing or malformed file, a missing or non-finite accuracy, or an out-of-range threshold never
counts as a pass: the decision says why, and the pipeline notifies the team.
"""

from __future__ import annotations

import json
import math
from typing import Any

from churn_pipeline.payloads import GateDecision

DEFAULT_ACCURACY_THRESHOLD = 0.75  # the mission's bar; a DAG param overrides it per run
REASON_PASSED = "passed"
REASON_REJECTED = "model_rejected"
REASON_INVALID = "evaluation_invalid"


def _finite_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    found = {}
    for name, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            found[name] = float(value)
    return found


def decide(evaluation: bytes | None, threshold: Any, evaluation_uri: str) -> GateDecision:
    """Decide from the raw bytes of ``evaluation.json`` (None when it could not be read)."""
    if (not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not math.isfinite(threshold)
            or not 0.0 <= threshold <= 1.0):
        raise ValueError(f"accuracy_threshold must be a number between 0 and 1, got {threshold!r}")

    def invalid(detail: str, metrics: dict[str, float] | None = None) -> GateDecision:
        return GateDecision(False, REASON_INVALID, detail, float(threshold), evaluation_uri, None, metrics or {})

    if evaluation is None:
        return invalid(f"no evaluation report at {evaluation_uri}")
    try:
        report = json.loads(evaluation)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return invalid(f"the evaluation report at {evaluation_uri} is not valid JSON ({error})")
    metrics = report.get("metrics") if isinstance(report, dict) else None
    if not isinstance(metrics, dict):
        return invalid(f"the evaluation report at {evaluation_uri} has no 'metrics' object")
    finite = _finite_metrics(metrics)
    accuracy = metrics.get("accuracy")
    if "accuracy" not in finite or not 0.0 <= finite["accuracy"] <= 1.0:
        return invalid(f"the evaluation report at {evaluation_uri} has no valid accuracy (found {accuracy!r})", finite)
    accuracy = finite["accuracy"]
    if accuracy >= threshold:
        return GateDecision(True, REASON_PASSED, f"accuracy {accuracy:.4f} >= threshold {threshold:.4f}",
                            float(threshold), evaluation_uri, accuracy, finite)
    return GateDecision(False, REASON_REJECTED, f"accuracy {accuracy:.4f} is below the threshold {threshold:.4f}",
                        float(threshold), evaluation_uri, accuracy, finite)
