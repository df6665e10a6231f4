"""The gate passes only a finite accuracy at or above the threshold read from a sound report."""

from __future__ import annotations

import json

import pytest

from churn_pipeline.gate import REASON_INVALID, REASON_REJECTED, decide
from churn_pipeline.payloads import NOTIFY_TASK as NOTIFY
from churn_pipeline.payloads import REGISTER_TASK as REGISTER

URI = "s3://bucket/run/evaluation/evaluation.json"


def report(**metrics) -> bytes:
    return json.dumps({"metrics": metrics}).encode()


@pytest.mark.parametrize("accuracy, threshold, expected", [
    (0.80, 0.75, REGISTER), (0.75, 0.75, REGISTER), (0.7499, 0.75, NOTIFY), (0.9, 0.99, NOTIFY), (0.0, 0.0, REGISTER)])
def test_accuracy_against_threshold(accuracy: float, threshold: float, expected: str) -> None:
    decision = decide(report(accuracy=accuracy, f1_score=0.5), threshold, URI)
    assert decision.next_task == expected
    assert decision.reason == ("passed" if expected == REGISTER else REASON_REJECTED)
    assert decision.accuracy == accuracy and decision.metrics["f1_score"] == 0.5


@pytest.mark.parametrize("raw", [
    None, b"", b"{not json", b"\xff\xfe", b"[]", b'{"metrics": 3}', report(), report(accuracy="0.9"),
    report(accuracy=None), b'{"metrics": {"accuracy": NaN}}', b'{"metrics": {"accuracy": Infinity}}',
    report(accuracy=1.5), report(accuracy=True)])
def test_anything_unsound_never_counts_as_a_pass(raw: bytes | None) -> None:
    decision = decide(raw, 0.0, URI)
    assert not decision.passed
    assert decision.reason == REASON_INVALID and decision.next_task == NOTIFY
    assert URI in decision.detail


@pytest.mark.parametrize("threshold", [-0.1, 1.1, float("nan"), "0.75", None, True])
def test_threshold_out_of_range_is_an_error(threshold) -> None:
    with pytest.raises(ValueError, match="accuracy_threshold"):
        decide(report(accuracy=0.9), threshold, URI)
