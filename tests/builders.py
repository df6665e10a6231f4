"""Builders of the values tests hand to the code under test: a gate decision, a registration request,
an evaluation report. Realistic defaults; each test overrides what it is about."""

from __future__ import annotations

import json
from typing import Any

from churn_pipeline.domain.layout import RunLayout
from churn_pipeline.domain.payloads import GateDecision
from churn_pipeline.domain.settings import Settings
from churn_pipeline.requests.model_package import model_package_request

METRICS = {"accuracy": 0.81, "precision": 0.7, "recall": 0.6, "f1_score": 0.62, "roc_auc": 0.86}


def champion_block(version: int = 1, comparable: bool = True, **metrics: float) -> dict[str, Any]:
    values = {**METRICS, **metrics}
    if not comparable:
        return {"identifier": f"models:/customer-churn/{version}", "version": version, "comparable": False,
                "reason": "the champion cannot score this run's customers: missing column 'Tenure'",
                "metrics": {}, "delta": {}}
    return {"identifier": f"models:/customer-churn/{version}", "version": version, "comparable": True,
            "reason": None, "metrics": values, "delta": dict.fromkeys(values, 0.0)}


def evaluation_report(champion: dict[str, Any] | None = None, **metrics: float) -> bytes:
    return json.dumps({"metrics": {**METRICS, **metrics}, "champion": champion}).encode()


def passing_decision(**overrides: Any) -> GateDecision:
    values: dict[str, Any] = {"passed": True, "reason": "passed", "detail": "accuracy 0.8100 >= threshold 0.7500",
                              "threshold": 0.75, "evaluation_uri": "s3://b/run/evaluation/evaluation.json",
                              "accuracy": METRICS["accuracy"], "metrics": dict(METRICS),
                              "details": ("accuracy 0.8100 >= threshold 0.7500",)}
    values.update(overrides)
    return GateDecision(**values)


def registration_request(settings: Settings, key: str, decision: GateDecision | None = None) -> dict[str, Any]:
    layout = RunLayout(settings.base_uri, key)
    return model_package_request(
        settings, layout, image_uri="img", model_artifact_uri=f"{layout.model_uri}/j/output/model.tar.gz",
        decision=decision or passing_decision(), profile_uri=layout.preprocessing_uri("profile"),
        run_id=f"scheduled__{key}", dag_id="customer_churn_pipeline", logical_date="2026-11-26T02:00:00+00:00",
        data_source="s3://b/in.csv", training_job="churn-train-x")
