"""Training and evaluation in the business's terms, on the bundled sample as the jobs run them: the
threshold and the calibration choice come from the validation split and travel with the model; the
test split only measures them; every scored customer's reasons add up to its score and name the
schema's raw columns."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import inference
from churn_common import business, data_contract, tables
from tests.conftest import run_script


def _decision(model: Path) -> dict:
    return json.loads((model / business.DECISION_FILE).read_text())


def test_training_stores_the_threshold_and_calibration_it_chose_on_validation(sample_outputs: dict[str, Path]) -> None:
    decision = _decision(sample_outputs["model"])
    assert decision["chosen_on"] == "validation" and decision["threshold"] in business.THRESHOLD_GRID
    assert decision["economics"] == business.Economics().to_dict()
    calibration = decision["calibration"]
    assert calibration["chosen_on"] == "validation" and isinstance(calibration["applied"], bool)
    assert calibration["applied"] is (calibration["brier_calibrated"] < calibration["brier_raw"])
    assert (calibration["calibrator"] is not None) is calibration["applied"]


def test_evaluation_reports_ranking_campaign_and_calibration(sample_outputs: dict[str, Path]) -> None:
    report = json.loads((sample_outputs["evaluation"] / "evaluation.json").read_text())
    assert [row["share"] for row in report["ranking"]["table"]] == [0.05, 0.10, 0.20, 0.30]
    assert report["metrics"]["lift_at_10"] == report["ranking"]["top_decile_lift"] > 1.0
    economics = report["economics"]
    assert economics["threshold"] == _decision(sample_outputs["model"])["threshold"]
    assert report["metrics"]["expected_profit"] == economics["at_threshold"]["profit"]
    assert economics["at_default"]["threshold"] == 0.5
    assert 0.0 < report["calibration"]["brier"] < 0.25 and 0.0 <= report["calibration"]["ece"] < 0.2
    details = json.loads((sample_outputs["evaluation"] / "details.json").read_text())
    assert details["gains"]["challenger"]["gain"][-1] == 1.0


def test_changing_only_the_test_split_keeps_the_threshold(tmp_path: Path, sample_outputs: dict[str, Path]) -> None:
    records = tables.read_records(sample_outputs["out"] / "holdout")
    (tmp_path / "holdout").mkdir()
    records.iloc[: len(records) // 2].to_parquet(tmp_path / "holdout" / "records.parquet", index=False)
    ran = run_script("evaluation.py", "--model", sample_outputs["model"], "--holdout", tmp_path / "holdout",
                     "--no-details", "--no-drift", "--output-dir", tmp_path / "eval")
    assert ran.returncode == 0, ran.stderr
    halved = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    full = json.loads((sample_outputs["evaluation"] / "evaluation.json").read_text())
    assert halved["rows"]["test"] < full["rows"]["test"]
    assert halved["economics"]["threshold"] == full["economics"]["threshold"]


@pytest.fixture(scope="module")
def served(sample_outputs: dict[str, Path]) -> tuple[dict, pd.DataFrame]:
    model = inference.model_fn(str(sample_outputs["model"]))
    records = tables.read_records(sample_outputs["out"] / "holdout")
    return model, records.drop(columns=[tables.TARGET_LABEL])


def test_reasons_add_up_to_each_score_and_name_the_schemas_raw_columns(served: tuple) -> None:
    model, records = served
    schema = model["schema"]
    features = data_contract.prepare_features(records, schema)
    scores, base, contributions = business.reasons(model["model"], features, schema.features, model["decision"])
    assert abs(base + contributions.sum(axis=1) - scores).max() < 1e-6
    assert abs(scores - business.served_scores(model["model"], features, model["decision"])).max() < 1e-9
    predictions = inference.predict_fn(records.head(50), model)
    for prediction in predictions:
        assert {driver["feature"] for driver in prediction["drivers"]} <= set(schema.features)
        assert len(prediction["drivers"]) == business.TOP_DRIVERS
        assert prediction["contact"] is (prediction["probability"] > model["decision"]["threshold"])
        assert prediction["value"] is None or prediction["value"] >= 0  # MonthlyCharges, the schema's value_column


def test_a_new_month_to_month_customer_is_at_risk_for_those_reasons(served: tuple) -> None:
    model, _ = served
    customer = {"Gender": "Female", "Age": 34, "Tenure": 1, "MonthlyCharges": 95.0, "TotalCharges": 95.0,
                "Contract": "Month-to-month", "InternetService": "Fiber optic", "TechSupport": "No",
                "StreamingTV": "Yes", "PaymentMethod": "Electronic check"}
    prediction = inference.predict_fn(pd.DataFrame([customer]), model)[0]
    drivers = {driver["feature"]: driver["contribution"] for driver in prediction["drivers"]}
    assert {"Contract", "Tenure"} <= set(drivers), drivers
    assert drivers["Contract"] > 0 and drivers["Tenure"] > 0  # both raise the risk
    assert prediction["value"] == 95.0
