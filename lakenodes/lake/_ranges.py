"""Reads scoped by ranges: each identity coordinate within its own time window.

A handful of ranges become one pyarrow filter ``(c1 & w1) | (c2 & w2) | ...``. The scanner
evaluates that term by term on every batch, so the latest row of 1,000 assets took 80 s to read
(and 10,000 terms overflowed the stack). Past ``MANY_RANGES``, the scan filters only on the
ranges' outer time window (files are chosen by identity as always) and each row is then matched to
its own range by a hash join on the coordinate: milliseconds at 10,000 assets. Ranges that all
share one window (the latest row of assets updated together) need no join: the rows are filtered
on their coordinates and that window (at 200 assets, 0.7 ms instead of the join's 1.7).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from .._internal.deferred import pa, pc, pds
from ..core.frames import TIME_INDEX
from ._polars_scan import TimeWindow
from ._row_filters import all_of, any_of, coordinate_filter, time_window
from ._scan import outer_window

# up to this many ranges, one filter expression; past it, a coarse filter and a join
MANY_RANGES = 16
_ROW, _START, _END, _FROM_START, _TO_END = ("__lakenodes_" + name for name in ("row", "start", "end", "si", "ei"))


@dataclass(frozen=True)
class RangeFilter:
    """Rows of one identity coordinate within a time window (the shape of the seeds' range maps)."""

    coordinate: Mapping[str, str]
    start: datetime.datetime | None = None
    start_inclusive: bool = True
    end: datetime.datetime | None = None
    end_inclusive: bool = True


@dataclass(frozen=True)
class RangeSelection:
    """How a read selects the rows of its ranges: the scan ``expression`` and, when that is coarser
    than the ranges, the ``exact`` row filter for what the scan returns and the scan's ``window``."""

    expression: pds.Expression | None
    exact: Callable[[pa.Table], pa.Table] | None = None
    window: TimeWindow | None = None

    def polars_window(self, own: TimeWindow) -> TimeWindow | None:
        """The one time window that selects the scan's rows, for a read whose own bounds are
        ``own`` (None: the scan needs more than a window, e.g. one term per range)."""
        unbounded = own.start is None and own.end is None
        return self.window if self.exact is not None and unbounded else None


def range_selection(ranges: Sequence[RangeFilter]) -> RangeSelection:
    """How to read the rows of ``ranges``.

    Example:
        >>> day = lambda d: datetime.datetime(2024, 1, d, tzinfo=datetime.timezone.utc)
        >>> rows = pa.table({"time_index": [day(1), day(2), day(1)], "unique_identifier": ["A", "A", "B"]})
        >>> ranges = [RangeFilter({"unique_identifier": f"X{i}"}) for i in range(20)]
        >>> ranges += [RangeFilter({"unique_identifier": "A"}, start=day(2))]
        >>> selection = range_selection(ranges)
        >>> selection.expression is None  # some ranges are unbounded: the scan filters no rows
        True
        >>> selection.exact(rows).to_pydict()["time_index"] == [day(2)]
        True
    """
    plain = all(isinstance(value, str) and r.coordinate for r in ranges for value in r.coordinate.values())
    if len(ranges) <= MANY_RANGES or not plain:
        return RangeSelection(any_of([all_of(coordinate_filter(r.coordinate),
                                             time_window(r.start, r.start_inclusive, r.end, r.end_inclusive))
                                      for r in ranges]))
    # the identities are left to file pruning and the join: a filter on 1,000 values, simplified
    # against each of 1,000 files' partition value, doubled the read
    start, end = outer_window(ranges)
    outer = TimeWindow(start, True, end, True)
    return RangeSelection(time_window(start, True, end, True),
                          lambda rows: _rows_in_their_range(rows, ranges), outer)


def coordinates_filter(coordinates: Sequence[Mapping[str, str]]) -> pds.Expression | None:
    """Rows of any of ``coordinates`` (``{dim: value}``; None: no condition, as for an empty one).

    One term per set of dimensions, not per coordinate (an ``OR`` of 2,000 coordinates took the
    filter minutes): ``dim.isin(values)`` for one dimension; for several, the coordinate's values
    as one key, each value prefixed by its length (``"2:A1:2:XN"``: two coordinates never share a
    key, whatever their values hold), and ``key.isin(keys)``.

    Example:
        >>> rows = pa.table({"unique_identifier": ["A", "A", "B:1"], "venue": ["X:1", "X", "X"]})
        >>> rows.filter(coordinates_filter([{"unique_identifier": "A", "venue": "X"},
        ...                                 {"venue": "X", "unique_identifier": "B:1"}])).to_pydict()
        {'unique_identifier': ['A', 'B:1'], 'venue': ['X', 'X']}
        >>> rows.filter(coordinates_filter([{"venue": "X:1"}])).num_rows
        1
    """
    if not coordinates or any(not coordinate for coordinate in coordinates):
        return None
    keys: dict[tuple[str, ...], list[str]] = {}
    for coordinate in coordinates:
        dimensions = tuple(sorted(coordinate))
        values = [coordinate[dimension] for dimension in dimensions]
        keys.setdefault(dimensions, []).append(values[0] if len(values) == 1 else _key(values))
    return any_of([pds.field(dimensions[0]).isin(pa.array(values, pa.string())) if len(dimensions) == 1
                   else _key([pds.field(dimension) for dimension in dimensions]).isin(pa.array(values, pa.string()))
                   for dimensions, values in keys.items()])


def _key(values: Sequence[Any]) -> Any:
    """Values (strings, or the expressions of string columns) as one key: ``len:value`` joined by ``:``."""
    if all(isinstance(value, str) for value in values):
        return ":".join(f"{len(value)}:{value}" for value in values)
    parts = [pc.binary_join_element_wise(pc.utf8_length(value).cast(pa.string()), value, ":") for value in values]
    return pc.binary_join_element_wise(*parts, ":")


def _rows_in_their_range(rows: pa.Table, ranges: Sequence[RangeFilter]) -> pa.Table:
    """``rows`` that fall in the window of a range of their coordinate, in their order."""
    windows = {(r.start, r.start_inclusive, r.end, r.end_inclusive) for r in ranges}
    if len(windows) == 1:  # one window for all (the latest row of assets updated together): a filter, no join
        selected = all_of(coordinates_filter([r.coordinate for r in ranges]), time_window(*windows.pop()))
        return rows if selected is None else rows.filter(selected)
    by_dimensions: dict[tuple[str, ...], list[RangeFilter]] = {}
    for r in ranges:
        by_dimensions.setdefault(tuple(sorted(r.coordinate)), []).append(r)
    keys = pl.from_arrow(rows.select([TIME_INDEX, *{d for dims in by_dimensions for d in dims}]))
    keys = keys.with_row_index(_ROW)
    matched = pl.concat([
        keys.join(_bounds(dims, group, rows.schema.field(TIME_INDEX).type), on=list(dims), how="inner")
        .filter(_in_window(pl.col(TIME_INDEX))).select(_ROW)
        for dims, group in by_dimensions.items()
    ])
    return rows.take(matched.get_column(_ROW).unique().sort().to_arrow())


def _bounds(dimensions: Sequence[str], ranges: Sequence[RangeFilter], time_type: Any) -> pl.DataFrame:
    columns = {dimension: pa.array([r.coordinate[dimension] for r in ranges], pa.string()) for dimension in dimensions}
    columns[_START] = pa.array([r.start for r in ranges], time_type)
    columns[_END] = pa.array([r.end for r in ranges], time_type)
    columns[_FROM_START] = pa.array([r.start_inclusive for r in ranges], pa.bool_())
    columns[_TO_END] = pa.array([r.end_inclusive for r in ranges], pa.bool_())
    return pl.from_arrow(pa.table(columns))


def _in_window(time: pl.Expr) -> pl.Expr:
    start, end = pl.col(_START), pl.col(_END)
    after_start = start.is_null() | pl.when(pl.col(_FROM_START)).then(time >= start).otherwise(time > start)
    before_end = end.is_null() | pl.when(pl.col(_TO_END)).then(time <= end).otherwise(time < end)
    return after_start & before_end
