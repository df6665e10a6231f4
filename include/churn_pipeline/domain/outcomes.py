"""Outcomes of past scores, the pure rules: who is held out of the campaign, when a scoring cohort's
labels have matured, and when a cohort (and a run of cohorts) fails against what the model promised.

The holdout: a customer of a scoring run is held out when a hash of the run's key and the customer's
id falls below the share, so that the same run (a retry, a rerun) holds out the same customers, and
another run draws anew. Retention offers change what contacted customers do; only the held-out
customers show the model's quality unbiased by the campaign.

The verdict compares realised with promised figures as a share of the promised one: a cohort fails
when its realised ROC AUC or top-decile lift falls below the registered figure by more than the margin
(``CHURN_OUTCOME_MARGIN``, a share). A share, not an absolute difference: lift lives on another scale
than ROC AUC (2.9 against 0.87), and an absolute 0.05 fails a sound cohort on lift by sampling error
alone. Retraining is asked for on a sustained failure, 2 of the last 5 measured cohorts, as Databricks'
monitoring does, so that one unlucky month does not retrain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from churn_pipeline.domain.layout import _RUN_KEY

JUDGED_METRICS = ("roc_auc", "lift_at_10")  # what a cohort is failed on: ranking quality, what the campaign uses
WINDOW_COHORTS = 5
FAILURES_TO_ACT = 2
_HASH_SPACE = 2**64


def holdout_fraction(run_key: str, customer_id: object) -> float:
    """Where a customer of a run falls in [0, 1): uniform, the same for the same run and customer."""
    digest = hashlib.sha256(f"{run_key}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _HASH_SPACE


def in_holdout(run_key: str, customer_id: object, share: float) -> bool:
    """True for the customers of this run the campaign must not contact."""
    return holdout_fraction(run_key, customer_id) < share


def cohort_moment(cohort_key: str) -> datetime:
    """The moment a scoring run's key names (``20261121T060000Z``)."""
    if not _RUN_KEY.match(cohort_key):
        raise ValueError(f"not a run key: {cohort_key!r}")
    return datetime.strptime(cohort_key, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def is_due(cohort_key: str, now: datetime, horizon_days: int) -> bool:
    """True once the cohort's labels have had ``horizon_days`` to arrive."""
    return cohort_moment(cohort_key) + timedelta(days=horizon_days) <= now


def failures(realised: Mapping[str, float | None], promised: Mapping[str, float], margin: float) -> list[str]:
    """Why a cohort fails: each judged metric that fell below its promise by more than ``margin`` (a share
    of the promise), said in a line; empty when it passes. A metric without a promise is not judged."""
    found = []
    for name in JUDGED_METRICS:
        expected, measured = promised.get(name), realised.get(name)
        if expected is None or measured is None:
            continue
        floor = expected * (1 - margin)
        if measured < floor:
            found.append(f"{name} {measured:.4f} < {floor:.4f} (promised {expected:.4f} less {margin:.0%})")
    return found


def sustained_failure(failed_in_order: Sequence[bool]) -> bool:
    """True when ``FAILURES_TO_ACT`` of the last ``WINDOW_COHORTS`` measured cohorts (oldest first) failed."""
    return sum(failed_in_order[-WINDOW_COHORTS:]) >= FAILURES_TO_ACT
