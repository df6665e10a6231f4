"""What the scores are worth to the retention team, with one piece of code for every step: ranking
(lift and cumulative gains), retention economics (expected profit of contacting customers above a
threshold, and the threshold that maximises it), calibration (Brier score, expected calibration
error, an isotonic calibrator kept only when it helps out of fold) and per-customer reasons (additive
attributions of each score to the schema's raw columns).

The economics: contacting a customer costs ``offer_cost``; a contacted churner stays with probability
``offer_acceptance`` and is then worth ``value_retained``; a customer not contacted costs nothing
more (the baseline is doing nothing). So contacting a churner is worth ``acceptance x value - cost``
and contacting a loyal customer ``-cost``. The AWS churn example's cost matrix (a missed churner
costs 500, every offer 100, an offer always keeps the customer) is value 500, cost 100, acceptance 1.

The threshold is chosen on the validation split, never on the test split: the test split only
measures what the chosen threshold earns. The calibrator and the threshold travel with the model in
``decision.json`` (``MODEL_DIR/decision.json``), which evaluation and the serving code read; a model
without one (trained before it existed) scores uncalibrated at 0.5.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DECISION_FILE = "decision.json"
RANKING_SHARES = (0.05, 0.10, 0.20, 0.30)  # the shares of customers, best-scored first, the team may call
GAINS_POINTS = 20  # the gains and lift curves at every 5 % of the customers
CALIBRATION_BINS = 10
CALIBRATION_FOLDS = 5
THRESHOLD_GRID = tuple(round(step / 100, 2) for step in range(1, 100))  # 0.01 ... 0.99, as the AWS example
DEFAULT_THRESHOLD = 0.5
TOP_DRIVERS = 3


@dataclass(frozen=True)
class Economics:
    """The retention campaign's figures: see the module's docstring."""

    value_retained: float = 500.0
    offer_cost: float = 100.0
    offer_acceptance: float = 1.0

    def problems(self) -> list[str]:
        """Every way these figures cannot describe a campaign; empty when they can."""
        found = []
        if not self.value_retained >= 0:
            found.append(f"value_retained must not be negative, got {self.value_retained}")
        if not self.offer_cost >= 0:
            found.append(f"offer_cost must not be negative, got {self.offer_cost}")
        if not 0.0 <= self.offer_acceptance <= 1.0:
            found.append(f"offer_acceptance must be a share between 0 and 1, got {self.offer_acceptance}")
        if self.value_retained < self.offer_cost:
            found.append(f"value_retained ({self.value_retained}) is below offer_cost ({self.offer_cost}): "
                         "no offer could ever pay")
        return found

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# ------------------------------------------------------------------ ranking


def ranking(labels: Any, scores: Any) -> dict[str, Any]:
    """Lift, cumulative gains and precision of the best-scored shares of customers.

    ``gain`` is the share of all churners among the best-scored ``share`` of customers, ``lift`` that
    gain over the share itself (1 is random, ``1 / churn rate`` perfect), ``precision`` the churn rate
    among them. Customers are cut at ``ceil(share x n)``; ties in score keep the table's order.
    """
    import numpy as np

    labels = np.asarray(labels, dtype="float64")
    order = np.argsort(-np.asarray(scores, dtype="float64"), kind="stable")
    caught = np.cumsum(labels[order])
    total, churners = len(labels), float(caught[-1]) if len(labels) else 0.0

    def at(share: float) -> dict[str, float]:
        count = max(1, int(np.ceil(share * total - 1e-9)))
        gain = float(caught[count - 1] / churners) if churners else 0.0
        return {"share": share, "customers": count, "gain": round(gain, 6), "lift": round(gain / (count / total), 6),
                "precision": round(float(caught[count - 1] / count), 6)}

    table = [at(share) for share in RANKING_SHARES]
    curve = [at(step / GAINS_POINTS) for step in range(1, GAINS_POINTS + 1)]
    decile = at(0.10)
    return {"table": table, "top_decile_lift": decile["lift"], "top_decile_precision": decile["precision"],
            "curve": {"share": [point["share"] for point in curve], "gain": [point["gain"] for point in curve],
                      "lift": [point["lift"] for point in curve]}}


# ------------------------------------------------------------------ economics


def profit_by_threshold(labels: Any, scores: Any, economics: Economics, thresholds: Any) -> Any:
    """The campaign's profit against doing nothing when every customer scored above each threshold is
    contacted: one sort, then a look-up per threshold."""
    import numpy as np

    scores = np.asarray(scores, dtype="float64")
    worth = np.where(np.asarray(labels) == 1,
                     economics.offer_acceptance * economics.value_retained - economics.offer_cost,
                     -economics.offer_cost)
    order = np.argsort(scores, kind="stable")
    ascending, worth_from_top = scores[order], np.cumsum(worth[order][::-1])[::-1]
    worth_from_top = np.append(worth_from_top, 0.0)
    first_above = np.searchsorted(ascending, np.asarray(thresholds, dtype="float64"), side="right")
    return worth_from_top[first_above]


def campaign(labels: Any, scores: Any, economics: Economics, threshold: float) -> dict[str, float]:
    """Profit, cost and who is contacted at one threshold. ``cost`` counts what the churners who go
    and the offers cost, the AWS example's measure: ``churners x value - profit``."""
    import numpy as np

    contacted = np.asarray(scores) > threshold
    profit = float(profit_by_threshold(labels, scores, economics, [threshold])[0])
    churners = float(np.sum(np.asarray(labels) == 1))
    return {"threshold": float(threshold), "contacted": int(contacted.sum()), "profit": round(profit, 2),
            "cost": round(churners * economics.value_retained - profit, 2)}


