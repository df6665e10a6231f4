"""What a run's jobs cost, and what a job may cost at most before it starts. Pure: no AWS call.

SageMaker bills Processing, Training and Transform per second of an instance's billable time. For a
training job SageMaker reports that time itself (``BillableTimeInSeconds``); for processing and
transform jobs it is taken as the job's start-to-end time (``<Kind>StartTime`` to ``<Kind>EndTime``),
which includes pulling the image and staging data, as the bill does. Either is multiplied by the
instance count and the instance type's price per hour (``CHURN_INSTANCE_PRICES``, on-demand prices of
us-east-1 by default: set your region's or your discount's). The local backend records the same
times for its subprocesses, so a local run shows what the same work would have cost on SageMaker's
instances at its measured durations.

Before a job starts, its worst case is its ``MaxRuntimeInSeconds`` (the longest SageMaker lets it
run; transform requests carry none, so ``CHURN_MAX_RUNTIME_SECONDS``) x instances x price; a run's
``max_run_cost`` param refuses to start a job whose worst case exceeds it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from churn_pipeline.domain.sagemaker_api import JobKind

# On-demand prices per hour in us-east-1 (Processing, Training and Transform bill alike for these)
# (ml.m5.4xlarge: the Spark engine's default cluster, so that its runs are costed and max_run_cost bounds them)
DEFAULT_INSTANCE_PRICES = {"ml.m5.large": 0.115, "ml.m5.xlarge": 0.23, "ml.m5.2xlarge": 0.461, "ml.m5.4xlarge": 0.922,
                           "ml.c5.xlarge": 0.204, "ml.c5.2xlarge": 0.408}


class CostLimitExceeded(ValueError):
    """A job's worst-case cost is above the run's ``max_run_cost``."""


def _instances(kind: JobKind, description: Mapping[str, Any]) -> tuple[str | None, int]:
    if kind is JobKind.PROCESSING:
        cluster = description.get("ProcessingResources", {}).get("ClusterConfig", {})
    elif kind is JobKind.TRAINING:
        cluster = description.get("ResourceConfig", {})
    else:
        cluster = description.get("TransformResources", {})
    return cluster.get("InstanceType"), int(cluster.get("InstanceCount", 1) or 1)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _billable_seconds(kind: JobKind, description: Mapping[str, Any]) -> float | None:
    billed = description.get("BillableTimeInSeconds")
    if kind is JobKind.TRAINING and isinstance(billed, (int, float)) and not isinstance(billed, bool):
        return float(billed)
    start, end = _moment(description.get(f"{kind.value}StartTime")), _moment(description.get(kind.end_time_field))
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def job_cost(kind: JobKind, description: Mapping[str, Any], prices: Mapping[str, float]) -> dict[str, Any]:
    """What one finished job cost: its billable seconds, instances, price and cost (None when the
    description lacks the times or the price of its instance type is unknown; never guessed)."""
    instance_type, count = _instances(kind, description)
    seconds = _billable_seconds(kind, description)
    price = prices.get(instance_type) if instance_type else None
    cost = None if seconds is None or price is None else round(seconds * count * price / 3600, 6)
    return {"billable_seconds": None if seconds is None else round(seconds, 3), "instance_type": instance_type,
            "instance_count": count, "price_per_hour": price, "cost": cost,
            "measured_by": "BillableTimeInSeconds" if kind is JobKind.TRAINING and "BillableTimeInSeconds"
            in description else "start to end time"}


def worst_case_cost(kind: JobKind, request: Mapping[str, Any], prices: Mapping[str, float],
                    default_max_runtime: int) -> float | None:
    """The most a job of this request can cost: its longest allowed run on its instances (None when
    its instance type has no price)."""
    instance_type, count = _instances(kind, request)
    if instance_type is None:
        return None
    price = prices.get(instance_type)
    if price is None:
        return None
    runtime = request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", default_max_runtime)
    return round(float(runtime) * count * price / 3600, 6)


def max_run_cost_from_params(params: Mapping[str, Any]) -> float | None:
    """The run's ``max_run_cost`` (None: no limit); a ValueError in one line when it cannot be one."""
    value = params.get("max_run_cost")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"max_run_cost must be a positive number or empty (no limit), got {value!r}")
    return float(value)


def check_cost_limit(kind: JobKind, request: Mapping[str, Any], prices: Mapping[str, float],
                     default_max_runtime: int, params: Mapping[str, Any]) -> float | None:
    """Refuse (``CostLimitExceeded``) a job whose worst case exceeds the run's ``max_run_cost``, or
    whose instance type has no price while a limit is set; the worst case otherwise."""
    limit = max_run_cost_from_params(params)
    estimate = worst_case_cost(kind, request, prices, default_max_runtime)
    if limit is None:
        return estimate
    instance_type, count = _instances(kind, request)
    if estimate is None or instance_type is None:
        raise CostLimitExceeded(f"max_run_cost is {limit:g} but {instance_type} has no price in CHURN_INSTANCE_PRICES"
                                ", so the job's cost cannot be bounded; not started")
    if estimate > limit:
        runtime = request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", default_max_runtime)
        raise CostLimitExceeded(f"the job may cost up to {estimate:.4f} ({count} x {instance_type} for at most "
                                f"{runtime} s at {prices[instance_type]}/h), above max_run_cost {limit:g}; not started")
    return estimate


def run_cost(costs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A run's cost: each job's, and their total (None when any job's cost is unknown)."""
    known = [item.get("cost") for item in costs.values()]
    total = None if any(value is None for value in known) else round(sum(known), 6)  # type: ignore[arg-type]
    return {"total": total, "jobs": {name: dict(item) for name, item in costs.items()}}
