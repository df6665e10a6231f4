"""The quality gate: does this run's model earn a place in the registry?

Rules, all checked and all reported (a decision lists every reason it has):

1. The evaluation is sound: a readable ``evaluation.json`` with a finite accuracy. A missing or
   malformed file never counts as a pass.
2. Accuracy reaches ``accuracy_threshold`` (the mission's 0.75 by default).
3. Where an approved champion exists, could score this run's customers, and the comparison is
   enforced, the challenger's ``champion_metric`` is at least the champion's plus ``min_improvement``
   on the same customers. ``report`` records the comparison without blocking; ``off`` skips it.
   ``champion_metric`` may be a classification metric or one the business chose: ``lift_at_10``
   (top-decile lift) or ``expected_profit`` (the retention campaign's profit on the test split, each
   model at its own threshold); for ``expected_profit`` ``min_improvement`` is a share of the
   champion's profit (0.05: 5 % more), since a profit has no natural scale.
4. With ``drift_mode`` ``block``, no feature has drifted to level ``drift``; ``warn`` (the default)
   reports drift without blocking; ``off`` ignores it.

Pure: the caller reads the files and passes their bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from churn_pipeline.domain.model_defaults import comparable_metric_names

if TYPE_CHECKING:  # the DAG file imports this module for its params' defaults: payloads are not parsed
    from churn_pipeline.domain.payloads import GateDecision

DEFAULT_ACCURACY_THRESHOLD = 0.75  # the mission's bar; a DAG param overrides it per run
DEFAULT_CHAMPION_METRIC = "roc_auc"  # ranks models by their scores, not by one cut-off
DEFAULT_MIN_IMPROVEMENT = 0.0  # "at least as good as the champion"
REASON_PASSED = "passed"
REASON_REJECTED = "model_rejected"
REASON_INVALID = "evaluation_invalid"
REASON_NOT_BETTER = "not_better_than_champion"
REASON_DRIFT = "data_drift"
RELATIVE_METRICS = ("expected_profit",)  # min_improvement is a share of the champion's value for these


class CompareMode(StrEnum):
    ENFORCE = "enforce"  # the challenger must beat the champion to be registered
    REPORT = "report"  # compare and record, never block
    OFF = "off"


class DriftMode(StrEnum):
    WARN = "warn"  # report drift in the report, the log and the notification; never block
    BLOCK = "block"  # a feature at level "drift" blocks registration
    OFF = "off"


@dataclass(frozen=True)
class GateRules:
    """The per-run choices the gate decides under (DAG params)."""

    accuracy_threshold: float = DEFAULT_ACCURACY_THRESHOLD
    champion_metric: str = DEFAULT_CHAMPION_METRIC
    min_improvement: float = DEFAULT_MIN_IMPROVEMENT
    compare_with_champion: CompareMode = CompareMode.ENFORCE
    drift_mode: DriftMode = DriftMode.WARN

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> GateRules:
        """The rules from the run's params; one ValueError naming every bad one."""
        problems = []
        threshold = params.get("accuracy_threshold", DEFAULT_ACCURACY_THRESHOLD)
        if not _is_number(threshold) or not 0.0 <= threshold <= 1.0:
            problems.append(f"accuracy_threshold must be a number between 0 and 1, got {threshold!r}")
        metric = params.get("champion_metric", DEFAULT_CHAMPION_METRIC)
        if metric not in comparable_metric_names():
            problems.append(f"champion_metric must be one of {', '.join(comparable_metric_names())}, got {metric!r}")
        improvement = params.get("min_improvement", DEFAULT_MIN_IMPROVEMENT)
        if not _is_number(improvement) or not -1.0 <= improvement <= 1.0:
            problems.append(f"min_improvement must be a number between -1 and 1, got {improvement!r}")
        compare = params.get("compare_with_champion", CompareMode.ENFORCE.value)
        if compare not in set(CompareMode):
            problems.append(f"compare_with_champion must be one of {', '.join(CompareMode)}, got {compare!r}")
        drift = params.get("drift_mode", DriftMode.WARN.value)
        if drift not in set(DriftMode):
            problems.append(f"drift_mode must be one of {', '.join(DriftMode)}, got {drift!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return cls(float(threshold), str(metric), float(improvement), CompareMode(compare), DriftMode(drift))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _finite_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items() if _is_number(value)}


def _champion_rule(rules: GateRules, metrics: Mapping[str, float],
                   champion: Mapping[str, Any] | None) -> tuple[bool, str]:
    """(blocks, sentence) of the champion comparison."""
    if rules.compare_with_champion is CompareMode.OFF:
        return False, "champion comparison is off for this run"
    if not champion:
        return False, "no approved champion yet: nothing to compare with"
    name = f"version {champion.get('version')} ({champion.get('identifier')})"
    if not champion.get("comparable"):
        return False, f"the champion, {name}, is not comparable: {champion.get('reason')}; not compared"
    metric = rules.champion_metric
    mine, theirs = metrics.get(metric), champion.get("metrics", {}).get(metric)
    if not _is_number(mine) or not _is_number(theirs):
        return False, f"the champion, {name}, has no comparable {metric} ({theirs!r} vs {mine!r}); not compared"
    assert mine is not None and theirs is not None  # checked just above
    margin = rules.min_improvement * abs(theirs) if metric in RELATIVE_METRICS else rules.min_improvement
    needed = theirs + margin
    # a hair of tolerance: "at least as good" must hold for the same model scored twice
    if mine >= needed - 1e-12 * max(1.0, abs(theirs)):
        return False, f"{metric} {mine:.4f} >= the champion's {theirs:.4f} + {margin:.4f} ({name})"
    sentence = f"{metric} {mine:.4f} is below the champion's {theirs:.4f} + {margin:.4f} ({name})"
    if rules.compare_with_champion is CompareMode.REPORT:
        return False, f"{sentence}; recorded only (compare_with_champion=report)"
    return True, sentence


def _drift_rule(rules: GateRules, drift: Mapping[str, Any] | None) -> tuple[bool, str, tuple[str, ...]]:
    """(blocks, sentence, drifted features) of the drift check."""
    from churn_pipeline.domain.contract import DRIFT_LEVELS, DRIFT_STATUSES

    _, watch, drift_level = DRIFT_LEVELS  # mildest first
    compared, no_baseline = DRIFT_STATUSES[:2]
    if rules.drift_mode is DriftMode.OFF:
        return False, "drift is not checked for this run", ()
    if drift is None:
        return False, "no drift report", ()
    if drift.get("status") == no_baseline:
        return False, "drift not measured: no registered version yet to compare with (a first run)", ()
    if drift.get("status") != compared:
        baseline = drift.get("baseline") or {}
        return False, (f"drift not measured: the baseline, version {baseline.get('version')}, "
                       f"{drift.get('reason', 'cannot be used')}"), ()
    drifted = tuple(item["name"] for item in drift.get("features", []) if item.get("level") == drift_level)
    watched = tuple(item["name"] for item in drift.get("features", []) if item.get("level") == watch)
    if not drifted:
        return False, ("no feature drifted" + (f"; watch: {', '.join(watched)}" if watched else "")), ()
    sentence = f"data drift in {', '.join(drifted)}" + (f"; watch: {', '.join(watched)}" if watched else "")
    if rules.drift_mode is DriftMode.BLOCK:
        return True, f"{sentence} (drift_mode=block)", drifted
    return False, f"{sentence}; reported only (drift_mode=warn)", drifted


def decide(evaluation: bytes | None, rules: GateRules, evaluation_uri: str, drift: bytes | None = None,
           report_uri: str | None = None) -> GateDecision:
    """Decide from the raw bytes of ``evaluation.json`` (None when it could not be read) and of
    ``drift.json`` (None when there is none)."""
    from churn_pipeline.domain.payloads import GateDecision

    common: dict[str, Any] = {"champion_metric": rules.champion_metric, "min_improvement": rules.min_improvement,
              "compare_with_champion": rules.compare_with_champion.value, "drift_mode": rules.drift_mode.value,
              "report_uri": report_uri}

    def invalid(detail: str, metrics: dict[str, float] | None = None) -> GateDecision:
        return GateDecision(False, REASON_INVALID, detail, rules.accuracy_threshold, evaluation_uri, None,
                            metrics or {}, reasons=(REASON_INVALID,), details=(detail,), **common)

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
    if "accuracy" not in finite or not 0.0 <= finite["accuracy"] <= 1.0:
        return invalid(f"the evaluation report at {evaluation_uri} has no valid accuracy "
                       f"(found {metrics.get('accuracy')!r})", finite)
    try:
        drift_report = json.loads(drift) if drift is not None else None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return invalid(f"the drift report beside {evaluation_uri} is not valid JSON ({error})", finite)

    accuracy = finite["accuracy"]
    champion = report.get("champion")
    reasons: list[str] = []
    if accuracy >= rules.accuracy_threshold:
        accuracy_sentence = f"accuracy {accuracy:.4f} >= threshold {rules.accuracy_threshold:.4f}"
    else:
        accuracy_sentence = f"accuracy {accuracy:.4f} is below the threshold {rules.accuracy_threshold:.4f}"
        reasons.append(REASON_REJECTED)
    champion_blocks, champion_sentence = _champion_rule(rules, finite, champion)
    if champion_blocks:
        reasons.append(REASON_NOT_BETTER)
    drift_blocks, drift_sentence, drifted = _drift_rule(rules, drift_report)
    if drift_blocks:
        reasons.append(REASON_DRIFT)
    details = (accuracy_sentence, champion_sentence, drift_sentence)
    failing = {REASON_REJECTED: accuracy_sentence, REASON_NOT_BETTER: champion_sentence, REASON_DRIFT: drift_sentence}
    detail = "; ".join(failing[reason] for reason in reasons) if reasons else accuracy_sentence
    campaign = {name: report[name] for name in ("economics", "calibration") if isinstance(report.get(name), dict)}
    return GateDecision(not reasons, reasons[0] if reasons else REASON_PASSED, detail, rules.accuracy_threshold,
                        evaluation_uri, accuracy, finite, reasons=tuple(reasons), details=details,
                        champion=champion, drifted_features=drifted, campaign=campaign or None, **common)