def best_threshold(labels: Any, scores: Any, economics: Economics) -> float:
    """The threshold of the grid whose campaign earns the most (the lowest of equals)."""
    import numpy as np

    profits = profit_by_threshold(labels, scores, economics, THRESHOLD_GRID)
    return float(THRESHOLD_GRID[int(np.argmax(profits))])


# ------------------------------------------------------------------ calibration


def brier_score(labels: Any, scores: Any) -> float:
    import numpy as np

    return float(np.mean((np.asarray(scores, dtype="float64") - np.asarray(labels, dtype="float64")) ** 2))


def calibration_error(labels: Any, scores: Any, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: per equal-width score bin, |mean score - churn rate|, weighted by
    the bin's share of customers."""
    import numpy as np

    scores = np.asarray(scores, dtype="float64")
    index = np.minimum((scores * bins).astype(int), bins - 1)
    gap = np.abs(np.bincount(index, weights=scores, minlength=bins)
                 - np.bincount(index, weights=np.asarray(labels, dtype="float64"), minlength=bins))
    return float(gap.sum() / max(len(scores), 1))


def fit_isotonic(labels: Any, scores: Any) -> dict[str, list[float]]:
    """An isotonic calibrator as two lists of points, applied by linear interpolation (what
    ``IsotonicRegression.predict`` does), so that it travels as JSON beside the model."""
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, labels)
    return {"x": [float(v) for v in fitted.X_thresholds_], "y": [float(v) for v in fitted.y_thresholds_]}


def calibrated(scores: Any, calibrator: dict[str, list[float]] | None) -> Any:
    import numpy as np

    scores = np.asarray(scores, dtype="float64")
    return scores if not calibrator else np.interp(scores, calibrator["x"], calibrator["y"])


def out_of_fold_calibrated(labels: Any, scores: Any, seed: int, folds: int = CALIBRATION_FOLDS) -> Any:
    """Each customer's score calibrated by an isotonic fit on the other folds: what a calibrator
    would do to customers it has not seen."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    labels, scores = np.asarray(labels), np.asarray(scores, dtype="float64")
    result = scores.copy()
    for fit_rows, held_rows in StratifiedKFold(folds, shuffle=True, random_state=seed).split(scores, labels):
        result[held_rows] = calibrated(scores[held_rows], fit_isotonic(labels[fit_rows], scores[fit_rows]))
    return result


def choose_calibration(labels: Any, scores: Any, seed: int) -> tuple[dict[str, Any], Any]:
    """Whether to calibrate: an isotonic calibrator is kept only if, out of fold, it lowers the
    validation split's Brier score. Returns the record for ``decision.json`` and the validation
    scores as the kept choice would make them (out of fold when calibrated)."""
    import numpy as np

    labels = np.asarray(labels)
    record: dict[str, Any] = {"method": "isotonic", "chosen_on": "validation", "folds": CALIBRATION_FOLDS,
                              "brier_raw": brier_score(labels, scores), "ece_raw": calibration_error(labels, scores),
                              "applied": False, "calibrator": None}
    minority = int(min(labels.sum(), len(labels) - labels.sum()))
    if minority < CALIBRATION_FOLDS:
        record["reason"] = f"too few customers of one class in the validation split ({minority}) to calibrate"
        return record, np.asarray(scores, dtype="float64")
    candidate = out_of_fold_calibrated(labels, scores, seed)
    record.update(brier_calibrated=brier_score(labels, candidate), ece_calibrated=calibration_error(labels, candidate))
    if record["brier_calibrated"] < record["brier_raw"]:
        record.update(applied=True, calibrator=fit_isotonic(labels, scores),
                      reason="out of fold, calibration lowered the validation Brier score")
        return record, candidate
    record["reason"] = "out of fold, calibration did not lower the validation Brier score: scores kept as they are"
    return record, np.asarray(scores, dtype="float64")


# ------------------------------------------------------------------ the decision that travels with the model


def make_decision(labels: Any, raw_scores: Any, economics: Economics, seed: int) -> dict[str, Any]:
    """``decision.json``: the calibration choice and the profit-maximising threshold, both from the
    validation split."""
    calibration, served = choose_calibration(labels, raw_scores, seed)
    threshold = best_threshold(labels, served, economics)
    return {"threshold": threshold, "chosen_on": "validation", "economics": economics.to_dict(),
            "calibration": calibration,
            "validation": {"at_threshold": campaign(labels, served, economics, threshold),
                           "at_default": campaign(labels, served, economics, DEFAULT_THRESHOLD)}}


def default_decision() -> dict[str, Any]:
    """A model trained before decisions were stored: uncalibrated scores, the 0.5 cut-off."""
    return {"threshold": DEFAULT_THRESHOLD, "chosen_on": None, "economics": None,
            "calibration": {"applied": False, "calibrator": None}}


def load_decision(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / DECISION_FILE
    if not path.is_file():
        return default_decision()
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def served_scores(model: Any, features: Any, decision: dict[str, Any]) -> Any:
    """The probabilities the model serves: the forest's, through the kept calibrator if any."""
    return calibrated(model.predict_proba(features)[:, 1], decision["calibration"].get("calibrator"))


