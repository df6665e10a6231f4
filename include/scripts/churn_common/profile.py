"""Data profiles and drift, in the file formats of SageMaker Model Monitor.

Preprocessing profiles the training split's raw features (``statistics.json`` and
``constraints.json`` as Model Monitor writes them: per feature the inferred type, completeness, a
numeric distribution with quantile bin edges or the categorical frequencies). The profile travels
with the model. A later run measures drift against it: per feature, the population stability index
(PSI) of this run's customers over the baseline's bins or categories (unseen categories counted in a
bucket of their own), the change in completeness, and the columns that went missing or appeared, in a
``drift.json`` whose ``violations`` have the shape of Model Monitor's ``constraint_violations.json``.

Model Monitor itself is closed to new customers; its formats stay the common language that tools
read, which is why they are kept here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn_common import container, contract
from churn_common.data_contract import Schema

PROFILE_VERSION = 0.0  # the version field Model Monitor writes
QUANTILE_BINS = 10  # deciles: the bins PSI is measured over
TOP_CATEGORIES = 100  # a categorical distribution keeps this many values; the rest count as "other"
# The usual reading of PSI: below 0.1 no real change, 0.1 to 0.25 some, from 0.25 drift. The gate and
# the report read the same levels, so they come from the shared contract.
PSI_WATCH = contract.PSI_WATCH_FROM
PSI_DRIFT = contract.PSI_DRIFT_FROM
LEVELS = contract.DRIFT_LEVELS  # mildest first
SHARE_FLOOR = 1e-4  # an empty bin counts as this share, so that PSI stays finite


def _common(present: int, missing: int) -> dict[str, int]:
    return {"num_present": present, "num_missing": missing}


def _numeric_statistics(values: Any) -> dict[str, Any]:
    """The statistics of float64 values, NaN for missing."""
    import numpy as np

    values = np.asarray(values, dtype="float64")
    present = values[~np.isnan(values)]
    statistics: dict[str, Any] = {"common": _common(int(present.size), int(values.size - present.size))}
    if present.size == 0:
        return statistics
    edges = np.unique(np.quantile(present, np.linspace(0.0, 1.0, QUANTILE_BINS + 1)))
    counts = _bin_counts(present, edges)
    buckets = [{"lower_bound": float(low), "upper_bound": float(high), "count": float(count)}
               for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True)] if edges.size > 1 else \
        [{"lower_bound": float(edges[0]), "upper_bound": float(edges[0]), "count": float(present.size)}]
    statistics.update({
        "mean": float(present.mean()), "sum": float(present.sum()), "std_dev": float(present.std()),
        "min": float(present.min()), "max": float(present.max()),
        "distribution": {"kll": {"buckets": buckets}},
    })
    return statistics


def _bin_counts(values: Any, edges: Any) -> Any:
    """Counts per bin between consecutive edges; values below the first or above the last edge fall
    in the outer bins, as they would for a baseline's bins met by new data."""
    import numpy as np

    if edges.size < 2:
        return np.array([values.size], dtype="float64")
    positions = np.searchsorted(edges[1:-1], values, side="right")
    return np.bincount(positions, minlength=edges.size - 1).astype("float64")


def _string_statistics(counts: Mapping[str, int], missing: int) -> dict[str, Any]:
    """The statistics of a categorical column from its value counts and its count of missing cells.
    The most frequent values come first, ties in the values' order, so that the profile is the same
    whichever order the rows were counted in."""
    ordered = sorted(((str(value), int(count)) for value, count in counts.items() if count),
                     key=lambda item: (-item[1], item[0]))
    buckets = [{"value": value, "count": float(count)} for value, count in ordered[:TOP_CATEGORIES]]
    other = float(sum(count for _, count in ordered[TOP_CATEGORIES:]))
    present = sum(count for _, count in ordered)
    statistics: dict[str, Any] = {"common": _common(present, missing), "distinct_count": float(len(ordered)),
                                  "distribution": {"categorical": {"buckets": buckets}}}
    if other:
        statistics["distribution"]["categorical"]["other_count"] = other
    return statistics


def _inferred_type(values: Any) -> str:
    import numpy as np

    present = values[~np.isnan(values)]
    return "Integral" if present.size and bool((present % 1 == 0).all()) else "Fractional"


def build_profile(features: Any, schema: Schema) -> tuple[dict[str, Any], dict[str, Any]]:
    """``statistics.json`` and ``constraints.json`` of a feature frame (numbers as floats, categories
    as text, missing as NaN), in Model Monitor's formats."""
    numeric = {name: features[name].to_numpy(dtype="float64", na_value=float("nan")) for name in schema.numeric}
    categorical = {}
    for name in schema.categorical:
        values = features[name]
        categorical[name] = (values.dropna().astype(str).value_counts().to_dict(), int(values.isna().sum()))
    return profile_from_columns(len(features), numeric, categorical, schema)


