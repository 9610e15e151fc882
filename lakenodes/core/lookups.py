"""Django-style lookups over catalog records: ``identifier__contains="px"``, ``ticker__in=[...]``.

Supported operators: ``exact`` (the default), ``in``, ``contains``, ``icontains``,
``startswith``, ``gt``/``gte``/``lt``/``lte``, ``isnull``. ``labels__contains`` tests list
membership.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import LakenodesUserError, NotFoundError

OPERATORS = ("exact", "in", "contains", "icontains", "startswith", "gt", "gte", "lt", "lte", "isnull")


def split_lookup(key: str) -> tuple[str, str]:
    """``"identifier__contains"`` → ``("identifier", "contains")``; a bare name means exact."""
    field, _, operator = key.partition("__")
    return field, operator or "exact"


def matches_lookups(record: Any, lookups: Mapping[str, Any]) -> bool:
    """True when ``record`` (a model or mapping) satisfies every lookup."""
    for key, expected in lookups.items():
        field, operator = split_lookup(key)
        if operator not in OPERATORS:
            raise LakenodesUserError(f"unknown lookup {key!r}: operators are {', '.join(OPERATORS)}")
        if isinstance(record, Mapping):
            if field not in record:
                raise LakenodesUserError(f"unknown field {field!r} in lookup {key!r}")
            value = record[field]
        else:
            if field not in type(record).model_fields:
                raise LakenodesUserError(
                    f"unknown field {field!r} in lookup {key!r}; fields are {sorted(type(record).model_fields)}"
                )
            value = getattr(record, field)
        if not _matches(value, operator, expected):
            return False
    return True


def _matches(value: Any, operator: str, expected: Any) -> bool:
    if operator == "isnull":
        return (value is None) == bool(expected)
    if operator == "in":
        if isinstance(expected, (str, bytes)) or not hasattr(expected, "__iter__"):
            raise LakenodesUserError(f"__in expects a list, got {expected!r}")
        return value in list(expected)
    if operator == "exact":
        return value == expected
    if value is None:
        return False
    if operator == "contains":
        return expected in value
    if operator == "icontains":
        if isinstance(value, (list, tuple)):
            return any(str(expected).lower() == str(item).lower() for item in value)
        return str(expected).lower() in str(value).lower()
    if operator == "startswith":
        return str(value).startswith(str(expected))
    return {"gt": value > expected, "gte": value >= expected, "lt": value < expected, "lte": value <= expected}[operator]


def exactly_one(found: list[Any], lookups: Mapping[str, Any], what: str) -> Any:
    """The single match of a ``get``: NotFoundError when none, LakenodesUserError when several."""
    if not found:
        raise NotFoundError(f"no {what} matches {dict(lookups)}")
    if len(found) > 1:
        raise LakenodesUserError(f"{len(found)} {what}s match {dict(lookups)}; narrow the lookup")
    return found[0]
