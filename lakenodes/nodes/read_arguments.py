"""The arguments of the read methods (``get_df_between_dates`` and its kin), checked and turned
into the store's terms: a mistyped one is a one-line ``LakenodesUserError`` naming it, never a
silently different read.

Example:
    >>> [f.coordinate for f in ranges_from_uid_map({"AAPL": {"start_date": "2026-01-02"}})]
    [{'unique_identifier': 'AAPL'}]
    >>> ranges_from_uid_map({"AAPL": {"start": "2026-01-02"}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    lakenodes.errors.LakenodesUserError: unknown range key(s) 'start'; a range takes 'start_date', ...
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._internal.datetimes import parse_datetime
from ..core.frames import UNIQUE_IDENTIFIER
from ..errors import LakenodesUserError
from ..lake.store import RangeFilter

_OPERANDS = {">=": True, ">": False, "<=": True, "<": False}


def _operand(value: str, argument: str, allowed: tuple[str, str]) -> bool:
    if value not in allowed:
        raise LakenodesUserError(f"{argument} must be one of {allowed}, got {value!r}")
    return _OPERANDS[value]


def dimension_filters_argument(dimension_filters: Any, unique_identifier_list: Any) -> dict[str, list[Any]]:
    """The value filters of a read; ``unique_identifier_list`` and a ``unique_identifier`` entry of
    ``dimension_filters`` both apply (the identifiers in both), as every other filter does.

    Example:
        >>> dimension_filters_argument({"unique_identifier": ["AAPL", "MSFT"]}, ["NVDA", "MSFT"])
        {'unique_identifier': ['MSFT']}
    """
    if dimension_filters is not None and not isinstance(dimension_filters, Mapping):
        raise LakenodesUserError("dimension_filters must map a dimension to a list of values, e.g. {'unique_identifier': ['AAPL']}")
    filters = {dim: list_argument(values, f"dimension_filters[{dim!r}]") for dim, values in (dimension_filters or {}).items()}
    if unique_identifier_list is not None:
        listed = [uid_of(item) for item in list_argument(unique_identifier_list, "unique_identifier_list")]
        if UNIQUE_IDENTIFIER in filters:  # it replaced the other: rows of identifiers outside it came back
            allowed = set(filters[UNIQUE_IDENTIFIER])
            listed = [uid for uid in listed if uid in allowed]
        filters[UNIQUE_IDENTIFIER] = listed
    return filters


_RANGE_KEYS = ("start_date", "start_date_operand", "end_date", "end_date_operand")


def _window(spec: Mapping[str, Any], also: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise LakenodesUserError(f"a range must be a mapping like {{'start_date': ..., 'start_date_operand': '>='}}, got {spec!r}")
    unknown = [key for key in spec if key not in (*also, *_RANGE_KEYS)]
    if unknown:  # a misspelt bound would otherwise be dropped: the read would return rows outside the range
        raise LakenodesUserError(f"unknown range key(s) {', '.join(map(repr, unknown))}; a range takes "
                                 f"{', '.join(map(repr, (*also, *_RANGE_KEYS)))}")
    start_inclusive = _operand(spec.get("start_date_operand", ">="), "start_date_operand", (">=", ">"))
    end_inclusive = _operand(spec.get("end_date_operand", "<="), "end_date_operand", ("<=", "<"))
    return _bounds(spec.get("start_date"), spec.get("end_date"), start_inclusive, end_inclusive)


def bounds_argument(start_date: Any, end_date: Any, great_or_equal: Any, less_or_equal: Any) -> dict[str, Any]:
    """A read's time bounds in the store's terms (``start``, ``start_inclusive``, ``end``, ``end_inclusive``).

    Example (a bound between two microseconds keeps its meaning: ``>= 00:00:00.0000005`` is ``>= 00:00:00.000001``):
        >>> bounds_argument("2026-01-02T00:00:00.0000005Z", None, True, True)["start"].microsecond
        1
    """
    return _bounds(start_date, end_date, flag_argument(great_or_equal, "great_or_equal"),
                   flag_argument(less_or_equal, "less_or_equal"))


def _bounds(start: Any, end: Any, start_inclusive: bool, end_inclusive: bool) -> dict[str, Any]:
    # stored times are microseconds: a bound between two of them is rounded towards the rows it admits
    return {"start": parse_datetime(start, "start_date", round_up=start_inclusive), "start_inclusive": start_inclusive,
            "end": parse_datetime(end, "end_date", round_up=not end_inclusive), "end_inclusive": end_inclusive}


def ranges_from_uid_map(range_map: Mapping[str, Mapping[str, Any]], dimension: str = UNIQUE_IDENTIFIER) -> list[RangeFilter]:
    """The ranges of a map keyed by the values of ``dimension`` (by default ``unique_identifier``)."""
    if not isinstance(range_map, Mapping):
        raise LakenodesUserError("unique_identifier_range_map must map unique_identifier -> {start_date, ...}")
    return [RangeFilter({dimension: uid_of(uid)}, **_window(spec)) for uid, spec in range_map.items()]


def asset_dimension(identity_dimensions: Sequence[str]) -> str:
    """The dimension a per-asset key names (``UpdateStatistics``' maps, ``get_last_observation``'s
    assets): ``unique_identifier`` when the table has it, else its first identity dimension.

    Example:
        >>> asset_dimension(["account_uid", "unique_identifier"]), asset_dimension(["entity_uid"])
        ('unique_identifier', 'entity_uid')
    """
    if UNIQUE_IDENTIFIER in identity_dimensions or not identity_dimensions:
        return UNIQUE_IDENTIFIER
    return identity_dimensions[0]


def ranges_from_dimension_map(range_map: Sequence[Mapping[str, Any]]) -> list[RangeFilter]:
    if isinstance(range_map, (str, Mapping)):
        raise LakenodesUserError("dimension_range_map must be a list of {'coordinate': {...}, 'start_date': ...} entries")
    ranges = []
    for spec in range_map:
        coordinate = spec.get("coordinate") if isinstance(spec, Mapping) else None
        if not isinstance(coordinate, Mapping) or not coordinate:
            raise LakenodesUserError(f"each dimension_range_map entry needs a 'coordinate' mapping, got {spec!r}")
        ranges.append(RangeFilter(dict(coordinate), **_window(spec, also=("coordinate",))))
    return ranges


def uid_of(item: Any) -> str:
    if isinstance(item, str):
        return item
    if not isinstance(getattr(item, "unique_identifier", None), str):
        raise LakenodesUserError(f"expected a unique_identifier string or an Asset, got {item!r}")
    return item.unique_identifier


def list_argument(values: Any, argument: str) -> list[Any]:
    """A list argument; a bare string is refused (it would be read as its characters)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise LakenodesUserError(f"{argument} must be a list, got {values!r}; wrap a single value as [{values!r}]")
    return list(values)


def flag_argument(value: Any, argument: str) -> bool:
    """A yes/no argument: a bool (numpy's too); anything else (``"no"`` is truthy) is refused."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise LakenodesUserError(f"{argument} must be True or False, got {value!r}")
    return bool(value)