# ------------------------------------------------------------------ reasons


def raw_column_blocks(encoded_names: list[str], columns: tuple[str, ...]) -> dict[str, list[int]]:
    """Which encoded columns each raw column became (the preprocessor names them ``num__X`` and
    ``cat__X_<value>``)."""
    return {column: [index for index, name in enumerate(encoded_names)
                     if name == f"num__{column}" or name.startswith(f"cat__{column}_")]
            for column in columns}


def path_attributions(forest: Any, encoded: Any) -> tuple[float, Any]:
    """An exact per-tree path attribution ("Saabas") of the forest's churn probability.

    Along each tree's path from the root to the customer's leaf, every split moves the churn rate of
    the node; that move is credited to the split's feature. The moves add up to the leaf's value minus
    the root's, so per customer ``base + contributions.sum() == predict_proba[:, 1]`` exactly, with
    ``base`` the mean root value of the trees. Not Shapley-consistent: features split near the root
    get more credit than TreeSHAP would give them.
    """
    import numpy as np
    from scipy import sparse

    encoded = np.asarray(encoded, dtype="float32")
    total = np.zeros((len(encoded), encoded.shape[1]))
    base = 0.0
    for tree in forest.estimators_:
        structure = tree.tree_
        values = structure.value[:, 0, :]
        churn_rate = values[:, 1] / values.sum(axis=1)
        parent = np.full(structure.node_count, -1)
        for children in (structure.children_left, structure.children_right):
            inner = np.flatnonzero(children >= 0)
            parent[children[inner]] = inner
        moved = np.flatnonzero(parent >= 0)
        credit = sparse.csr_matrix((churn_rate[moved] - churn_rate[parent[moved]],
                                    (moved, structure.feature[parent[moved]])),
                                   shape=(structure.node_count, encoded.shape[1]))
        total += (tree.decision_path(encoded) @ credit).toarray()
        base += float(churn_rate[0])
    count = len(forest.estimators_)
    return base / count, total / count


def treeshap_attributions(forest: Any, encoded: Any) -> tuple[float, Any]:
    """TreeSHAP's attributions of the churn probability (only where ``shap`` is installed)."""
    import numpy as np
    import shap

    explainer = shap.TreeExplainer(forest)
    values = explainer.shap_values(np.asarray(encoded), check_additivity=False)
    values = values[1] if isinstance(values, list) else np.asarray(values)[..., 1]
    expected = np.ravel(explainer.expected_value)
    return float(expected[-1]), values


def explainer_name() -> str:
    import importlib.util

    return "treeshap" if importlib.util.find_spec("shap") is not None else "path"


def reasons(model: Any, features: Any, columns: tuple[str, ...], decision: dict[str, Any],
            explainer: str | None = None) -> tuple[Any, Any, Any]:
    """(served score, base value, contributions per raw column) of each customer, additive:
    ``base + contributions.sum(axis=1) == score``.

    With a calibrator, each customer's raw contributions are scaled by how much calibration stretched
    the move from the base value to the raw score, so that they add up to the served score.
    """
    import numpy as np

    preprocessor, forest = model.named_steps["preprocess"], model.named_steps["classifier"]
    encoded = np.asarray(preprocessor.transform(features))
    attribute = treeshap_attributions if (explainer or explainer_name()) == "treeshap" else path_attributions
    base, by_encoded = attribute(forest, encoded)
    blocks = raw_column_blocks(list(preprocessor.get_feature_names_out()), columns)
    by_column = np.column_stack([by_encoded[:, block].sum(axis=1) for block in blocks.values()])
    # the forest's own probability, not the sum of the parts (which may land a rounding error below 0)
    raw = forest.predict_proba(encoded)[:, 1]
    calibrator = decision["calibration"].get("calibrator")
    if not calibrator:
        return raw, base, by_column
    served, served_base = calibrated(raw, calibrator), float(calibrated([base], calibrator)[0])
    moved = raw - base
    stretch = np.divide(served - served_base, moved, out=np.zeros_like(moved), where=np.abs(moved) > 1e-12)
    return served, served_base, by_column * stretch[:, None]


def top_drivers(contributions: Any, columns: tuple[str, ...],
                count: int = TOP_DRIVERS) -> list[list[tuple[str, float]]]:
    """Each customer's ``count`` raw columns with the largest contributions by size, signed."""
    import numpy as np

    order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :count]
    return [[(columns[index], float(row[index])) for index in picks] for row, picks in zip(contributions, order,
                                                                                          strict=True)]