def profile_from_columns(rows: int, numeric: Mapping[str, Any],
                         categorical: Mapping[str, tuple[Mapping[str, int], int]],
                         schema: Schema) -> tuple[dict[str, Any], dict[str, Any]]:
    """``build_profile`` from what a pass over the rows gathered: each numeric column's float64 values
    (NaN for missing), each categorical column's value counts and count of missing cells."""
    summaries = {name: (_inferred_type(numeric[name]), _numeric_statistics(numeric[name])) for name in schema.numeric}
    return profile_from_summaries(rows, summaries, categorical, schema)


def numeric_summary(present: int, missing: int, moments: Mapping[str, float], edges: Sequence[float],
                    counts: Sequence[float]) -> dict[str, Any]:
    """A numeric column's ``numerical_statistics`` from figures an engine computed without handing the
    values over (Spark's aggregates): counts, ``moments`` (mean, sum, std_dev with ddof 0, min, max),
    the distinct quantile edges and the count of present values in each bin between them."""
    statistics: dict[str, Any] = {"common": _common(present, missing)}
    if present == 0:
        return statistics
    if len(edges) > 1:
        buckets = [{"lower_bound": float(low), "upper_bound": float(high), "count": float(count)}
                   for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True)]
    else:
        buckets = [{"lower_bound": float(edges[0]), "upper_bound": float(edges[0]), "count": float(present)}]
    statistics.update({name: float(moments[name]) for name in ("mean", "sum", "std_dev", "min", "max")})
    statistics["distribution"] = {"kll": {"buckets": buckets}}
    return statistics


def profile_from_summaries(rows: int, numeric: Mapping[str, tuple[str, dict[str, Any]]],
                           categorical: Mapping[str, tuple[Mapping[str, int], int]],
                           schema: Schema) -> tuple[dict[str, Any], dict[str, Any]]:
    """``profile_from_columns`` from each numeric column's inferred type ("Integral" or "Fractional")
    and ``numerical_statistics``, however computed."""
    statistics_features, constraint_features = [], []
    for name in schema.features:
        feature: dict[str, Any]
        if name in schema.numeric:
            inferred, numerical_statistics = numeric[name]
            feature = {"name": name, "inferred_type": inferred, "numerical_statistics": numerical_statistics}
            common = feature["numerical_statistics"]["common"]
            minimum = feature["numerical_statistics"].get("min")
            extra: dict[str, Any] = {"num_constraints": {"is_non_negative": bool(minimum is not None and minimum >= 0)}}
        else:
            counts, missing = categorical[name]
            inferred = "String"
            feature = {"name": name, "inferred_type": inferred,
                       "string_statistics": _string_statistics(counts, missing)}
            common = feature["string_statistics"]["common"]
            buckets = feature["string_statistics"]["distribution"]["categorical"]["buckets"]
            extra = {"string_constraints": {"domains": [bucket["value"] for bucket in buckets]}}
        completeness = float(common["num_present"] / rows) if rows else 0.0
        statistics_features.append(feature)
        constraint_features.append({"name": name, "inferred_type": inferred, "completeness": completeness, **extra})
    statistics = {"version": PROFILE_VERSION, "dataset": {"item_count": rows},
                  "features": statistics_features}
    constraints = {"version": PROFILE_VERSION, "features": constraint_features,
                   "monitoring_config": {"evaluate_constraints": "Enabled", "emit_metrics": "Enabled",
                                         "datatype_check_threshold": 1.0, "domain_content_threshold": 1.0,
                                         "distribution_constraints": {"perform_comparison": "Enabled",
                                                                      "comparison_threshold": PSI_DRIFT,
                                                                      "comparison_method": "PopulationStabilityIndex"}}}
    return statistics, constraints


def read_baseline_statistics(folder: Path | None) -> dict[str, Any] | None:
    """The baseline profile's ``statistics.json`` in ``folder`` (None: no baseline given). A folder
    without exactly one, or one that is not JSON, is bad input, in words both evaluation steps share."""
    if folder is None:
        return None
    path = container.find_single_file(folder, contract.FILES["statistics"])
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise container.ContractError(str(path), [f"the baseline profile is not valid JSON: {error}"]) from None


