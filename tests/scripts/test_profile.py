"""Profiles in Model Monitor's formats, and drift measured against them: the population stability
index over the baseline's bins or categories, unseen categories counted, completeness changes and
columns that went missing or appeared."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from churn_common import profile
from churn_common.data_contract import Schema

SCHEMA = Schema(id_column=None, target_column="Churn", positive="Yes", negative="No",
                numeric=("MonthlyCharges",), categorical=("Gender",))


def customers(rows: int = 5000, seed: int = 0, charges_factor: float = 1.0, genders=("Female", "Male")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    charges = rng.normal(65, 20, rows).clip(18, 120) * charges_factor
    charges[rng.random(rows) < 0.02] = np.nan
    return pd.DataFrame({"MonthlyCharges": charges, "Gender": rng.choice(np.array(genders, dtype=object), rows)})


def test_psi_equals_the_hand_computed_value() -> None:
    # shares 0.5 / 0.3 / 0.2 against 0.3 / 0.3 / 0.4:
    # (0.3 - 0.5) ln(0.3 / 0.5) + 0 + (0.4 - 0.2) ln(0.4 / 0.2) = 0.1021651 + 0.1386294
    assert profile.population_stability_index([50, 30, 20], [30, 30, 40]) == pytest.approx(0.2407945, abs=1e-7)
    assert profile.population_stability_index([10, 10], [10, 10]) == 0.0
    # an empty bin counts as a share of 1e-4, so one empty bin does not make PSI infinite
    assert math.isfinite(profile.population_stability_index([100, 0], [50, 50]))


@pytest.mark.parametrize("psi, level", [(0.0, "ok"), (0.0999, "ok"), (0.1, "watch"), (0.2499, "watch"),
                                        (0.25, "drift"), (3.0, "drift")])
def test_levels(psi: float, level: str) -> None:
    assert profile.level_of(psi) == level


def test_the_profile_has_model_monitors_shape() -> None:
    statistics, constraints = profile.build_profile(customers(), SCHEMA)
    charges, gender = statistics["features"]
    assert statistics["dataset"]["item_count"] == 5000
    assert charges["name"] == "MonthlyCharges" and charges["inferred_type"] == "Fractional"
    numeric = charges["numerical_statistics"]
    assert numeric["common"]["num_missing"] > 0 and numeric["min"] <= numeric["mean"] <= numeric["max"]
    buckets = numeric["distribution"]["kll"]["buckets"]
    assert len(buckets) == profile.QUANTILE_BINS  # decile bins
    assert sum(bucket["count"] for bucket in buckets) == numeric["common"]["num_present"]
    assert [bucket["value"] for bucket in gender["string_statistics"]["distribution"]["categorical"]["buckets"]] \
        in (["Female", "Male"], ["Male", "Female"])
    completeness = {item["name"]: item["completeness"] for item in constraints["features"]}
    assert 0.97 < completeness["MonthlyCharges"] < 0.99 and completeness["Gender"] == 1.0


def test_scaled_charges_drift_and_gender_stays_ok() -> None:
    statistics, _ = profile.build_profile(customers(seed=1), SCHEMA)
    drift = profile.measure_drift(statistics, {"version": 1}, customers(seed=2, charges_factor=1.5), SCHEMA, "test")
    levels = {item["name"]: item["level"] for item in drift["features"]}
    assert levels == {"MonthlyCharges": "drift", "Gender": "ok"}
    assert drift["summary"] == {"ok": 1, "watch": 0, "drift": 1, "worst_level": "drift"}
    (violation,) = drift["violations"]
    assert violation["feature_name"] == "MonthlyCharges" and violation["constraint_check_type"] == "data_drift_check"


def test_the_same_population_does_not_drift() -> None:
    statistics, _ = profile.build_profile(customers(seed=1), SCHEMA)
    drift = profile.measure_drift(statistics, None, customers(seed=2), SCHEMA, "test")
    assert drift["summary"]["worst_level"] == "ok" and drift["violations"] == []


def test_unseen_categories_are_counted() -> None:
    statistics, _ = profile.build_profile(customers(seed=1), SCHEMA)
    drift = profile.measure_drift(statistics, None, customers(seed=2, genders=("Female", "Male", "Unknown")),
                                  SCHEMA, "test")
    gender = next(item for item in drift["features"] if item["name"] == "Gender")
    assert 0.3 < gender["unseen_share"] < 0.37 and gender["level"] == "drift"


def test_missing_and_extra_columns_are_listed() -> None:
    statistics, _ = profile.build_profile(customers(seed=1), SCHEMA)
    other = Schema(id_column=None, target_column="Churn", positive="Yes", negative="No",
                   numeric=("MonthlyCharges", "Tenure"), categorical=())
    frame = customers(seed=2).assign(Tenure=3.0).drop(columns=["Gender"])
    drift = profile.measure_drift(statistics, None, frame, other, "test")
    assert drift["missing_columns"] == ["Gender"] and drift["extra_columns"] == ["Tenure"]
    assert {v["constraint_check_type"] for v in drift["violations"]} == {"missing_column_check", "extra_column_check"}


def test_completeness_change_is_measured() -> None:
    statistics, _ = profile.build_profile(customers(seed=1), SCHEMA)
    emptier = customers(seed=2)
    emptier.loc[emptier.index[:1000], "MonthlyCharges"] = np.nan
    charges = profile.measure_drift(statistics, None, emptier, SCHEMA, "test")["features"][0]
    assert charges["completeness"]["change"] == pytest.approx(-0.2, abs=0.02)


def test_without_baseline_the_first_run_is_reported_as_such() -> None:
    drift = profile.measure_drift(None, None, customers(), SCHEMA, "test")
    assert drift["status"] == "no_baseline" and drift["features"] == [] and drift["summary"]["worst_level"] == "ok"
    unusable = profile.measure_drift(None, {"version": 2}, customers(), SCHEMA, "test",
                                     unavailable="it has no data profile")
    assert unusable["status"] == "baseline_unavailable" and unusable["reason"] == "it has no data profile"
