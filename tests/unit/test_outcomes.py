"""The outcome rules and figures: the holdout's share and stability, when a cohort is due, the verdict
against the promise (as a share of it), the sustained-failure window, realised figures from known
labels, the outcomes page."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from churn_pipeline.domain.outcomes import failures, in_holdout, is_due, sustained_failure
from churn_pipeline.report.outcomes_page import CONTENT_SECURITY_POLICY, render_outcomes_page
from churn_pipeline.tasks.outcomes import realised_figures

ECONOMICS = {"value_retained": 500.0, "offer_cost": 100.0, "offer_acceptance": 1.0}


@pytest.mark.parametrize("share", [0.05, 0.1, 0.3])
def test_the_holdout_share_is_within_a_point_of_the_setting_and_stable(share: float) -> None:
    ids = [f"C007-{n:07d}" for n in range(10_000)]
    held = [customer for customer in ids if in_holdout("20261121T060000Z", customer, share)]
    assert abs(len(held) / len(ids) - share) < 0.01
    assert held == [customer for customer in ids if in_holdout("20261121T060000Z", customer, share)]
    other = {customer for customer in ids if in_holdout("20261122T060000Z", customer, share)}
    assert len(other & set(held)) < len(held) * (share + 0.05)  # another run draws anew


def test_a_cohort_is_due_once_its_horizon_has_passed() -> None:
    assert not is_due("20261121T060000Z", datetime(2026, 12, 21, 5, 59, tzinfo=UTC), 30)
    assert is_due("20261121T060000Z", datetime(2026, 12, 21, 6, 0, tzinfo=UTC), 30)
    with pytest.raises(ValueError, match="not a run key"):
        is_due("2026-11-21", datetime(2026, 12, 21, tzinfo=UTC), 30)


def test_the_margin_is_a_share_of_the_promise() -> None:
    promised = {"roc_auc": 0.88, "lift_at_10": 2.96}
    # lift 2.6 is 0.36 below the promise: a sampling wobble, within 15 % of it
    assert failures({"roc_auc": 0.86, "lift_at_10": 2.6}, promised, 0.15) == []
    (reason,) = failures({"roc_auc": 0.86, "lift_at_10": 1.1}, promised, 0.15)
    assert reason.startswith("lift_at_10 1.1000 < 2.5160")
    assert [r.split()[0] for r in failures({"roc_auc": 0.5, "lift_at_10": 1.0}, promised, 0.15)] == \
        ["roc_auc", "lift_at_10"]
    assert failures({"roc_auc": None, "lift_at_10": None}, promised, 0.15) == []  # one class only: not judged


def test_two_of_the_last_five_cohorts_failing_is_sustained() -> None:
    assert not sustained_failure([True])
    assert sustained_failure([False, True, False, True])
    assert not sustained_failure([True, True, False, False, False, False, False])  # older than the window
    assert sustained_failure([True, False, False, False, True])


def test_realised_figures_of_known_labels() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random(5000)
    labels = (rng.random(5000) < scores).astype(int)  # calibrated by construction
    figures = realised_figures(labels, scores, 0.2, ECONOMICS)
    assert figures["customers"] == 5000 and figures["churners"] == labels.sum()
    assert figures["roc_auc"] == pytest.approx(0.83, abs=0.02)
    assert figures["lift_at_10"] == pytest.approx(0.95 / labels.mean(), rel=0.05)
    assert figures["ece"] < 0.03
    contacted = scores > 0.2
    assert figures["profit_at_threshold"] == pytest.approx(500 * labels[contacted].sum() - 100 * contacted.sum())
    chance = realised_figures(rng.permutation(labels), scores, 0.2, ECONOMICS)
    assert chance["roc_auc"] == pytest.approx(0.5, abs=0.03) and chance["lift_at_10"] < 1.2


def test_the_outcomes_page_is_self_contained_and_escapes_what_it_shows() -> None:
    rng = np.random.default_rng(2)
    scores = rng.random(1000)
    everyone = realised_figures((rng.random(1000) < scores).astype(int), scores, 0.2, ECONOMICS)
    holdout = realised_figures((rng.random(100) < scores[:100]).astype(int), scores[:100], 0.2, ECONOMICS)
    record = {"cohort": "20261121T060000Z", "model": {"version": 1, "identifier": "models:/g/1", "run_key": "k"},
              "coverage": 1.0, "scored": 1000, "labelled": 1000, "everyone": everyone, "holdout": holdout,
              "promised": {"roc_auc": 0.88, "lift_at_10": 2.9, "top_decile_precision": 0.8, "ece": 0.02,
                           "profit_per_customer": 14.2, "lift_curve": everyone["lift_curve"]},
              "judged_on": "everyone", "failed": True, "reasons": ["lift_at_10 <script>"]}
    page = render_outcomes_page([record])
    escaped = CONTENT_SECURITY_POLICY.replace("'", "&#39;")
    assert f'content="{escaped}"' in page  # nothing is fetched when it is opened
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<polyline") == 5  # three lift curves, the calibration and its diagonal
    assert "20261121T060000Z" in page and "failed: lift_at_10" in page
