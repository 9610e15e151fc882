"""Row filters as pyarrow dataset expressions: a time window, identity coordinates and values, and
their conjunction and disjunction, where None means no condition (what a scan then reads whole).

Example:
    >>> window = time_window(None, True, datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc), False)
    >>> table = pa.table({"time_index": pa.array([datetime.datetime(2026, 1, d) for d in (1, 2)], pa.timestamp("us", "UTC")),
    ...                   "unique_identifier": ["A", "B"]})
    >>> table.filter(all_of(window, one_of("unique_identifier", ["A", "B"])))["unique_identifier"].to_pylist()
    ['A']
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

from .._internal.deferred import pa, pds
from ..core.frames import TIME_INDEX


def time_window(start: datetime.datetime | None, start_inclusive: bool, end: datetime.datetime | None,
                end_inclusive: bool) -> pds.Expression | None:
    """``time_index`` within the window (None: no bound at all)."""
    expression = None
    field = pds.field(TIME_INDEX)
    if start is not None:
        bound = pa.scalar(start, pa.timestamp("us", "UTC"))
        expression = all_of(expression, field >= bound if start_inclusive else field > bound)
    if end is not None:
        bound = pa.scalar(end, pa.timestamp("us", "UTC"))
        expression = all_of(expression, field <= bound if end_inclusive else field < bound)
    return expression


def coordinate_filter(coordinate: Mapping[str, str]) -> pds.Expression | None:
    """Rows of one identity coordinate ``{dim: value}``."""
    expression = None
    for dimension, value in coordinate.items():
        expression = all_of(expression, pds.field(dimension) == value)
    return expression


def one_of(dimension: str, values: Sequence[str]) -> pds.Expression:
    """Rows whose identity ``dimension`` is one of ``values`` (none for an empty list: typed as
    text, as identities are, since an untyped empty list cannot be compared with them).

    Example:
        >>> pa.table({"unique_identifier": ["A", "B"]}).filter(one_of("unique_identifier", [])).num_rows
        0
    """
    return pds.field(dimension).isin(pa.array(list(values), type=pa.string()))


def all_of(left: pds.Expression | None, right: pds.Expression | None) -> pds.Expression | None:
    """``left & right``, where None means no condition."""
    if left is None:
        return right
    if right is None:
        return left
    return left & right


def any_of(expressions: Sequence[pds.Expression | None]) -> pds.Expression | None:
    """``a | b | ...``, where None means no condition (so the whole is None); no expression at all
    matches nothing."""
    if any(expression is None for expression in expressions):
        return None
    if not expressions:
        return pds.scalar(False)
    if len(expressions) == 1:
        return expressions[0]
    middle = len(expressions) // 2  # a balanced tree: a chain of thousands overflowed the stack
    return any_of(expressions[:middle]) | any_of(expressions[middle:])
