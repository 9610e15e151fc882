"""Lazy reads: one table (optionally as of a version or a moment) as a ``polars.LazyFrame``.

The scan is ``polars.scan_delta`` at the resolved version (or, under a folder whose name URLs
encode, polars' scan of the version's files: see ``_scan``), with the filters of the eager read
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
from urllib.parse import unquote

import polars as pl
from deltalake import DeltaTable

from ._polars_scan import TimeWindow, files_scan
from ._scan import check_dimensions, empty_table, index_names_of, selected_columns, snapshot_of
from .client_options import polars_storage_options
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
    if start is not None or end is not None:
        predicates.append(TimeWindow(start, start_inclusive, end, end_inclusive).expression())
    lazy = _scan(store, table, index_names)
    if predicates:
        lazy = lazy.filter(*predicates)
    return lazy.select(selected).sort(index_names)


def _scan(store: TableStore, table: DeltaTable, index_names: Sequence[str]) -> pl.LazyFrame:
    """``table`` (at its version) as a LazyFrame. ``pl.scan_delta`` opens the data files through the
    percent-encoded URIs delta-rs hands out and finds none under a folder such as "My Documents":
    there, polars scans the version's files from their real paths (a lakenodes table: partitioned by
    its first identity, no deletion vectors, so its add actions are its rows)."""
    if unquote(table.table_uri) == table.table_uri:
        options = polars_storage_options(store.lake.storage_options) if store.lake.storage_options else None
        return pl.scan_delta(store.uri, version=table.version(), storage_options=options)
    snapshot = snapshot_of(table, index_names)
    schema = pl.from_arrow(snapshot.schema.empty_table()).schema
    if not snapshot.files.height:
        return pl.LazyFrame(schema=schema)
    rows = files_scan(store.lake, table, snapshot.partition, snapshot.files)
    return rows.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
