"""Lazy reads: one table (optionally as of a version or a moment) as a ``polars.LazyFrame``.

The scan is ``polars.scan_delta`` at the resolved version, with the filters of the eager read
(``TableStore.read``): a time window, dimension values and columns, index columns first, sorted
by the index, so ``scan_table(...).collect()`` equals the eager read.

Example:
    >>> import tempfile
    >>> from lakenodes.lake.location import Lake
    >>> scan_table(TableStore(Lake(tempfile.mkdtemp()), "prices_0123")) is None  # no table yet
    True
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from ..core.frames import TIME_INDEX
from ._scan import check_dimensions, empty_table, index_names_of, selected_columns
from .store import TableStore


def scan_table(
    store: TableStore,
    *,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
    start_inclusive: bool = True,
    end_inclusive: bool = True,
    columns: Sequence[str] | None = None,
    dimension_filters: Mapping[str, Sequence[str]] | None = None,
    as_of: Any = None,
) -> pl.LazyFrame | None:
    """The rows ``store.read(...)`` would return, lazily; None before the table's creation."""
    table = store.table_as_of(as_of)
    current = store.table(refresh=False)
    if current is None:
        return None
    index_names = list(index_names_of(current))
    check_dimensions(index_names, list(dimension_filters or {}))
    if table is None:  # a moment before the table existed
        return pl.from_arrow(empty_table(store.schema(), index_names, columns)).lazy()
    selected = selected_columns(index_names, table, columns)
    predicates = [pl.col(dimension).is_in(list(values)) for dimension, values in (dimension_filters or {}).items()]
    if start is not None:
        predicates.append(pl.col(TIME_INDEX) >= start if start_inclusive else pl.col(TIME_INDEX) > start)
    if end is not None:
        predicates.append(pl.col(TIME_INDEX) <= end if end_inclusive else pl.col(TIME_INDEX) < end)
    lazy = pl.scan_delta(store.uri, version=table.version(), storage_options=store.lake.storage_options or None)
    if predicates:
        lazy = lazy.filter(*predicates)
    return lazy.select(selected).sort(index_names)
