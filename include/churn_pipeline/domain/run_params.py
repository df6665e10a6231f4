"""The params of each DAG, as JSON schemas: one definition for Airflow's ``Param`` (so the UI's trigger
form, the REST API and ``airflow dags trigger`` refuse what breaks them) and for the pre-check of
``make run`` / ``churn conf``, which refuses the same things in one line before Airflow starts a run,
and refuses keys no param has, which Airflow itself passes through unnoticed.

A param is a name, a default and the JSON-schema keywords Airflow's ``Param`` takes (``type``,
``minimum``, ``maximum``, ``enum``, ``minLength``, ``description``). To add one, add a ``RunParam`` to
its DAG's tuple below: both checks follow.

Numbers are finite: every number has bounds (which refuse infinities), and ``FINITE`` refuses NaN,
which passes every comparison a JSON schema can make. Python's ``json`` reads ``NaN`` and
``Infinity``, and the REST API stores a NaN as null, so that every task of the run, its failure
notification included, would fail at start.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from churn_pipeline.domain.economics import default_economics
from churn_pipeline.domain.gate import (
    DEFAULT_ACCURACY_THRESHOLD,
    DEFAULT_CHAMPION_METRIC,
    DEFAULT_MIN_IMPROVEMENT,
    CompareMode,
    DriftMode,
)
from churn_pipeline.domain.model_defaults import comparable_metric_names
from churn_pipeline.domain.settings import ENGINE_CHOICES

PIPELINE_DAG = "customer_churn_pipeline"
SCORING_DAG = "customer_churn_scoring"
APPROVAL_DAG = "customer_churn_approval"
OUTCOME_DAG = "customer_churn_outcomes"
ECONOMICS = default_economics()

# No real number is both >= 1 and <= 0; NaN is, since every comparison with it is false and a JSON
# schema's bounds only fail on a true one. So ``not`` this refuses NaN and nothing else.
FINITE: dict[str, Any] = {"not": {"minimum": 1, "maximum": 0}}
JSON_TYPES = {"string": "a string", "number": "a number", "integer": "an integer", "boolean": "true or false",
              "null": "null", "object": "an object", "array": "a list"}


class RunParamsError(ValueError):
    """Params a DAG refuses; the message is one line naming the key, the value and what is allowed."""


@dataclass(frozen=True)
class RunParam:
    name: str
    default: Any
    schema: Mapping[str, Any]  # the JSON-schema keywords of Airflow's Param, description included


def _number(name: str, default: float, low: float, high: float, description: str) -> RunParam:
    return RunParam(name, default, {"type": "number", "minimum": low, "maximum": high, **FINITE,
                                    "description": description})


def pipeline_params(default_input_uri: str, default_schema_uri: str,
                    default_engine: str = "auto") -> tuple[RunParam, ...]:
    """The training DAG's params; ``default_engine`` is the deployment's ``CHURN_ENGINE``."""
    return (
        RunParam("input_uri", default_input_uri, {
            "type": "string", "minLength": 1,
            "description": "Customers (CSV or Parquet): an s3:// object or prefix (locally also a path); unused "
                           "when a source is configured"}),
        # optional: null, so that the UI's trigger form accepts it empty (an empty string fails its check)
        RunParam("source_query", None, {
            "type": ["null", "string"],
            "description": "SQL run on the source connection instead of CHURN_SOURCE_QUERY (empty: the setting)"}),
        RunParam("schema_uri", default_schema_uri, {
            "type": "string", "minLength": 1,
            "description": "Data contract: an s3:// object or a file path (the bundled default)"}),
        _number("accuracy_threshold", DEFAULT_ACCURACY_THRESHOLD, 0, 1,
                "Register the model only at or above this test accuracy"),
        RunParam("champion_metric", DEFAULT_CHAMPION_METRIC, {
            "type": "string", "enum": list(comparable_metric_names()),
            "description": "The metric the new model must match the approved champion on"}),
        _number("min_improvement", DEFAULT_MIN_IMPROVEMENT, -1, 1,
                "How much better than the champion it must be (0: not worse; for expected_profit a share "
                "of the champion's profit)"),
        RunParam("compare_with_champion", CompareMode.ENFORCE.value, {
            "type": "string", "enum": [mode.value for mode in CompareMode],
            "description": "enforce: must beat the champion; report: compare only; off"}),
        RunParam("drift_mode", DriftMode.WARN.value, {
            "type": "string", "enum": [mode.value for mode in DriftMode],
            "description": "warn: report drift; block: drift blocks registration; off"}),
        # the retention campaign (the AWS churn example's cost matrix by default); that a churner is worth
        # at least an offer is checked across params by stage_inputs, before any job
        RunParam("value_retained", ECONOMICS["value_retained"], {
            "type": "number", "minimum": 0, **FINITE,
            "description": "What keeping a churner is worth (at least offer_cost)"}),
        RunParam("offer_cost", ECONOMICS["offer_cost"], {
            "type": "number", "minimum": 0, **FINITE, "description": "What one retention offer costs (not negative)"}),
        _number("offer_acceptance", ECONOMICS["offer_acceptance"], 0, 1,
                "Share of contacted churners the offer keeps (0 to 1)"),
        RunParam("engine", default_engine, {
            "type": "string", "enum": list(ENGINE_CHOICES),
            "description": "auto: scikit-learn while every job fits its instance, Spark past it; sklearn; spark "
                           "(SageMaker's Spark processing image, every step a processing job)"}),
        RunParam("max_run_cost", None, {
            "type": ["null", "number"], "minimum": 0, "not": {"type": "number", **FINITE["not"]},
            "description": "Refuse to start a job that may cost more than this (its longest allowed run x "
                           "instances x CHURN_INSTANCE_PRICES); empty: no limit"}),
    )


def scoring_params(default_input_uri: str) -> tuple[RunParam, ...]:
    return (RunParam("input_uri", default_input_uri, {
        "type": "string", "minLength": 1,
        "description": "The customer table: an s3:// CSV or Parquet object or prefix (locally also a file or "
                       "folder path)"}),)


def outcome_params(default_labels_uri: str) -> tuple[RunParam, ...]:
    return (RunParam("labels_uri", default_labels_uri, {
        "type": "string", "minLength": 1,
        "description": "Where the churn labels are, when no source is configured (CHURN_SOURCE_CONN_ID): the "
                       "current customer table (the default) or a labels table with the schema's id and target "
                       "columns; an s3:// CSV or Parquet object or prefix (locally also a file or folder path)"}),
            RunParam("source_query", "", {
                "type": "string",
                "description": "With a source configured: this run's SQL for the labels instead of "
                               "CHURN_SOURCE_QUERY (empty: the setting's)"}))


def approval_params(statuses: Sequence[str], default_status: str) -> tuple[RunParam, ...]:
    return (
        RunParam("version", 1, {"type": "integer", "minimum": 1,
                                "description": "The registered version to approve or reject"}),
        RunParam("status", default_status, {"type": "string", "enum": list(statuses), "description": "Its new status"}),
    )


def _shown(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return {math.inf: "Infinity", -math.inf: "-Infinity"}.get(value, "NaN")
    if isinstance(value, str):
        return repr(value)
    return repr(value) if not isinstance(value, bool) else str(value).lower()


def _has_type(value: Any, json_type: str) -> bool:
    if json_type == "null":
        return value is None
    if json_type == "boolean":
        return isinstance(value, bool)
    if json_type == "string":
        return isinstance(value, str)
    if json_type == "integer":
        whole = isinstance(value, float) and value.is_integer()  # 1.0 is an integer to a JSON schema
        return (isinstance(value, int) and not isinstance(value, bool)) or whole
    if json_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return False


def _bounds(schema: Mapping[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _problem(param: RunParam, value: Any) -> str | None:
    """What is wrong with ``value`` for ``param``, in words; None when it fits."""
    schema = param.schema
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if not any(_has_type(value, json_type) for json_type in types):
        wanted = " or ".join(JSON_TYPES[json_type] for json_type in types)
        return f"{param.name} must be {wanted}, not {_shown(value)}"
    if value is None:
        return None
    if "enum" in schema and value not in schema["enum"]:
        return f"{param.name} must be one of {', '.join(map(str, schema['enum']))}, not {_shown(value)}"
    if isinstance(value, str) and len(value.strip()) < schema.get("minLength", 0):
        return f"{param.name} must not be empty"
    if isinstance(value, int | float) and ("minimum" in schema or "maximum" in schema):
        low, high = schema.get("minimum", -math.inf), schema.get("maximum", math.inf)
        if not (math.isfinite(value) and low <= value <= high):
            noun = JSON_TYPES["integer" if "integer" in types else "number"]
            return f"{param.name} must be {noun} {_bounds(schema)}, not {_shown(value)}"
    return None


def unknown_keys(params: Sequence[RunParam], conf: Mapping[str, Any], dag_id: str) -> str | None:
    """The sentence refusing keys no param of the DAG has, each with its nearest param; None without any."""
    names = [param.name for param in params]
    unknown = [key for key in conf if key not in names]
    if not unknown:
        return None
    guesses = []
    for key in unknown:
        near = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        guesses.append(f"{key!r}" + (f" (did you mean {near[0]}?)" if near else ""))
    return f"{dag_id} has no param {', '.join(guesses)}; its params: {', '.join(names)}"


def check_conf(params: Sequence[RunParam], conf: Mapping[str, Any], dag_id: str) -> None:
    """Refuse a run's conf as the DAG would, and keys it would silently ignore: one RunParamsError whose
    message is one line, the first problem found (unknown keys first: a misspelt key is a typo, not a
    choice)."""
    problem = unknown_keys(params, conf, dag_id)
    for param in params:
        if problem is None and param.name in conf:
            problem = _problem(param, conf[param.name])
    if problem:
        raise RunParamsError(problem)
