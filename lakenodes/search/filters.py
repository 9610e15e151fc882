"""Search filters: the catalog lookups a search accepts, as a SQL predicate over the index rows.

Example:
    >>> filters_to_sql({"namespace": "", "labels__contains": "fx"})
    "namespace = '' AND array_has(labels, 'fx')"
"""

from __future__ import annotations

from typing import Any

from .._internal.sql_text import sql_string
from .errors import SearchArgumentError

__all__ = ["FILTER_KEYS", "filters_to_sql", "sql_str"]

FILTER_KEYS = ("namespace", "labels__contains", "identifier__contains", "data_frequency_id", "uid__in")


def sql_str(value: Any, key: str) -> str:
    """``value`` as a quoted SQL string literal; SearchArgumentError naming ``key`` if not a string.

    >>> sql_str("o'hare", "identifier__contains")
    "'o''hare'"
    """
    if not isinstance(value, str):
        raise SearchArgumentError(f"search filter {key!r} expects a string, got {type(value).__name__}")
    return sql_string(value)


def filters_to_sql(filters: dict[str, Any] | None) -> str | None:
    """SQL predicate for the supported filters (all must hold); SearchArgumentError on an unknown key.

    ``namespace`` and ``data_frequency_id`` are exact matches, ``labels__contains`` requires the label
    to be one of the table's labels, ``identifier__contains`` is a case-sensitive substring match
    (tables without an identifier never match), ``uid__in`` a list of table uids. No filters give None.
    """
    if filters is not None and not isinstance(filters, dict):
        raise SearchArgumentError(f"search filters must be a dict, got {type(filters).__name__}")
    clauses = []
    for key, value in (filters or {}).items():
        if key == "namespace":
            clauses.append(f"namespace = {sql_str(value, key)}")
        elif key == "labels__contains":
            clauses.append(f"array_has(labels, {sql_str(value, key)})")
        elif key == "identifier__contains":
            clauses.append(f"strpos(identifier, {sql_str(value, key)}) > 0")
        elif key == "data_frequency_id":
            clauses.append(f"data_frequency_id = {sql_str(value, key)}")
        elif key == "uid__in":
            uids = [sql_str(uid, key) for uid in _string_list(value, key)]
            clauses.append(f"uid IN ({', '.join(uids)})" if uids else "uid IS NULL")  # uid is never null
        else:
            raise SearchArgumentError(
                f"unknown search filter {key!r}; supported filters: {', '.join(FILTER_KEYS)}"
            )
    return " AND ".join(clauses) or None


def _string_list(value: Any, key: str) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise SearchArgumentError(f"search filter {key!r} expects a list of strings, got {type(value).__name__}")
    return list(value)
