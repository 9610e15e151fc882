"""Exact facts about immutable data files (time bounds, per-identity bounds), read from Parquet
footers or, for files holding several identities, from their identity columns; cached per path
(files never change). A process keeps the facts of at most ``MAX_PATHS`` files: a scheduler that
runs daily nodes in one interpreter for months learns the facts of every file its appends write
(~400 bytes each), so past the limit the older half is forgotten (read again from the table's
facts file or the footers when needed)."""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import polars as pl

from .._internal.datetimes import as_utc, from_epoch_micros
from .._internal.deferred import pa, pq
from ..core.frames import TIME_INDEX
from ..errors import LakenodesUserError
from ._scan import parquet_format, to_plain

Identity = tuple[str, ...]
MAX_PATHS = 200_000
"""Files whose facts one process keeps (each kind); past it, the older half is forgotten."""


class FileFacts:
    """Process-wide cache of exact facts about immutable data files, keyed by absolute path.
    ``on_forget`` is called (under the cache's lock) whenever facts past ``max_paths`` are forgotten."""

    def __init__(self, max_paths: int = MAX_PATHS, on_forget: Callable[[], Any] | None = None) -> None:
        self._bounds: dict[str, tuple[datetime.datetime, datetime.datetime]] = {}
        self._identities: dict[str, dict[Identity, tuple[datetime.datetime, datetime.datetime]]] = {}
        self._lock = threading.Lock()
        self.max_paths = max_paths
        self._on_forget = on_forget

    def __len__(self) -> int:
        """Files whose time bounds are known."""
        with self._lock:
            return len(self._bounds)

    def clear(self) -> None:
        with self._lock:
            self._bounds.clear()
            self._identities.clear()

    def has_bounds(self, path: str) -> bool:
        with self._lock:
            return path in self._bounds

    def known_bounds(self, path: str) -> tuple[datetime.datetime, datetime.datetime] | None:
        with self._lock:
            return self._bounds.get(path)

    def learn_bounds(self, path: str, bounds: tuple[datetime.datetime, datetime.datetime]) -> None:
        with self._lock:
            self._bounds.setdefault(path, bounds)
            self._keep_bounded()

    def learn_many(self, bounds: Mapping[str, tuple[datetime.datetime, datetime.datetime]]) -> None:
        """``learn_bounds`` of many files at once (exact UTC bounds by absolute path)."""
        with self._lock:
            for path, known in bounds.items():
                self._bounds.setdefault(path, known)
            self._keep_bounded()

    def bounds(self, filesystem: Any, path: str, size: int | None = None) -> tuple[datetime.datetime, datetime.datetime]:
        """The exact time bounds of the file at ``path``, read from its footer unless known (``size``,
        its length in bytes where known, spares the storage a request)."""
        with self._lock:
            cached = self._bounds.get(path)
        if cached is None:
            cached = footer_time_bounds(filesystem, path, size)
            with self._lock:
                self._bounds[path] = cached
                self._keep_bounded()
        return cached

    def identities(
        self, filesystem: Any, path: str, dims: Sequence[str], partition: Mapping[str, str]
    ) -> dict[Identity, tuple[datetime.datetime, datetime.datetime]]:
        with self._lock:
            cached = self._identities.get(path)
        if cached is None:
            cached = scan_identities(filesystem, path, dims, partition)
            with self._lock:
                self._identities[path] = cached
                self._keep_bounded()
        return cached

    def _keep_bounded(self) -> None:
        """Past ``max_paths`` files, forget the facts learned first (a daily append's files are the
        newest, and most of the oldest left the table); the caller holds the lock."""
        forgot = False
        for facts in (self._bounds, self._identities):
            if len(facts) > self.max_paths:
                kept = list(facts.items())[len(facts) - self.max_paths // 2:]
                facts.clear()
                facts.update(kept)
                forgot = True
        if forgot and self._on_forget is not None:
            self._on_forget()


def footer_time_bounds(filesystem: Any, path: str, size: int | None = None) -> tuple[datetime.datetime, datetime.datetime]:
    """The exact first and last ``time_index`` of the Parquet file at ``path``, from its footer's
    statistics (from the column where a row group has none).

    Given its ``size`` in bytes (the Delta log holds it), the footer is read through
    ``pyarrow.dataset`` in one request on an object store, where opening the file first asks for its
    length (a HEAD). That module's first import costs ~0.2 s (it imports pandas): see
    ``_exact_bounds.sizes_worth_passing``.

    Example:
        >>> import pyarrow as pa, pyarrow.fs as pafs, pyarrow.parquet as pq, tempfile
        >>> path = tempfile.mkdtemp() + "/part.parquet"
        >>> pq.write_table(pa.table({TIME_INDEX: pa.array([0, 1_500_000], pa.timestamp("us", "UTC"))}), path)
        >>> [str(bound) for bound in footer_time_bounds(pafs.LocalFileSystem(), path)]
        ['1970-01-01 00:00:00+00:00', '1970-01-01 00:00:01.500000+00:00']
    """
    if size is None:
        with filesystem.open_input_file(path) as handle:
            reader = pq.ParquetFile(handle)
            return _time_bounds(reader.metadata, lambda: reader.read(columns=[TIME_INDEX]), path)
    fragment = parquet_format().make_fragment(path, filesystem=filesystem, file_size=size)
    return _time_bounds(fragment.metadata, lambda: fragment.to_table(columns=[TIME_INDEX]), path)


def _time_bounds(metadata: Any, read_times: Callable[[], pa.Table], path: str) -> tuple[datetime.datetime, datetime.datetime]:
    position = metadata.schema.names.index(TIME_INDEX)
    unit = json.loads(metadata.schema.column(position).logical_type.to_json()).get("timeUnit")
    lows, highs = [], []
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(position).statistics
        if stats is None or not stats.has_min_max:
            values = pl.Series(read_times().column(TIME_INDEX))
            if values.min() is None:  # no statistics in the log either (see file_frame)
                raise null_index_error("a table of the lake", TIME_INDEX, path)
            return as_utc(values.min()), as_utc(values.max())
        if stats.physical_type == "INT64" and unit in _MICROS_PER:  # raw: .min of a tz-aware value imports pandas
            lows.append(from_epoch_micros(stats.min_raw * _MICROS_PER[unit][0] // _MICROS_PER[unit][1]))
            highs.append(from_epoch_micros(stats.max_raw * _MICROS_PER[unit][0] // _MICROS_PER[unit][1]))
        else:
            lows.append(as_utc(stats.min))
            highs.append(as_utc(stats.max))
    return min(lows), max(highs)


_MICROS_PER = {"milliseconds": (1000, 1), "microseconds": (1, 1), "nanoseconds": (1, 1000)}  # (multiply, divide)


def scan_identities(
    filesystem: Any, path: str, dims: Sequence[str], partition: Mapping[str, str]
) -> dict[Identity, tuple[datetime.datetime, datetime.datetime]]:
    stored = [dim for dim in dims if dim not in partition]
    with filesystem.open_input_file(path) as handle:  # files by delta-rs MERGE: string_view
        data = pl.from_arrow(to_plain(pq.ParquetFile(handle).read(columns=[*stored, TIME_INDEX])))
    # in polars: pyarrow's group_by and pa.array of Python values would import pandas
    data = data.with_columns(*(pl.lit(partition[dim], pl.String).alias(dim) for dim in dims if dim in partition))
    time_index = pl.col(TIME_INDEX)
    grouped = data.group_by(list(dims)).agg(time_index.min().alias("lo"), time_index.max().alias("hi"))
    return {tuple(row[dim] for dim in dims): (as_utc(row["lo"]), as_utc(row["hi"])) for row in grouped.iter_rows(named=True)}


def null_index_error(table_uri: str, name: str, path: str) -> LakenodesUserError:
    """The error for rows with a null ``name`` (an index column) in the data file ``path``."""
    return LakenodesUserError(
        f"{table_uri} holds rows with a null {name} (data file {path}, written by another engine): lakenodes "
        f"cannot tell what is new without it; delete them, e.g. DeltaTable(uri).delete(\"{name} IS NULL\")")
