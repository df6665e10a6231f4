"""Where the settings are read from and how their text becomes values: the environment a load reads
(``os.environ``, or a mapping given to ``load_settings``), the parsers of the list and mapping
variables, and the one message that names every bad variable. ``churn_pipeline.domain.settings``
holds the settings themselves; nothing else needs this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

ENV_PREFIX = "CHURN_"

# The environment a load reads: os.environ, or the mapping given to load_settings (tests, tools).
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("churn_settings_environ", default=None)


class MappingEnvSource(EnvSettingsSource):
    """The ``CHURN_*`` variables of ``load_settings``'s mapping when one is given, else ``os.environ``."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        return parse_env_vars(os.environ if environ is None else environ, self.case_sensitive,
                              self.env_ignore_empty, self.env_parse_none_str)


@contextmanager
def reading(environ: Mapping[str, str] | None) -> Iterator[None]:
    """Make ``MappingEnvSource`` read ``environ`` (None: ``os.environ``) for the duration."""
    token = _ENVIRON.set(environ)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


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