def population_stability_index(baseline: Sequence[float], current: Sequence[float]) -> float:
    """PSI = sum over bins of (current share - baseline share) * ln(current share / baseline share),
    with empty bins floored at a share of 1e-4 so that one empty bin does not make it infinite."""
    baseline_total, current_total = sum(baseline), sum(current)
    if baseline_total <= 0 or current_total <= 0:
        return 0.0
    psi = 0.0
    for base_count, current_count in zip(baseline, current, strict=True):
        base_share = max(base_count / baseline_total, SHARE_FLOOR)
        current_share = max(current_count / current_total, SHARE_FLOOR)
        psi += (current_share - base_share) * math.log(current_share / base_share)
    return psi


def level_of(psi: float) -> str:
    ok, watch, drift = LEVELS
    if psi >= PSI_DRIFT:
        return drift
    if psi >= PSI_WATCH:
        return watch
    return ok


def _baseline_features(statistics: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {feature["name"]: feature for feature in statistics.get("features", [])}


def _completeness(feature: Mapping[str, Any]) -> float:
    block = feature.get("numerical_statistics") or feature.get("string_statistics") or {}
    common = block.get("common", {})
    total = common.get("num_present", 0) + common.get("num_missing", 0)
    return common.get("num_present", 0) / total if total else 0.0


def baseline_inner_edges(feature: Mapping[str, Any]) -> list[float] | None:
    """The inner edges of a numeric baseline feature's bins: a present value falls in the bin numbered
    by how many of them lie at or below it (``_bin_counts``' rule; below the first bin's lower bound
    or above the last one's upper bound it falls in the outer bins). One bin: no inner edge; a
    baseline without bins (no value was present): None."""
    buckets = _numeric_buckets(feature)
    return [float(bucket["upper_bound"]) for bucket in buckets[:-1]] if buckets else None


def baseline_values(feature: Mapping[str, Any]) -> list[str]:
    """The categories a categorical baseline feature kept, in its buckets' order; any other value of
    this run's customers counts as unseen."""
    return [bucket["value"] for bucket in _categorical_distribution(feature).get("buckets", [])]


def _numeric_buckets(feature: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    buckets: list[Mapping[str, Any]] = (feature.get("numerical_statistics", {}).get("distribution", {})
                                        .get("kll", {}).get("buckets", []))
    return buckets


def _categorical_distribution(feature: Mapping[str, Any]) -> Mapping[str, Any]:
    distribution: Mapping[str, Any] = (feature.get("string_statistics", {}).get("distribution", {})
                                       .get("categorical", {}))
    return distribution


@dataclass(frozen=True)
class NumericCounts:
    """A numeric feature of this run's customers as drift reads it: present and missing cells, and
    how many present values fall in each of the baseline's bins (``baseline_inner_edges``)."""

    present: int
    missing: int
    bins: tuple[float, ...]


@dataclass(frozen=True)
class CategoricalCounts:
    """A categorical feature of this run's customers as drift reads it: present and missing cells,
    the count of each category the baseline kept (``baseline_values``' order) and of the rest."""

    present: int
    missing: int
    known: tuple[float, ...]
    unseen: float


FeatureCounts = NumericCounts | CategoricalCounts


def numeric_counts(baseline_feature: Mapping[str, Any], values: Any) -> NumericCounts:
    """``NumericCounts`` of float64 values (NaN for missing) over a baseline feature's bins."""
    import numpy as np

    values = np.asarray(values, dtype="float64")
    present = values[~np.isnan(values)]
    buckets = _numeric_buckets(baseline_feature)
    bins: tuple[float, ...] = ()
    if buckets:
        edges = np.array([buckets[0]["lower_bound"]] + [bucket["upper_bound"] for bucket in buckets], dtype="float64")
        bins = tuple(_bin_counts(present, edges).tolist())
    return NumericCounts(int(present.size), int(values.size - present.size), bins)


def categorical_counts(baseline_feature: Mapping[str, Any], values: Any) -> CategoricalCounts:
    """``CategoricalCounts`` of a pandas column (missing as NaN) against a baseline feature's categories."""
    present = values.dropna().astype(str)
    counts = present.value_counts()
    known = tuple(float(counts.get(value, 0)) for value in baseline_values(baseline_feature))
    return CategoricalCounts(len(present), int(len(values) - len(present)), known, float(len(present)) - sum(known))


def _numeric_drift(baseline: Mapping[str, Any], counts: NumericCounts) -> tuple[float, dict[str, Any]]:
    buckets = _numeric_buckets(baseline)
    if not buckets or counts.present == 0:
        return 0.0, {}
    return population_stability_index([bucket["count"] for bucket in buckets], list(counts.bins)), {}


def _categorical_drift(baseline: Mapping[str, Any], counts: CategoricalCounts) -> tuple[float, dict[str, Any]]:
    distribution = _categorical_distribution(baseline)
    buckets = distribution.get("buckets", [])
    if not buckets or counts.present == 0:
        return 0.0, {"unseen_share": 0.0}
    base = [float(bucket["count"]) for bucket in buckets]
    other = float(distribution.get("other_count", 0.0))
    # Values the baseline did not keep: its long tail ("other") or new categories. Counted together,
    # so that a category appearing after training shows up as drift.
    psi = population_stability_index(base + [other], [*counts.known, counts.unseen])
    return psi, {"unseen_share": counts.unseen / counts.present}


def measure_drift(baseline_statistics: Mapping[str, Any] | None, baseline: Mapping[str, Any] | None,
                  features: Any, schema: Schema, source: str, unavailable: str | None = None) -> dict[str, Any]:
    """``drift.json``: this run's ``features`` (a frame: numbers as float64, categories as text, missing
    as NaN) against a baseline profile (None: the first run, or a baseline version whose profile
    cannot be used, as ``unavailable`` says)."""
    counts: dict[str, FeatureCounts] = {}
    if baseline_statistics is not None and not unavailable:
        for name, feature in _baseline_features(baseline_statistics).items():
            if name in schema.features:
                counts[name] = (numeric_counts(feature, features[name].to_numpy(dtype="float64", na_value=math.nan))
                                if "numerical_statistics" in feature else categorical_counts(feature, features[name]))
    return drift_from_counts(baseline_statistics, baseline, counts, len(features), schema, source, unavailable)


def drift_from_counts(baseline_statistics: Mapping[str, Any] | None, baseline: Mapping[str, Any] | None,
                      counts: Mapping[str, FeatureCounts], rows: int, schema: Schema, source: str,
                      unavailable: str | None = None) -> dict[str, Any]:
    """``measure_drift`` from what a pass over this run's ``rows`` customers counted: for every feature
    both the schema and the baseline name, its ``NumericCounts`` (a numeric baseline feature) or its
    ``CategoricalCounts``, however computed (pandas here, Spark's aggregates on the Spark engine)."""
    report: dict[str, Any] = {"status": "baseline_unavailable" if unavailable else "no_baseline",
                              "baseline": dict(baseline or {}) if unavailable else None,
                              "current": {"rows": rows, "source": source},
                              "features": [], "missing_columns": [], "extra_columns": [], "violations": [],
                              "summary": {**dict.fromkeys(LEVELS, 0), "worst_level": LEVELS[0]}}
    if unavailable:
        report["reason"] = unavailable
    if baseline_statistics is None or unavailable:
        return report
    known = _baseline_features(baseline_statistics)
    report["status"], report["baseline"] = "compared", dict(baseline or {})
    report["missing_columns"] = sorted(name for name in known if name not in schema.features)
    report["extra_columns"] = [name for name in schema.features if name not in known]
    for name in schema.features:
        if name not in known:
            continue
        numeric = "numerical_statistics" in known[name]
        counted = counts[name]
        if numeric != isinstance(counted, NumericCounts):
            raise ValueError(f"feature '{name}': the counts are not of the baseline's kind")
        if isinstance(counted, NumericCounts):
            psi, extra = _numeric_drift(known[name], counted)
        else:
            psi, extra = _categorical_drift(known[name], counted)
        level = level_of(psi)
        baseline_completeness = _completeness(known[name])
        cells = counted.present + counted.missing
        current_completeness = counted.present / cells if cells else 0.0
        report["features"].append({
            "name": name, "type": "numeric" if numeric else "categorical", "psi": round(psi, 6), "level": level,
            "completeness": {"baseline": round(baseline_completeness, 6), "current": round(current_completeness, 6),
                             "change": round(current_completeness - baseline_completeness, 6)},
            **extra,
        })
        report["summary"][level] += 1
        if level != LEVELS[0]:
            limit = PSI_WATCH if level == LEVELS[1] else PSI_DRIFT
            report["violations"].append({
                "feature_name": name, "constraint_check_type": "data_drift_check",
                "description": f"population stability index {psi:.4f} >= {limit} against the baseline's "
                               f"{'bins' if numeric else 'categories'} ({level})"})
    for name in report["missing_columns"]:
        report["violations"].append({"feature_name": name, "constraint_check_type": "missing_column_check",
                                     "description": "in the baseline, but not among this run's features"})
    for name in report["extra_columns"]:
        report["violations"].append({"feature_name": name, "constraint_check_type": "extra_column_check",
                                     "description": "among this run's features, but not in the baseline"})
    worst = max((LEVELS.index(item["level"]) for item in report["features"]), default=0)
    report["summary"]["worst_level"] = LEVELS[worst]
    return report
