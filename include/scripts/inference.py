"""Inference handlers for the SageMaker scikit-learn serving container.

The model directory holds ``model.joblib`` (fitted preprocessor -> RandomForest), ``schema.json`` and
``decision.json`` (the calibrator, if one helped, and the contact threshold, both chosen on validation);
requests carry **raw** customer records, as CSV with a header, as JSON (a list of objects, or
``{"instances": [...]}``) or as JSON lines (one object per line, what Batch Transform sends with
``SplitType`` ``Line``). Columns the schema does not name are ignored; missing cells (or ``null``)
are imputed, never dropped. The response is JSON, ``{"predictions": [{"churn": true, "probability":
0.83}, ...]}``, or, for ``application/jsonlines``, one such prediction per line in the order of the
records, which is what Batch Transform joins back to each input line.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from churn_common import business, contract, data_contract, metrics

# The media types the model package declares and Batch Transform sends, from the shared contract.
CSV, JSON, JSON_LINES = contract.CSV, contract.JSON, contract.JSON_LINES


def model_fn(model_dir: str) -> dict[str, Any]:
    import joblib

    return {
        "model": joblib.load(Path(model_dir) / "model.joblib"),
        "schema": data_contract.load_schema(Path(model_dir) / "schema.json"),
        "decision": business.load_decision(Path(model_dir)),
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
    if media_type == JSON_LINES:
        return pd.DataFrame.from_records([json.loads(line) for line in request_body.splitlines() if line.strip()])
    raise ValueError(f"unsupported content type {content_type!r}; use {CSV}, {JSON} or {JSON_LINES}")


def predict_fn(records: Any, model: dict[str, Any]) -> list[dict[str, Any]]:
    schema, decision = model["schema"], model["decision"]
    features = data_contract.prepare_features(records, schema)
    probabilities, base, contributions = business.reasons(model["model"], features, schema.features, decision)
    economics = business.Economics(**decision["economics"]) if decision.get("economics") else business.Economics()
    gain = economics.offer_acceptance * economics.value_retained
    values = customer_values(records, schema)
    keys = contract.PREDICTION_KEYS  # the keys the scoring task reads of each prediction
    return [{keys["predicted_churn"]: bool(probability > metrics.DECISION_THRESHOLD),
             keys["probability"]: float(probability),
             keys["contact"]: bool(probability > decision["threshold"]),
             keys["expected_profit"]: round(float(probability * gain - economics.offer_cost), 6),
             keys["value"]: value,
             keys["base_value"]: round(base, 9),
             keys["drivers"]: [{"feature": name, "contribution": round(share, 9)} for name, share in drivers]}
            for probability, value, drivers in zip(probabilities, values,
                                                   business.top_drivers(contributions, schema.features), strict=True)]


def customer_values(records: Any, schema: data_contract.Schema) -> list[float | None]:
    """Each record's value (the schema's ``value_column``, a number), None where it is missing or there is none."""
    import pandas as pd

    if not schema.value_column or schema.value_column not in records.columns:
        return [None] * len(records)
    numbers = pd.to_numeric(records[schema.value_column], errors="coerce")
    return [None if number != number else float(number) for number in numbers]


def output_fn(predictions: list[dict[str, Any]], accept: str = JSON) -> tuple[str, str]:
    media_type = (accept or JSON).split(";")[0].strip().lower()
    if media_type == JSON_LINES:
        return "".join(json.dumps(prediction) + "\n" for prediction in predictions), JSON_LINES
    if media_type not in (JSON, "*/*"):
        raise ValueError(f"unsupported accept type {accept!r}; use {JSON} or {JSON_LINES}")
    return json.dumps({"predictions": predictions}), JSON
