"""Scoring as it was before the worker tasks streamed: every score in a list, sorted and summed at
once. Kept for the tests as the specification the bounded-memory implementation must equal."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from churn_pipeline.domain.layout import ScoringLayout
from churn_pipeline.domain.payloads import StagedScoring
from churn_pipeline.domain.settings import Settings
from churn_pipeline.tasks.scoring import CONTACT, DO_NOT_CONTACT, SCORES_HEADER, TOP_CUSTOMERS


def scores_from_transform(lines: list[str], id_column: str | None, settings: Settings,
                          version: int) -> list[dict[str, Any]]:
    """One score per joined output line: the customer's id, the probability, its band, the version, the
    action, the value at risk and the reasons."""
    from churn_pipeline.domain.contract import PREDICTION_KEYS as KEYS
    from churn_pipeline.requests.transform import TRANSFORM_OUTPUT_KEY

    scores = []
    for number, line in enumerate(lines, start=1):
        joined = json.loads(line)
        prediction = joined[TRANSFORM_OUTPUT_KEY]
        probability = float(prediction[KEYS["probability"]])
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"line {number} of the transform output has a probability of {probability}")
        value = prediction.get(KEYS["value"])
        drivers = [(str(item["feature"]), float(item["contribution"])) for item in prediction.get(KEYS["drivers"], [])]
        base = float(prediction.get(KEYS["base_value"], 0.0))
        scores.append({"id": joined.get(id_column) if id_column else number, "churn_probability": probability,
                       "risk_band": settings.risk_band(probability), "model_version": version,
                       "contact": bool(prediction.get(KEYS["contact"], False)),
                       "expected_profit": float(prediction.get(KEYS["expected_profit"], 0.0)),
                       "value_at_risk": None if value is None else probability * float(value)
                       * settings.value_horizon_periods,
                       "base_value": base, "drivers": drivers,
                       "other_contributions": probability - base - sum(share for _, share in drivers)})
    return scores


def scores_csv(scores: list[dict[str, Any]], id_column: str | None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([id_column or "row", *SCORES_HEADER])
    for score in sorted(scores, key=lambda item: item["churn_probability"], reverse=True):
        drivers = [cell for name, share in score["drivers"] for cell in (name, f"{share:+.6f}")]
        drivers += [""] * (6 - len(drivers))
        at_risk = score["value_at_risk"]
        writer.writerow([score["id"], f"{score['churn_probability']:.6f}", score["risk_band"], score["model_version"],
                         CONTACT if score["contact"] else DO_NOT_CONTACT, "" if at_risk is None else f"{at_risk:.2f}",
                         f"{score['base_value']:.6f}", *drivers, f"{score['other_contributions']:+.6f}", ""])
    return buffer.getvalue().encode()


def summarize(scores: list[dict[str, Any]], settings: Settings, staged: StagedScoring,
              layout: ScoringLayout) -> dict[str, Any]:
    bands = dict.fromkeys(settings.risk_bands, 0)
    for score in scores:
        bands[score["risk_band"]] += 1
    top = sorted(scores, key=lambda item: item["churn_probability"], reverse=True)[:TOP_CUSTOMERS]
    contacted = [score for score in scores if score["contact"]]
    at_risk = [score["value_at_risk"] for score in scores if score["value_at_risk"] is not None]
    campaign = {"contact": len(contacted),
                "expected_profit": round(sum(score["expected_profit"] for score in contacted), 2),
                "value_at_risk": round(sum(at_risk), 2) if at_risk else None,
                "value_horizon_periods": settings.value_horizon_periods}
    return {"run_key": staged.run_key, "campaign": campaign, "customers": len(scores),
            "dropped_duplicates": staged.dropped_duplicates,
            "model": {"version": staged.champion.version, "identifier": staged.champion.identifier},
            "risk_bands": dict(settings.risk_bands), "per_band": bands,
            "top": [{"id": item["id"], "churn_probability": round(item["churn_probability"], 6),
                     "risk_band": item["risk_band"], "action": CONTACT if item["contact"] else DO_NOT_CONTACT,
                     "drivers": [name for name, _ in item["drivers"]]} for item in top],
            "scores_uri": layout.scores_file_uri}
