"""Exact facts about immutable data files (time bounds, per-identity bounds), read from Parquet
footers or, for files holding several identities, from their identity columns; cached per path
for the life of the process (files never change)."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from .._internal.datetimes import as_utc
from .._internal.deferred import pa, pc, pq
from ..core.frames import TIME_INDEX
from ._scan import to_plain

Identity = tuple[str, ...]


class FileFacts:
    """Process-wide cache of exact facts about immutable data files, keyed by absolute path."""

    def __init__(self) -> None:
        self._bounds: dict[str, tuple[datetime.datetime, datetime.datetime]] = {}
        self._identities: dict[str, dict[Identity, tuple[datetime.datetime, datetime.datetime]]] = {}
        self._lock = threading.Lock()

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

    def learn_many(self, bounds: Mapping[str, tuple[datetime.datetime, datetime.datetime]]) -> None:
        """``learn_bounds`` of many files at once (exact UTC bounds by absolute path)."""
        with self._lock:
            for path, known in bounds.items():
                self._bounds.setdefault(path, known)

    def bounds(self, filesystem: Any, path: str) -> tuple[datetime.datetime, datetime.datetime]:
        with self._lock:
            cached = self._bounds.get(path)
        if cached is None:
            cached = footer_time_bounds(filesystem, path)
            with self._lock:
                self._bounds[path] = cached
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
        return cached


def footer_time_bounds(filesystem: Any, path: str) -> tuple[datetime.datetime, datetime.datetime]:
    with filesystem.open_input_file(path) as handle:
        metadata = pq.ParquetFile(handle).metadata
        position = metadata.schema.names.index(TIME_INDEX)
        lows, highs = [], []
        for group in range(metadata.num_row_groups):
            stats = metadata.row_group(group).column(position).statistics
            if stats is None or not stats.has_min_max:
                column = pq.read_table(handle, columns=[TIME_INDEX]).column(TIME_INDEX)
                return as_utc(pc.min(column).as_py()), as_utc(pc.max(column).as_py())
            lows.append(stats.min)
            highs.append(stats.max)
    return as_utc(min(lows)), as_utc(max(highs))


def scan_identities(
    filesystem: Any, path: str, dims: Sequence[str], partition: Mapping[str, str]
) -> dict[Identity, tuple[datetime.datetime, datetime.datetime]]:
    stored = [dim for dim in dims if dim not in partition]
    with filesystem.open_input_file(path) as handle:
        data = to_plain(pq.read_table(handle, columns=[*stored, TIME_INDEX]))  # files by delta-rs MERGE: string_view
    for dim in dims:
        if dim in partition:
            data = data.append_column(dim, pa.array([partition[dim]] * data.num_rows, pa.string()))
    grouped = data.group_by(list(dims)).aggregate([(TIME_INDEX, "min"), (TIME_INDEX, "max")])
    result = {}
    for row in grouped.to_pylist():
        result[tuple(row[dim] for dim in dims)] = (as_utc(row[f"{TIME_INDEX}_min"]), as_utc(row[f"{TIME_INDEX}_max"]))
    return result
