"""The latest row of each identity, found from the add actions' time statistics alone.

A table's Delta statistics bound each file's last ``time_index`` to within 1 ms (``SLACK``: they
hold milliseconds). So the rows of an identity from 1 ms before the largest statistic of its files
on hold its latest row, with at most the rows of its last two milliseconds besides, and keeping
each identity's latest rows of those is exact. A new process then reads the latest rows without
the table's exact progress first (the facts file, or the footers of each identity's last files:
a new process reading the latest row of 200 local assets spent 15 of its 57 ms there).

Only where the statistics locate an identity's files: one identity column that is the partition
column (or none: one series), a partition value on every file, and statistics on every file.
Otherwise ``last_row_ranges`` returns None and the caller locates the rows from the table's exact
progress.

Example:
    >>> import datetime
    >>> day = datetime.datetime(2026, 1, 5, tzinfo=datetime.UTC)
    >>> rows = pa.table({"time_index": [day, day, day.replace(microsecond=500)],
    ...                  "unique_identifier": ["A", "B", "A"], "close": [1.0, 2.0, 3.0]})
    >>> keep_last_rows(rows, ["unique_identifier"])["close"].to_pylist()
    [2.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import polars as pl
from deltalake import DeltaTable

from .._internal.deferred import pa
from ..core.frames import TIME_INDEX
from ._ranges import RangeFilter
from ._scan import index_names_of, snapshot_of


def last_row_ranges(table: DeltaTable, wanted: Collection[str] | None = None) -> list[RangeFilter] | None:
    """Ranges holding the latest row of each identity of ``table`` (of those whose identity
    column's value is in ``wanted``, when given), each with at most the rows of its last 2 ms
    besides (``keep_last_rows`` keeps the latest); None when the statistics cannot locate them."""
    index_names = index_names_of(table)
    if len(index_names) > 2:
        return None
    snapshot = snapshot_of(table, index_names)
    files = snapshot.files
    if len(index_names) == 2 and (snapshot.partition is None or files["partition"].null_count()):
        return None  # not partitioned by identity, or rows without one (the exact progress refuses them by name)
    if files["max"].null_count():
        return None
    starts = snapshot.last_row_starts  # by partition value (None: unpartitioned)
    if len(index_names) == 1:  # one series: it has no identity an asset list could name
        return [] if wanted is not None else [RangeFilter({}, start=start) for start in starts.values()]
    return [RangeFilter({index_names[1]: value}, start=start) for value, start in starts.items()
            if wanted is None or value in wanted]


def keep_last_rows(rows: pa.Table, dims: Sequence[str]) -> pa.Table:
    """The rows of ``rows`` at the latest ``time_index`` of their identity (its ``dims`` values), in their order."""
    if not rows.num_rows:
        return rows
    latest = pl.col(TIME_INDEX).max()
    at_latest = pl.col(TIME_INDEX) == (latest.over(list(dims)) if dims else latest)
    mask = pl.from_arrow(rows.select([TIME_INDEX, *dims])).select(at_latest.alias("keep"))["keep"]
    return rows.filter(mask.to_arrow())
