"""Floats in lakenodes' JSON: valid JSON always, and a NaN never confused with a missing value.

JSON has no NaN or infinity; ``json.dumps`` writes the bare tokens ``NaN`` and ``Infinity``, which
JSON parsers (JavaScript's, ``jq``) refuse. lakenodes writes them as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` (the convention of protobuf's JSON mapping), so null keeps
meaning missing.

Example:
    >>> json_ready({"a": [1.5, float("nan")], "b": float("-inf")})
    {'a': [1.5, 'NaN'], 'b': '-Infinity'}
"""

from __future__ import annotations

import math
from typing import Any


def json_float(value: float) -> float | str:
    """A finite float as it is; NaN and infinities as their JSON strings."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def json_ready(value: Any) -> Any:
    """``value`` with every non-finite float (in nested dicts, lists and tuples) as its JSON string."""
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value
