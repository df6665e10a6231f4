"""Reading the run's JSON values defensively, and writing numbers the way the report shows them.

Every part of a report's input may be missing or of the wrong type (an unusable evaluation is exactly
when people open the report): these helpers turn anything unexpected into "nothing", never an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

NOT_A_NUMBER = "–"  # shown in place of a number that is missing, not finite, or not a number


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def objects(value: Any) -> list[Mapping[str, Any]]:
    """The JSON objects in a list; anything else in it, or a value that is no list, gives nothing."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def numbers(value: Any) -> list[float] | None:
    """A list made only of finite numbers, or None."""
    if not isinstance(value, list):
        return None
    found = [number(item) for item in value]
    return [item for item in found if item is not None] if None not in found else None


def fixed(value: Any, digits: int = 4) -> str:
    found = number(value)
    return NOT_A_NUMBER if found is None else f"{found:.{digits}f}"


def signed(value: Any, digits: int = 4) -> str:
    found = number(value)
    return NOT_A_NUMBER if found is None else f"{found:+.{digits}f}"


def count(value: Any) -> str:
    found = number(value)
    return NOT_A_NUMBER if found is None else f"{found:,.0f}"


def share(part: Any, whole: Any) -> str:
    """" (27.6 %)" after a count, or nothing where the share cannot be known."""
    part_number, whole_number = number(part), number(whole)
    if part_number is None or not whole_number:
        return ""
    return f" ({100 * part_number / whole_number:.1f} %)"
