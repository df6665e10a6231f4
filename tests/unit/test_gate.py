"""The gate: only a sound evaluation with a finite accuracy at or above the threshold passes, a model
that does not beat a comparable champion is held back when the comparison is enforced, drift blocks
only when asked to, and every reason is listed."""

from __future__ import annotations

import json

import pytest

from churn_pipeline.domain.gate import (
    REASON_DRIFT,
    REASON_INVALID,
    REASON_NOT_BETTER,
    REASON_PASSED,
    REASON_REJECTED,
    CompareMode,
    DriftMode,
    GateRules,
    decide,
)
from tests.builders import champion_block, evaluation_report

URI = "s3://bucket/run/evaluation/evaluation.json"


def report(**metrics) -> bytes:
    return json.dumps({"metrics": metrics}).encode()


def drift(*drifted: str, status: str = "compared") -> bytes:
    features = [{"name": name, "level": "drift", "psi": 0.9} for name in drifted]
    features.append({"name": "Gender", "level": "ok", "psi": 0.001})
    return json.dumps({"status": status, "features": features}).encode()


@pytest.mark.parametrize("accuracy, threshold, passes", [
    (0.80, 0.75, True), (0.75, 0.75, True), (0.7499, 0.75, False), (0.9, 0.99, False), (0.0, 0.0, True)])
def test_accuracy_against_threshold(accuracy: float, threshold: float, passes: bool) -> None:
    decision = decide(report(accuracy=accuracy, f1_score=0.5), GateRules(accuracy_threshold=threshold), URI)
    assert decision.passed is passes
    assert decision.reason == (REASON_PASSED if passes else REASON_REJECTED)
    assert decision.accuracy == accuracy and decision.metrics["f1_score"] == 0.5


@pytest.mark.parametrize("raw", [
    None, b"", b"{not json", b"\xff\xfe", b"[]", b'{"metrics": 3}', report(), report(accuracy="0.9"),
    report(accuracy=None), b'{"metrics": {"accuracy": NaN}}', b'{"metrics": {"accuracy": Infinity}}',
    report(accuracy=1.5), report(accuracy=True)])
def test_anything_unsound_never_counts_as_a_pass(raw: bytes | None) -> None:
    decision = decide(raw, GateRules(accuracy_threshold=0.0), URI)
    assert not decision.passed
    assert decision.reason == REASON_INVALID
    assert URI in decision.detail


