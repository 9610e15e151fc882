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
    filters = identity_filters(dimension_filters)
    if unique_identifier_list is not None:
        listed = [uid_of(item, "unique_identifier_list") for item in list_argument(unique_identifier_list, "unique_identifier_list")]
        if UNIQUE_IDENTIFIER in filters:  # it replaced the other: rows of identifiers outside it came back
            allowed = set(filters[UNIQUE_IDENTIFIER])
            listed = [uid for uid in listed if uid in allowed]
        filters[UNIQUE_IDENTIFIER] = listed
    return filters


def identity_filters(dimension_filters: Any, *, single_values: bool = False) -> dict[str, list[str]]:
    """``dimension_filters`` (a dimension -> its values) with each value checked to be a string, as
    identities are stored (a number reached Arrow as "Expected bytes, got a 'int' object"); with
    ``single_values`` a bare string is one value, otherwise it is refused (see ``list_argument``).

    Example:
        >>> identity_filters({"unique_identifier": [7]})
        Traceback (most recent call last):
        lakenodes.errors.LakenodesUserError: dimension_filters['unique_identifier'] holds int 7: it selects an identity dimension, whose values are strings, e.g. '7'
    """
    if dimension_filters is not None and not isinstance(dimension_filters, Mapping):
        raise LakenodesUserError("dimension_filters must map a dimension to a list of values, e.g. "
                                 f"{{'unique_identifier': ['AAPL']}}, got {type(dimension_filters).__name__} {dimension_filters!r}")
    filters = {}
    for dim, values in (dimension_filters or {}).items():
        argument = f"dimension_filters[{dim!r}]"
        listed = [values] if single_values and isinstance(values, str) else list_argument(values, argument)
        filters[dim] = [identity_value(value, argument) for value in listed]
    return filters


def identity_value(value: Any, argument: str) -> str:
    """One value of an identity dimension: a string (identities are stored as strings)."""
    if not isinstance(value, str):
        example = f", e.g. {str(value)!r}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        raise LakenodesUserError(f"{argument} holds {type(value).__name__} {value!r}: it selects an identity dimension, "
                                 f"whose values are strings{example}")
    return value


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


def ranges_from_uid_map(range_map: Mapping[str, Mapping[str, Any]], dimension: str = UNIQUE_IDENTIFIER,
                        argument: str = "unique_identifier_range_map") -> list[RangeFilter]:
    """The ranges of a map keyed by the values of ``dimension`` (by default ``unique_identifier``);
    anything else is refused naming ``argument`` and what it got."""
    if not isinstance(range_map, Mapping):
        hint = ("; a list of {'coordinate': ...} entries is a dimension_range_map"
                if isinstance(range_map, list) and argument != "range_descriptor" else "")
        raise LakenodesUserError(f"{argument} must map unique_identifier -> {{'start_date': ..., "
                                 f"'start_date_operand': '>='}}, got {type(range_map).__name__} {range_map!r}{hint}")
    return [RangeFilter({dimension: uid_of(uid, "a range map key")}, **_window(spec)) for uid, spec in range_map.items()]


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
        coordinate = {dim: identity_value(value, f"dimension_range_map coordinate {dim!r}") for dim, value in coordinate.items()}
        ranges.append(RangeFilter(coordinate, **_window(spec, also=("coordinate",))))
    return ranges


def uid_of(item: Any, argument: str = "each asset") -> str:
    """The unique_identifier of a string or an Asset; anything else is refused, naming ``argument``."""
    if isinstance(item, str):
        return item
    if not isinstance(getattr(item, "unique_identifier", None), str):
        raise LakenodesUserError(f"{argument}: expected a unique_identifier string or an Asset, "
                                 f"got {type(item).__name__} {item!r}")
    return item.unique_identifier


def asset_list_argument(assets: Any, argument: str) -> list[Any] | None:
    """A list of assets (Assets or unique_identifier strings) as given, or None; a bare string (read
    as its characters, 'AAPL' as the assets 'A', 'A', 'P', 'L') or an item without a
    unique_identifier is refused, naming ``argument``.

    Example:
        >>> asset_list_argument("AAPL", "get_asset_list()")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        lakenodes.errors.LakenodesUserError: get_asset_list() must be a list, got 'AAPL'; wrap a single value as ['AAPL']
    """
    if assets is None:
        return None
    assets = list_argument(assets, argument)
    for asset in assets:
        uid_of(asset, argument)
    return assets


def list_argument(values: Any, argument: str) -> list[Any]:
    """A list argument (a list, tuple, set, Series or array). A bare string or a single Asset is
    refused (either would be read as its characters or fields), and so is a table (a DataFrame
    iterates its column names)."""
    if isinstance(values, (str, bytes)) or isinstance(getattr(values, "unique_identifier", None), str):
        raise LakenodesUserError(f"{argument} must be a list, got {values!r}; wrap a single value as [{values!r}]")
    if len(getattr(values, "shape", ())) == 2:
        raise LakenodesUserError(f"{argument} must be a list, got a {type(values).__name__} (a table): "
                                 "pass one of its columns, e.g. frame['unique_identifier'].to_list()")
    if not isinstance(values, Iterable):
        raise LakenodesUserError(f"{argument} must be a list, got {type(values).__name__} {values!r}")
    return list(values)


def flag_argument(value: Any, argument: str) -> bool:
    """A yes/no argument: a bool (numpy's too); anything else (``"no"`` is truthy) is refused."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise LakenodesUserError(f"{argument} must be True or False, got {value!r}")
    return bool(value)
