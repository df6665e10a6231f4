"""The outcomes page: did the predictions come true? One self-contained HTML page over every measured
scoring cohort, rewritten by each outcome run at ``outcomes/outcomes.html``.

A table of the cohorts (coverage, realised against promised ROC AUC, top-decile lift and precision,
calibration, profit per customer, the verdict), then per cohort the realised lift curve against the
promised one and the calibration, drawn as inline SVG: like the run report the page fetches nothing
(a Content-Security-Policy forbids it) and needs no plotting library, which an Airflow worker on MWAA
does not have. Text from the records goes through Jinja2's autoescaping.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
TEMPLATE = Path(__file__).with_name("templates") / "outcomes.html.j2"
WIDTH, HEIGHT, PAD = 320, 200, 30


@functools.cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE.parent), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return environment.get_template(TEMPLATE.name)


def _points(xs: Sequence[float], ys: Sequence[float], y_max: float) -> str:
    """An SVG polyline's points: x in [0, 1], y in [0, y_max], the origin at the bottom left."""
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    return " ".join(f"{PAD + x * inner_w:.1f},{HEIGHT - PAD - min(y, y_max) / y_max * inner_h:.1f}"
                    for x, y in zip(xs, ys, strict=True))


def _curves(record: dict[str, Any]) -> dict[str, Any]:
    promised = record["promised"].get("lift_curve") or {}
    realised = record["everyone"].get("lift_curve") or {}
    held_out = record["holdout"].get("lift_curve") or {}
    lifts = [*promised.get("lift", []), *realised.get("lift", []), *held_out.get("lift", []), 1.0]
    lift_max = max(lifts) * 1.1
    calibration = record["everyone"].get("calibration") or {}
    return {
        "lift_max": round(lift_max, 2),
        "lift": [(name, colour, _points(curve["share"], curve["lift"], lift_max))
                 for name, colour, curve in (("promised", "#888888", promised), ("everyone", "#1f77b4", realised),
                                             ("holdout", "#d62728", held_out)) if curve.get("share")],
        "calibration": _points(calibration.get("mean_predicted", []), calibration.get("fraction_positive", []), 1.0),
        "diagonal": _points([0.0, 1.0], [0.0, 1.0], 1.0),
    }


def render_outcomes_page(records: Sequence[dict[str, Any]]) -> str:
    """The page for these cohort records (oldest first): the same records give the same text."""
    cohorts = [{**record, "curves": _curves(record)} for record in records]
    return _template().render(cohorts=cohorts, failed=sum(record["failed"] for record in records),
                              content_security_policy=CONTENT_SECURITY_POLICY, width=WIDTH, height=HEIGHT, pad=PAD)
