"""Inference handlers for the SageMaker scikit-learn serving container.

The model directory holds ``model.joblib`` (fitted preprocessor -> RandomForest) and ``schema.json``;
requests carry **raw** customer records, as CSV with a header or as JSON (a list of objects, or
``{"instances": [...]}``). Columns the schema does not name are ignored; missing cells are imputed.
The response is JSON: ``{"predictions": [{"churn": true, "probability": 0.83}, ...]}``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from churn_common import data_contract, metrics

CSV = "text/csv"
JSON = "application/json"


def model_fn(model_dir: str) -> dict[str, Any]:
    import joblib

    return {
        "model": joblib.load(Path(model_dir) / "model.joblib"),
        "schema": data_contract.load_schema(Path(model_dir) / "schema.json"),
    }


def input_fn(request_body: str | bytes, content_type: str = CSV) -> Any:
    import pandas as pd

    if isinstance(request_body, bytes):
        request_body = request_body.decode("utf-8-sig")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == CSV:
        return pd.read_csv(io.StringIO(request_body), dtype=str, keep_default_na=False)
    if media_type == JSON:
        payload = json.loads(request_body)
        records = payload.get("instances") if isinstance(payload, dict) else payload
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list):
            raise ValueError("JSON requests must be a record, a list of records or {'instances': [...]}")
        return pd.DataFrame.from_records(records)
    raise ValueError(f"unsupported content type {content_type!r}; use {CSV} or {JSON}")


def predict_fn(records: Any, model: dict[str, Any]) -> list[dict[str, Any]]:
    features = data_contract.prepare_features(records, model["schema"])
    probabilities = model["model"].predict_proba(features)[:, 1]
    return [{"churn": bool(probability > metrics.DECISION_THRESHOLD), "probability": round(float(probability), 6)}
            for probability in probabilities]


def output_fn(predictions: list[dict[str, Any]], accept: str = JSON) -> tuple[str, str]:
    if accept and accept.split(";")[0].strip().lower() not in (JSON, "*/*"):
        raise ValueError(f"unsupported accept type {accept!r}; use {JSON}")
    return json.dumps({"predictions": predictions}), JSON
