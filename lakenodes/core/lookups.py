"""Django-style lookups over catalog records: ``identifier__contains="px"``, ``ticker__in=[...]``.

Supported operators: ``exact`` (the default), ``in``, ``contains``, ``icontains``,
``startswith``, ``gt``/``gte``/``lt``/``lte``, ``isnull``. ``labels__contains`` tests list
membership; ``columns__contains`` a column's name. A value given as text (as typed on a command
line) is read as the field's type: ISO 8601 for datetimes (``2026-12-03``, ``2026-12-03T09:30:00Z``;
no offset means UTC, as for a naive datetime or a date given in Python) and dates, a number for
numbers, ``true``/``false`` for flags.

Example:
    >>> import datetime
    >>> record = {"recorded_at": datetime.datetime(2026, 12, 3, 9, 30, tzinfo=datetime.UTC), "rows": 12}
    >>> matches_lookups(record, {"recorded_at__gte": "2026-12-03", "rows__lt": "20"})
    True
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from .._internal.datetimes import parse_datetime
from ..errors import LakenodesUserError, NotFoundError

OPERATORS = ("exact", "in", "contains", "icontains", "startswith", "gt", "gte", "lt", "lte", "isnull")


def split_lookup(key: str) -> tuple[str, str]:
    """``"identifier__contains"`` → ``("identifier", "contains")``; a bare name means exact."""
    field, _, operator = key.partition("__")
    return field, operator or "exact"


def prepared_lookups(lookups: Mapping[str, Any]) -> dict[str, Any]:
    """``lookups`` ready to be matched against many records: an ``__in`` iterable read once into a
    list (a generator matched only the first record), a string or a scalar there refused.

    Example:
        >>> prepared_lookups({"ticker__in": (t for t in ["NVDA", "AAPL"]), "name": "x"})
        {'ticker__in': ['NVDA', 'AAPL'], 'name': 'x'}
    """
    prepared = dict(lookups)
    for key, expected in lookups.items():
        field, operator = split_lookup(key)
        if operator == "in":
            prepared[key] = _listed(expected)
        elif operator in ("contains", "icontains", "startswith") and isinstance(expected, (list, tuple, set, frozenset)):
            # labels__contains=["daily"] matched nothing, silently (no label is a list)
            raise LakenodesUserError(f"{key} takes one value, got {type(expected).__name__} {expected!r}: e.g. "
                                     f"{key}={next(iter(expected), 'x')!r} (for any of several exact values: "
                                     f"{field}__in=[...])")
    return prepared


def _listed(expected: Any) -> list[Any]:
    """The values of an ``__in`` lookup as a list."""
    if isinstance(expected, (str, bytes)) or not hasattr(expected, "__iter__"):
        raise LakenodesUserError(f"__in expects a list, got {expected!r}")
    return list(expected)


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
        if not _matches(value, operator, expected, key):
            return False
    return True


def _matches(value: Any, operator: str, expected: Any, key: str) -> bool:
    if operator == "isnull":
        return (value is None) == bool(expected)
    if operator == "in":
        return value in [_as_type_of(value, item, key) for item in _listed(expected)]
    if value is not None and operator in ("exact", "gt", "gte", "lt", "lte"):
        expected = _as_type_of(value, expected, key)
    if operator == "exact":
        return value == expected
    if value is None:
        return False
    if isinstance(value, (list, tuple)):  # membership: a column (a record with a name) matches by its name
        items = [getattr(item, "column_name", item) for item in value]
        if operator == "icontains":
            return any(str(expected).lower() == str(item).lower() for item in items)
        if operator == "contains":
            return expected in items
    if operator == "contains":  # identifier__contains=5 looks for "5", as icontains and startswith do
        return str(expected) in value if isinstance(value, str) else expected in value
    if operator == "icontains":
        return str(expected).lower() in str(value).lower()
    if operator == "startswith":
        return str(value).startswith(str(expected))
    try:
        return {"gt": value > expected, "gte": value >= expected, "lt": value < expected,
                "lte": value <= expected}[operator]
    except TypeError:
        raise LakenodesUserError(
            f"lookup {key}={expected!r}: cannot compare it with the field's {type(value).__name__} values") from None


def _as_type_of(value: Any, expected: Any, key: str) -> Any:
    """``expected`` as the type of the stored ``value`` when it was given as text (a command line's
    filters are text), or as a naive datetime or a date where an aware datetime is stored (read as
    UTC, as text without an offset is); anything else as it is.

    Example:
        >>> stored = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        >>> _as_type_of(stored, datetime.date(2026, 1, 1), "at") == stored, _as_type_of(True, "false", "flag")
        (True, False)
    """
    if isinstance(value, datetime.datetime) and value.tzinfo is not None and isinstance(expected, datetime.date):
        if not isinstance(expected, datetime.datetime):
            expected = datetime.datetime.combine(expected, datetime.time())
        return expected if expected.tzinfo is not None else expected.replace(tzinfo=datetime.UTC)
    if isinstance(value, bool) and isinstance(expected, str):
        return parse_flag(expected, f"lookup {key}")
    if not isinstance(expected, str) or value is None or isinstance(value, str):
        return expected
    if isinstance(value, datetime.datetime):
        moment = parse_datetime(expected, f"lookup {key}")
        return moment if value.tzinfo is not None else moment.replace(tzinfo=None)
    try:
        if isinstance(value, datetime.date):
            return datetime.date.fromisoformat(expected.strip())
        if isinstance(value, int):
            return int(expected)
        if isinstance(value, float):
            return float(expected)
    except ValueError:
        kind = "an ISO 8601 date (e.g. 2026-12-03)" if isinstance(value, datetime.date) else f"a {type(value).__name__}"
        raise LakenodesUserError(f"lookup {key}={expected!r}: expected {kind}") from None
    return expected


_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_flag(text: str, what: str) -> bool:
    """``true``/``1``/``yes`` or ``false``/``0``/``no`` (any case); ``what`` names the value in the error.

    Example:
        >>> parse_flag(" Yes", "--filter deleted"), parse_flag("0", "lookup deleted")
        (True, False)
    """
    flag = _FLAGS.get(text.strip().lower())
    if flag is None:
        raise LakenodesUserError(f"{what}={text!r}: expected true or false")
    return flag


def exactly_one(found: list[Any], lookups: Mapping[str, Any], what: str) -> Any:
    """The single match of a ``get``: NotFoundError when none, LakenodesUserError when several."""
    if not found:
        raise NotFoundError(f"no {what} matches {dict(lookups)}")
    if len(found) > 1:
        raise LakenodesUserError(f"{len(found)} {what}s match {dict(lookups)}; narrow the lookup")
    return found[0]
