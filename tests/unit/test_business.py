"""The scores in the business's terms (``churn_common.business``, and the DAG side's check of the
campaign params): lift and gains, the campaign's profit and the threshold that maximises it,
calibration kept only when it helps out of fold, and reasons that add up to each score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from churn_common import business
from churn_pipeline.domain.economics import economics_from_params, training_hyperparameters

AWS_MATRIX = business.Economics(value_retained=500, offer_cost=100, offer_acceptance=1.0)


def test_lift_and_gains_count_the_churners_among_the_best_scored_shares() -> None:
    labels = np.array([1] * 10 + [0] * 90)  # 10 % churn
    perfect = business.ranking(labels, np.linspace(1, 0, 100))
    assert perfect["top_decile_lift"] == pytest.approx(10.0) and perfect["top_decile_precision"] == 1.0
    by_share = {row["share"]: row for row in perfect["table"]}
    assert set(by_share) == {0.05, 0.10, 0.20, 0.30}
    assert by_share[0.05]["gain"] == pytest.approx(0.5) and by_share[0.20]["lift"] == pytest.approx(5.0)
    reversed_order = business.ranking(labels, np.linspace(0, 1, 100))  # the churners scored lowest
    assert reversed_order["top_decile_lift"] == 0.0
    assert perfect["curve"]["gain"][-1] == 1.0 and len(perfect["curve"]["share"]) == business.GAINS_POINTS


def test_the_campaign_is_valued_as_the_aws_example_counts_its_cost_matrix() -> None:
    rng = np.random.default_rng(3)
    labels, scores = rng.integers(0, 2, 400), rng.random(400)
    for threshold in (0.1, 0.24, 0.5, 0.9):
        contacted = scores > threshold
        churners_missed = int(((labels == 1) & ~contacted).sum())
        at = business.campaign(labels, scores, AWS_MATRIX, threshold)
        assert at["cost"] == pytest.approx(500 * churners_missed + 100 * int(contacted.sum()))
        assert at["contacted"] == int(contacted.sum())
    # an offer that keeps only half the churners it reaches is worth less, at the same threshold
    half = business.Economics(500, 100, 0.5)
    assert business.campaign(labels, scores, half, 0.3)["profit"] < business.campaign(labels, scores, AWS_MATRIX,
                                                                                       0.3)["profit"]


def test_the_chosen_threshold_earns_the_most_of_the_grid() -> None:
    rng = np.random.default_rng(5)
    probabilities = rng.random(2000)
    labels = (rng.random(2000) < probabilities).astype(int)  # calibrated scores
    chosen = business.best_threshold(labels, probabilities, AWS_MATRIX)
    profits = {t: business.campaign(labels, probabilities, AWS_MATRIX, t)["profit"] for t in business.THRESHOLD_GRID}
    assert profits[chosen] == max(profits.values())
    # with calibrated scores the break-even is cost / (acceptance x value) = 0.2
    assert 0.1 <= chosen <= 0.3
    assert profits[chosen] > profits[0.5]


@pytest.mark.parametrize("params, named", [
    ({"offer_cost": -1}, "offer_cost must not be negative"),
    ({"value_retained": -5, "offer_cost": 0}, "value_retained must not be negative"),
    ({"value_retained": 50, "offer_cost": 100}, "value_retained (50) is below offer_cost (100)"),
    ({"offer_acceptance": 1.5}, "offer_acceptance must be a share between 0 and 1"),
    ({"offer_acceptance": -0.1}, "offer_acceptance must be a share between 0 and 1"),
    ({"offer_cost": "100"}, "offer_cost must be a number"),
])
def test_bad_campaign_params_are_refused_in_one_line_naming_them(params: dict, named: str) -> None:
    with pytest.raises(ValueError) as raised:
        economics_from_params(params)
    assert named in str(raised.value) and "\n" not in str(raised.value)


def test_the_campaign_params_reach_training_as_its_options() -> None:
    chosen = economics_from_params({"value_retained": 800, "offer_cost": 50, "offer_acceptance": 0.3})
    assert training_hyperparameters(chosen) == {"value-retained": 800.0, "offer-cost": 50.0, "offer-acceptance": 0.3}
    assert economics_from_params({}) == AWS_MATRIX.to_dict()  # the defaults are the AWS example's matrix


def test_brier_and_calibration_error_of_known_scores() -> None:
    labels, scores = np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.6, 0.4])
    assert business.brier_score(labels, scores) == pytest.approx((0.01 + 0.01 + 0.16 + 0.16) / 4)
    # bins 0.9, 0.1, 0.6, 0.4 hold one customer each: |0.9-1|, |0.1-0|, |0.6-1|, |0.4-0|
    assert business.calibration_error(labels, scores) == pytest.approx((0.1 + 0.1 + 0.4 + 0.4) / 4)


def test_a_calibrator_is_kept_only_when_it_lowers_the_validation_brier_out_of_fold() -> None:
    rng = np.random.default_rng(11)
    truth = rng.random(3000)
    labels = (rng.random(3000) < truth).astype(int)
    distorted, _ = business.choose_calibration(labels, truth ** 3, seed=0)  # far too low: calibration helps
    assert distorted["applied"] and distorted["brier_calibrated"] < distorted["brier_raw"]
    assert distorted["calibrator"] is not None
    served = business.calibrated(truth ** 3, distorted["calibrator"])
    assert business.brier_score(labels, served) < business.brier_score(labels, truth ** 3)
    honest, scores = business.choose_calibration(labels[:400], truth[:400], seed=0)  # already calibrated, few rows
    assert not honest["applied"] and honest["calibrator"] is None and "did not lower" in honest["reason"]
    assert np.array_equal(scores, truth[:400])


def test_the_decision_is_made_on_the_scores_it_is_given_and_says_so() -> None:
    rng = np.random.default_rng(2)
    truth = rng.random(1500)
    labels = (rng.random(1500) < truth).astype(int)
    decision = business.make_decision(labels, truth, AWS_MATRIX, seed=0)
    assert decision["chosen_on"] == "validation" and decision["economics"] == AWS_MATRIX.to_dict()
    assert decision["validation"]["at_threshold"]["profit"] >= decision["validation"]["at_default"]["profit"]


@pytest.fixture(scope="module")
def small_forest() -> tuple[RandomForestClassifier, np.ndarray]:
    rng = np.random.default_rng(0)
    features = rng.random((300, 5))
    labels = ((features[:, 0] + 0.5 * features[:, 1] + 0.2 * rng.random(300)) > 0.9).astype(int)
    forest = RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0, n_jobs=1).fit(features, labels)
    return forest, features


def test_path_attributions_add_up_to_each_customers_probability(small_forest: tuple) -> None:
    forest, features = small_forest
    base, contributions = business.path_attributions(forest, features)
    assert contributions.shape == features.shape
    np.testing.assert_allclose(base + contributions.sum(axis=1), forest.predict_proba(features)[:, 1], atol=1e-9)
    importance = np.abs(contributions).mean(axis=0)  # the features the label depends on are credited most
    assert set(np.argsort(-importance)[:2]) == {0, 1}


def test_top_drivers_are_the_largest_contributions_by_size_with_their_sign() -> None:
    contributions = np.array([[0.1, -0.3, 0.05, 0.2]])
    assert business.top_drivers(contributions, ("a", "b", "c", "d")) == [[("b", -0.3), ("d", 0.2), ("a", 0.1)]]


def test_treeshap_attributions_add_up_too_where_shap_is_installed(small_forest: tuple) -> None:
    pytest.importorskip("shap", reason="shap is not installed here (nor in the SageMaker scikit-learn image)")
    forest, features = small_forest
    base, contributions = business.treeshap_attributions(forest, features)
    np.testing.assert_allclose(base + contributions.sum(axis=1), forest.predict_proba(features)[:, 1], atol=1e-6)