@pytest.mark.parametrize("params, message", [
    ({"accuracy_threshold": 1.1}, "accuracy_threshold"), ({"accuracy_threshold": "0.75"}, "accuracy_threshold"),
    ({"accuracy_threshold": True}, "accuracy_threshold"), ({"accuracy_threshold": float("nan")}, "accuracy_threshold"),
    ({"champion_metric": "lift"}, "champion_metric must be one of accuracy"),
    ({"min_improvement": 2}, "min_improvement"), ({"compare_with_champion": "always"}, "compare_with_champion"),
    ({"drift_mode": "panic"}, "drift_mode must be one of warn, block, off"),
])
def test_rules_out_of_range_are_named(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GateRules.from_params(params)


def test_every_bad_rule_is_named_at_once() -> None:
    with pytest.raises(ValueError) as raised:
        GateRules.from_params({"accuracy_threshold": -1, "drift_mode": "x", "champion_metric": "y"})
    assert all(name in str(raised.value) for name in ("accuracy_threshold", "drift_mode", "champion_metric"))


# The decision table of the champion rule: (champion, mode) -> blocks?
NO_CHAMPION, COMPARABLE_WORSE, COMPARABLE_BETTER, NOT_COMPARABLE = "none", "worse", "better", "not comparable"
CHAMPIONS = {
    NO_CHAMPION: None,
    COMPARABLE_WORSE: champion_block(roc_auc=0.80),  # the challenger's 0.86 beats it
    COMPARABLE_BETTER: champion_block(roc_auc=0.90),  # the challenger's 0.86 does not
    NOT_COMPARABLE: champion_block(comparable=False),
}


@pytest.mark.parametrize("champion, mode, blocked", [
    (NO_CHAMPION, CompareMode.ENFORCE, False), (NO_CHAMPION, CompareMode.REPORT, False),
    (NO_CHAMPION, CompareMode.OFF, False),
    (COMPARABLE_WORSE, CompareMode.ENFORCE, False), (COMPARABLE_WORSE, CompareMode.REPORT, False),
    (COMPARABLE_BETTER, CompareMode.ENFORCE, True), (COMPARABLE_BETTER, CompareMode.REPORT, False),
    (COMPARABLE_BETTER, CompareMode.OFF, False),
    (NOT_COMPARABLE, CompareMode.ENFORCE, False), (NOT_COMPARABLE, CompareMode.REPORT, False),
    (NOT_COMPARABLE, CompareMode.OFF, False),
])
def test_the_champion_blocks_only_when_comparable_better_and_enforced(champion: str, mode: CompareMode,
                                                                      blocked: bool) -> None:
    decision = decide(evaluation_report(CHAMPIONS[champion]), GateRules(compare_with_champion=mode), URI)
    assert decision.passed is not blocked
    assert (REASON_NOT_BETTER in decision.reasons) is blocked
    sentence = decision.details[1]
    if mode is CompareMode.OFF:
        assert "off" in sentence
    elif champion == NO_CHAMPION:
        assert "no approved champion" in sentence
    elif champion == NOT_COMPARABLE:
        assert "not comparable" in sentence and "missing column 'Tenure'" in sentence
    else:
        assert "roc_auc 0.8600" in sentence and "models:/customer-churn/1" in sentence


def test_min_improvement_is_the_margin_to_clear() -> None:
    level = evaluation_report(champion_block(roc_auc=0.86))  # the same roc_auc as the challenger
    assert decide(level, GateRules(), URI).passed  # "not worse" by default
    held_back = decide(level, GateRules(min_improvement=0.05), URI)
    assert not held_back.passed and held_back.reason == REASON_NOT_BETTER
    assert "roc_auc 0.8600 is below the champion's 0.8600 + 0.0500" in held_back.detail
    on_accuracy = GateRules(min_improvement=0.05, champion_metric="accuracy")
    assert decide(level, on_accuracy, URI).reasons == (REASON_NOT_BETTER,)


def test_both_rules_can_fail_at_once_and_both_are_listed() -> None:
    decision = decide(evaluation_report(champion_block(roc_auc=0.95), accuracy=0.6), GateRules(), URI)
    assert decision.reasons == (REASON_REJECTED, REASON_NOT_BETTER)
    assert decision.reason == REASON_REJECTED
    assert "below the threshold" in decision.detail and "below the champion's" in decision.detail


@pytest.mark.parametrize("mode, blocked", [(DriftMode.WARN, False), (DriftMode.BLOCK, True), (DriftMode.OFF, False)])
def test_drift_blocks_only_in_block_mode(mode: DriftMode, blocked: bool) -> None:
    decision = decide(evaluation_report(), GateRules(drift_mode=mode), URI, drift=drift("MonthlyCharges"))
    assert decision.passed is not blocked and (REASON_DRIFT in decision.reasons) is blocked
    assert decision.drifted_features == (() if mode is DriftMode.OFF else ("MonthlyCharges",))
    if mode is DriftMode.WARN:
        assert "data drift in MonthlyCharges" in decision.details[2] and "reported only" in decision.details[2]


def test_a_first_run_without_baseline_is_no_drift_and_no_error() -> None:
    decision = decide(evaluation_report(), GateRules(drift_mode=DriftMode.BLOCK), URI,
                      drift=drift(status="no_baseline"))
    assert decision.passed and "no registered version yet" in decision.details[2]


@pytest.mark.parametrize("metric, mine, theirs, improvement, passes", [
    ("lift_at_10", 2.95, 2.90, 0.0, True), ("lift_at_10", 2.80, 2.90, 0.0, False),
    ("lift_at_10", 2.95, 2.90, 0.1, False),  # absolute, as every rate
    ("expected_profit", 91_200.0, 90_000.0, 0.0, True), ("expected_profit", 89_000.0, 90_000.0, 0.0, False),
    ("expected_profit", 93_000.0, 90_000.0, 0.05, False),  # 5 % more would be 94,500
    ("expected_profit", 95_000.0, 90_000.0, 0.05, True), ("expected_profit", -900.0, -1_000.0, 0.05, True),
])
def test_the_gate_compares_on_what_the_business_chose(metric: str, mine: float, theirs: float, improvement: float,
                                                      passes: bool) -> None:
    rules = GateRules.from_params({"champion_metric": metric, "min_improvement": improvement})
    decision = decide(evaluation_report(champion_block(**{metric: theirs}), **{metric: mine}), rules, URI)
    assert decision.passed is passes
    assert decision.reason == (REASON_PASSED if passes else REASON_NOT_BETTER)
    assert metric in decision.details[1]


def test_the_accuracy_floor_stays_whatever_the_business_compares_on() -> None:
    rules = GateRules.from_params({"champion_metric": "expected_profit"})
    decision = decide(evaluation_report(champion_block(expected_profit=1.0), accuracy=0.70, expected_profit=9e9),
                      rules, URI)
    assert not decision.passed and decision.reasons == (REASON_REJECTED,)


def test_the_decision_carries_the_campaign_the_version_is_registered_with() -> None:
    raw = json.loads(evaluation_report())
    raw["economics"] = {"threshold": 0.28, "chosen_on": "validation", "at_threshold": {"profit": 91200.0}}
    raw["calibration"] = {"brier": 0.137, "ece": 0.023, "applied": False}
    decision = decide(json.dumps(raw).encode(), GateRules(), URI)
    assert decision.campaign == {"economics": raw["economics"], "calibration": raw["calibration"]}
