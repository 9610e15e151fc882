"""The read methods every node has (``get_df_between_dates``, ``scan``, ``get_ranged_data_per_asset``,
``get_last_observation``), typed by the frame they return.

``frame="polars"``, ``"pandas"`` or ``"arrow"`` returns that frame's type; without ``frame`` the
kind is the program's choice at run time (``LAKENODES_FRAME`` / ``lakenodes.set_default_frame``,
else polars), so a type checker sees ``Any``: the seeds' ``node.get_df_between_dates(...).iloc[0]``
type-checks as written, as does a polars user's ``.filter(...)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack, overload

import polars as pl

from .._internal.deferred import pa
from ..core.frame_kind import FrameKind, as_frame, resolve_frame
from ..core.frames import TIME_INDEX, UNIQUE_IDENTIFIER
from ..lake.last_rows import keep_last_rows, last_row_ranges
from ..lake.lazy import scan_table
from ..lake.progress import read_progress
from ..lake.store import RangeFilter, TableStore, empty_table, index_names_of
from .read_arguments import (
    asset_dimension,
    bounds_argument,
    dimension_filters_argument,
    list_argument,
    ranges_from_dimension_map,
    ranges_from_uid_map,
    uid_of,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..lake.location import Lake


class DateFilters(TypedDict, total=False):
    """The keyword filters of ``get_df_between_dates`` (for its typed overloads)."""

    great_or_equal: bool
    less_or_equal: bool
    unique_identifier_list: Sequence[str] | None
    columns: Sequence[str] | None
    dimension_filters: Mapping[str, Sequence[str]] | None
    unique_identifier_range_map: Mapping[str, Mapping[str, Any]] | None
    dimension_range_map: Sequence[Mapping[str, Any]] | None
    as_of: Any


RangeDescriptor = Mapping[str, Mapping[str, Any]] | Sequence[Mapping[str, Any]] | None


class TableReads:
    """Reads of a node's table (mixed into ``BaseNode``, which gives ``lake``, ``store`` and the
    schema a table has before its first write)."""

    @property
    def lake(self) -> Lake:
        raise NotImplementedError

    @property
    def store(self) -> TableStore:
        raise NotImplementedError

    def _declared_schema(self) -> tuple[pa.Schema, tuple[str, ...]]:
        raise NotImplementedError

    @overload
    def get_df_between_dates(self, start_date: Any = ..., end_date: Any = ..., *, frame: None = ...,
                             **filters: Unpack[DateFilters]) -> Any: ...
    @overload
    def get_df_between_dates(self, start_date: Any = ..., end_date: Any = ..., *, frame: Literal["polars"],
                             **filters: Unpack[DateFilters]) -> pl.DataFrame: ...
    @overload
    def get_df_between_dates(self, start_date: Any = ..., end_date: Any = ..., *, frame: Literal["pandas"],
                             **filters: Unpack[DateFilters]) -> pd.DataFrame: ...
    @overload
    def get_df_between_dates(self, start_date: Any = ..., end_date: Any = ..., *, frame: Literal["arrow"],
                             **filters: Unpack[DateFilters]) -> pa.Table: ...
    def get_df_between_dates(
        self,
        start_date: Any = None,
        end_date: Any = None,
        *,
        great_or_equal: bool = True,
        less_or_equal: bool = True,
        unique_identifier_list: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        dimension_filters: Mapping[str, Sequence[str]] | None = None,
        unique_identifier_range_map: Mapping[str, Mapping[str, Any]] | None = None,
        dimension_range_map: Sequence[Mapping[str, Any]] | None = None,
        frame: FrameKind | None = None,
        as_of: Any = None,
    ) -> Any:
        """Rows between two dates (inclusive by default), optionally scoped by identity.

        Args:
            start_date, end_date: the bounds on ``time_index`` (None: open). A ``datetime`` (an aware
                one in any zone; a naive one is taken as UTC), a ``date`` (its midnight UTC), a pandas
                ``Timestamp``, a numpy ``datetime64`` or ISO-8601 text (``"2026-01-31"``,
                ``"2026-01-31T09:30:00Z"``). Not a number: an epoch int is refused.
            great_or_equal, less_or_equal: ``True`` (the default: ``>=`` / ``<=``) or ``False`` (``>`` / ``<``).
            unique_identifier_list: the identities to read: a list (tuple, set, pandas/polars Series,
                numpy array) of unique_identifier strings or ``Asset`` objects. One identifier is
                ``["AAPL"]``: a bare ``"AAPL"`` (its letters) is refused, as is a DataFrame.
            columns: the value columns to read, a list of names (the index columns always come back).
            dimension_filters: ``{dimension: [values]}``, e.g. ``{"unique_identifier": ["AAPL"]}``;
                identity values are strings.
            unique_identifier_range_map: a window per identity, ``{uid: {"start_date": ...,
                "start_date_operand": ">=" | ">", "end_date": ..., "end_date_operand": "<=" | "<"}}``
                (``update_statistics.get_update_range_map_great_or_equal()`` gives one).
            dimension_range_map: a list of ``{"coordinate": {dimension: value}, "start_date": ..., ...}``
                (``update_statistics.get_dimension_range_map_great_or_equal()`` gives one).
            frame: ``"polars"``, ``"pandas"`` (the seeds' MultiIndex) or ``"arrow"`` (lowercase); None:
                the program's choice (``LAKENODES_FRAME`` / ``lakenodes.set_default_frame``), else polars.
            as_of: the table as it was at a version (an ``int`` from ``history()``) or a moment (an
                aware ``datetime``, pandas ``Timestamp`` or numpy ``datetime64``; not a ``date`` or
                text); see lakenodes.lake.versions.

        A wrong type or shape is refused with one ``LakenodesUserError`` naming the argument.

        Example (``example``: a temporary lake with one table, see conftest.py):
            >>> example.node.get_df_between_dates("2026-03-31", "2026-03-31", unique_identifier_list=["MSFT"])["close"].to_list()
            [6.0]
            >>> example.node.get_df_between_dates(as_of=0).height  # version 0: the first run's rows
            8
        """
        kind = resolve_frame(frame)  # a bad frame kind fails before reading
        columns = None if columns is None else list_argument(columns, "columns")
        filters = dimension_filters_argument(dimension_filters, unique_identifier_list)
        ranges = None if unique_identifier_range_map is None else ranges_from_uid_map(unique_identifier_range_map)
        if dimension_range_map is not None:
            ranges = (ranges or []) + ranges_from_dimension_map(dimension_range_map)
        data = self.store.read(
            **bounds_argument(start_date, end_date, great_or_equal, less_or_equal),
            columns=columns, dimension_filters=filters, ranges=ranges, as_of=as_of,
        )
        return self._as_frame(data, columns, kind)

    def scan(
        self, start_date: Any = None, end_date: Any = None, *, great_or_equal: bool = True,
        less_or_equal: bool = True, unique_identifier_list: Sequence[str] | None = None,
        columns: Sequence[str] | None = None, dimension_filters: Mapping[str, Sequence[str]] | None = None,
        as_of: Any = None,
    ) -> pl.LazyFrame:
        """The rows ``get_df_between_dates`` returns as a polars LazyFrame, without reading them yet.

        ``start_date``, ``end_date``, ``great_or_equal``, ``less_or_equal``, ``unique_identifier_list``,
        ``columns``, ``dimension_filters`` and ``as_of`` take what get_df_between_dates takes (no ``frame``).

        Example (``example``: a temporary lake with one table, see conftest.py):
            >>> example.node.scan(unique_identifier_list=["AAPL"], as_of=0).select("close").collect()["close"].to_list()
            [1.0, 2.0, 3.0, 4.0]
        """
        lazy = scan_table(
            self.store, **bounds_argument(start_date, end_date, great_or_equal, less_or_equal),
            columns=None if columns is None else list_argument(columns, "columns"),
            dimension_filters=dimension_filters_argument(dimension_filters, unique_identifier_list), as_of=as_of,
        )
        return self._as_frame(None, columns, "polars").lazy() if lazy is None else lazy

    @overload
    def get_ranged_data_per_asset(self, range_descriptor: RangeDescriptor, columns: Sequence[str] | None = ...,
                                  frame: None = ..., *, as_of: Any = ...) -> Any: ...
    @overload
    def get_ranged_data_per_asset(self, range_descriptor: RangeDescriptor, columns: Sequence[str] | None = ...,
                                  frame: Literal["polars"] = ..., *, as_of: Any = ...) -> pl.DataFrame: ...
    @overload
    def get_ranged_data_per_asset(self, range_descriptor: RangeDescriptor, columns: Sequence[str] | None = ...,
                                  frame: Literal["pandas"] = ..., *, as_of: Any = ...) -> pd.DataFrame: ...
    @overload
    def get_ranged_data_per_asset(self, range_descriptor: RangeDescriptor, columns: Sequence[str] | None = ...,
                                  frame: Literal["arrow"] = ..., *, as_of: Any = ...) -> pa.Table: ...
    def get_ranged_data_per_asset(
        self, range_descriptor: RangeDescriptor, columns: Sequence[str] | None = None,
        frame: FrameKind | None = None, *, as_of: Any = None,
    ) -> Any:
        """Rows per identity within its own window. ``range_descriptor``: ``update_statistics``' range map by uid
        (``{uid: {"start_date": ..., "start_date_operand": ">="}}``, as
        ``get_update_range_map_great_or_equal()`` returns) or by coordinate (a list of
        ``{"coordinate": {...}, "start_date": ...}``, as ``get_dimension_range_map_great_or_equal()``
        returns); an empty map reads no rows. ``columns``, ``frame`` and ``as_of``: see get_df_between_dates.

        A map by uid is keyed as the statistics key it: by ``unique_identifier``, else (a table
        without one) by the first identity dimension."""
        if isinstance(range_descriptor, Sequence) and not isinstance(range_descriptor, str) and range_descriptor:
            return self.get_df_between_dates(dimension_range_map=range_descriptor, columns=columns, frame=frame,
                                             as_of=as_of)
        kind = resolve_frame(frame)
        columns = None if columns is None else list_argument(columns, "columns")
        by_uid: Any = range_descriptor or {}  # a malformed descriptor fails in ranges_from_uid_map, naming it
        ranges = ranges_from_uid_map(by_uid, asset_dimension((self.store.index_names() or (TIME_INDEX,))[1:]),
                                     "range_descriptor")
        return self._as_frame(self.store.read(columns=columns, ranges=ranges, as_of=as_of), columns, kind)

    @overload
    def get_last_observation(self, asset_list: Sequence[Any] | None = ..., frame: None = ..., *,
                             columns: Sequence[str] | None = ..., as_of: Any = ...) -> Any: ...
    @overload
    def get_last_observation(self, asset_list: Sequence[Any] | None = ..., frame: Literal["polars"] = ..., *,
                             columns: Sequence[str] | None = ..., as_of: Any = ...) -> pl.DataFrame: ...
    @overload
    def get_last_observation(self, asset_list: Sequence[Any] | None = ..., frame: Literal["pandas"] = ..., *,
                             columns: Sequence[str] | None = ..., as_of: Any = ...) -> pd.DataFrame: ...
    @overload
    def get_last_observation(self, asset_list: Sequence[Any] | None = ..., frame: Literal["arrow"] = ..., *,
                             columns: Sequence[str] | None = ..., as_of: Any = ...) -> pa.Table: ...
    def get_last_observation(
        self, asset_list: Sequence[Any] | None = None, frame: FrameKind | None = None, *,
        columns: Sequence[str] | None = None, as_of: Any = None,
    ) -> Any:
        """The latest row of every identity (optionally only these assets), located from metadata.

        ``asset_list``: a list of unique_identifier strings or ``Asset`` objects (``["AAPL"]``, not
        ``"AAPL"``), None for every identity; ``columns``, ``frame`` and ``as_of``: see get_df_between_dates."""
        kind = resolve_frame(frame)
        columns = None if columns is None else list_argument(columns, "columns")
        table = self.store.table_as_of(as_of)
        if table is None:
            return self._as_frame(self.store.read(columns=columns, as_of=as_of), columns, kind)
        wanted = None if asset_list is None else {uid_of(asset, "asset_list") for asset in list_argument(asset_list, "asset_list")}
        # the rows of the version the ranges come from (the latest: read without asking for a newer one again)
        version = table.version() if as_of is None else as_of
        near_last = last_row_ranges(table, wanted)
        if near_last is not None:  # located from the statistics: no exact progress to read first
            rows = self.store.read(columns=columns, ranges=near_last, as_of=version)
            kept = None if rows is None else keep_last_rows(rows, index_names_of(table)[1:])
            return self._as_frame(kept, columns, kind)
        progress = read_progress(table, self.lake)
        dims = progress.index_names[1:]
        position = dims.index(UNIQUE_IDENTIFIER) if UNIQUE_IDENTIFIER in dims else 0
        ranges = [
            RangeFilter(dict(zip(dims, identity, strict=True)), start=ts, end=ts)
            for identity, ts in progress.last.items()
            if wanted is None or (identity and identity[position] in wanted)
        ]
        return self._as_frame(self.store.read(columns=columns, ranges=ranges, as_of=version), columns, kind)

    def _no_rows(self) -> pa.Table:
        """The table's columns with no rows, index columns first: typed as stored, or as declared
        before its first write (what a read that matches nothing returns)."""
        schema = self.store.schema()
        if schema is None:
            schema, index_names = self._declared_schema()
        else:
            index_names = self.store.index_names() or (TIME_INDEX,)
        return empty_table(schema, index_names, None)

    def _as_frame(self, data: pa.Table | None, columns: Sequence[str] | None, kind: str) -> Any:
        if data is None:
            schema, index_names = self._declared_schema()
            data = empty_table(schema, index_names, columns)
        else:
            index_names = tuple(name for name in self.store.index_names() or (TIME_INDEX,))
        return as_frame(data, index_names, kind)
