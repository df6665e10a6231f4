"""Where the settings are read from and how their text becomes values: the variables a load reads
(of ``os.environ``, or of a mapping given to ``load_settings``), the parsers of the list and mapping
variables, and the one message that names every bad variable. ``churn_pipeline.domain.settings``
holds the settings themselves; nothing else needs this module.

The variables are read here rather than by ``pydantic-settings``: the DAG files read the settings
when the scheduler parses them, and importing ``pydantic-settings`` (with its dotenv, CLI and cloud
sources) cost a third of what parsing the training DAG added over a DAG of its shape; pydantic
itself is already loaded by Airflow. It also leaves MWAA one package fewer to install.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

ENV_PREFIX = "CHURN_"
# Fields that fall back on a variable of another tool when their own is unset.
ALSO_READ = {"region": ("AWS_DEFAULT_REGION",)}


def variable_values(fields: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The text of each field's variable (``CHURN_<FIELD>``, then its ``ALSO_READ`` ones) that is set
    and not empty, from ``environ`` (default ``os.environ``); names match in any case."""
    source = {name.upper(): value for name, value in (os.environ if environ is None else environ).items()}
    values = {}
    for field in fields:
        for variable in (f"{ENV_PREFIX}{field}".upper(), *ALSO_READ.get(field, ())):
            value = source.get(variable)
            if value:  # an empty variable counts as unset, as an empty form field would
                values[field] = value
                break
    return values


def comma_list(value: Any) -> Any:
    """``"a, b,,c"`` -> ``("a", "b", "c")``; anything not text is left to the field's own type."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def parse_tags(value: Any) -> Any:
    """``"team=ml,cost-center=42"`` -> ``{"team": "ml", "cost-center": "42"}``."""
    if not isinstance(value, str):
        return value
    tags = {}
    for item in comma_list(value):
        key, separator, tag_value = item.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"must look like 'team=ml,cost-center=42', got the item {item!r}")
        tags[key.strip()] = tag_value.strip()
    return tags


def parse_risk_bands(value: Any) -> Any:
    """``"high=0.7,medium=0.4,low=0"`` -> ``{"high": 0.7, "medium": 0.4, "low": 0.0}``, in that order."""
    if not isinstance(value, str):
        return value
    bands: dict[str, float] = {}
    for item in comma_list(value):
        name, separator, bound = item.partition("=")
        try:
            bands[name.strip()] = float(bound)
        except ValueError:
            raise ValueError(f"must look like 'high=0.7,medium=0.4,low=0', got the item {item!r}") from None
        if not separator or not name.strip():
            raise ValueError(f"must look like 'high=0.7,medium=0.4,low=0', got the item {item!r}")
    return bands


def _variable(location: tuple[int | str, ...]) -> str:
    return f"{ENV_PREFIX}{str(location[0]).upper()}" if location else "settings"


_FRIENDLY = {
    "literal_error": "must be one of {expected}",
    "int_parsing": "must be a whole number",
    "bool_parsing": "must be true or false",
    "greater_than_equal": "must be at least {ge}",
}


def problems(error: ValidationError) -> list[str]:
    """One line per bad variable, naming it as a person sets it (``CHURN_RETRIES must be ...``)."""
    found = []
    for item in error.errors():
        context = dict(item.get("ctx") or {})
        context["expected"] = str(context.get("expected", "")).replace("'", "").replace(" or ", ", ")
        if item["type"] in _FRIENDLY:
            message = _FRIENDLY[item["type"]].format(**context) + f", got {item['input']!r}"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
        found.append(f"{_variable(item['loc'])} {message}" if item["loc"] else message)
    return found
