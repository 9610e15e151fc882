"""File rewrites committed by lakenodes itself: restatements, tail deletes and legacy-file repair.

delta-rs MERGE and DELETE write Parquet files whose embedded Arrow schema uses ``string_view``,
which pyarrow cannot compare with ``string`` and daft refuses. So lakenodes rewrites the
affected files itself: it writes the new content with pyarrow (plain ``string``, the table's
schema, µs UTC timestamps) as ``<partition>=<escaped value>/part-<uuid>.parquet`` (delta-rs's
layout), then commits the new files' Add actions (with Delta JSON statistics) and the old
files' Remove actions in ONE Delta commit (``DeltaTable.create_write_transaction``; lakenodes
writes that commit itself when an old file's recorded path is one delta-rs cannot write, see
``lakenodes.lake._log_commit``).

Conflicts: delta-rs 1.6.6 fails such a commit when a concurrent commit set one of its app
transactions, but NOT when a concurrent commit removed one of the same files (both commits land
and the rows are live twice). So callers add the rewrite app transaction of every partition whose
files they remove (and restatements and deletes the identity one too), see
``lakenodes.lake._watermarks``: concurrent rewriters of one partition serialize.
"""

from __future__ import annotations

import datetime
import itertools
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import polars as pl
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, RemoveAction

from .._internal.datetimes import as_utc
from .._internal.deferred import np, pa, pafs, pc, pq
from .._internal.threads import in_threads
from ..core.frame_index import one_array, rows_increase
from ..core.frames import TIME_INDEX, NormalizedFrame
from ._commit_hooks import commit_hooks
from ._create import dictionary_columns
from ._log_commit import commit_actions, written_by_delta_rs
from ._scan import SLACK, data_file_path, plain_schema
from .location import delete_file, write_small_file

logger = logging.getLogger(__name__)

# local files are CPU-bound, and encoding holds the GIL in part: threads pay off on larger files only,
# and up to the cores (write_files on 2 cores, 1/2/4 threads: 2,000 files of 200 rows 528/557/668 ms;
# 1,000 of 2,000 rows 396/375/400 ms, with 7/5,133/7,999 context switches, which a busy machine makes
# dear; 200 of 5,000 rows 135/109/105 ms). An object store's are round trips, made at once, as many as
# pyarrow's I/O pool (``pa.io_thread_count()``, 8 by default), which sends them: more threads only
# encode more files at once for the uploads to wait (a 100-partition stream to moto on 2 cores: ~0.65 s
# of writes in 8 threads, ~1.05 s in 16)
LOCAL_WRITER_THREADS = min(4, os.cpu_count() or 1)
LOCAL_SMALL_FILE_BYTES = 64 * 1024  # local files of fewer bytes on average (in memory): written in one thread
_CODE = "__lakenodes_partition_code"  # "__" names are reserved for lakenodes: no identity column has one


@dataclass(frozen=True)
class RemovedFile:
    """A live data file to remove: its add action's path, size and partition value."""

    path: str
    size: int | None
    partition_value: str | None


def write_files(
    filesystem: Any, root: str, rows: pa.Table, schema: pa.Schema, partition: str | None,
    sort_by: Sequence[str] = (), data_change: bool = True, bounds: dict[str, Any] | None = None,
) -> list[AddAction]:
    """Write ``rows`` as one Parquet file per partition value (plain types, ``schema``'s column
    order, sorted by ``sort_by``) under the table root; return their Add actions. ``bounds``
    receives each file's exact (first, last) ``time_index`` by path relative to the root."""
    schema = plain_schema(schema)
    rows = rows.select(schema.names).cast(schema)
    if not rows.num_rows:
        return []
    groups: list[tuple[str | None, pa.Table]]
    if partition is None:
        data = rows.sort_by([(name, "ascending") for name in sort_by]) if sort_by else rows
        groups = [(None, data)]
    else:  # sorted by the partition's dictionary code (not its text: far faster), then ``sort_by``
        encoded = pc.dictionary_encode(rows.column(partition)).combine_chunks()
        within = [name for name in sort_by if name != partition]
        if rows_increase([one_array(rows.column(name)) for name in within], strictly=False):
            order = pc.sort_indices(encoded.indices)  # a stable sort: each partition's rows keep their order
        else:
            keys = pa.table({_CODE: encoded.indices, **{name: rows.column(name) for name in within}})
            order = pc.sort_indices(keys, [(name, "ascending") for name in keys.column_names])
        # taken straight from a stream's batches: combining them first would copy every row once more
        data = rows.drop_columns([partition]).take(order)
        sizes = np.bincount(encoded.indices.to_numpy(zero_copy_only=False), minlength=len(encoded.dictionary))
        offsets = [0, *itertools.accumulate(sizes.tolist())]
        groups = [(value, data.slice(offsets[code], sizes[code]))
                  for code, value in enumerate(encoded.dictionary.to_pylist()) if sizes[code]]
    statistics = _statistics([group.num_rows for _, group in groups], data)  # the groups are data's rows in order
    return in_threads(lambda item: _write_one(filesystem, root, partition, *item[0], item[1], data_change, bounds),
                      list(zip(groups, statistics, strict=True)), max_threads=_writer_threads(filesystem, data, len(groups)))


def _writer_threads(filesystem: Any, data: pa.Table, files: int) -> int:
    """How many threads write ``data`` as ``files`` files to ``filesystem`` (see ``LOCAL_WRITER_THREADS``)."""
    if not isinstance(filesystem, pafs.LocalFileSystem):
        return pa.io_thread_count()
    return 1 if data.nbytes < LOCAL_SMALL_FILE_BYTES * files else LOCAL_WRITER_THREADS


def _write_one(filesystem: Any, root: str, partition: str | None, value: str | None, data: pa.Table,
               statistics: tuple[str, tuple[Any, Any] | None], data_change: bool,
               bounds: dict[str, Any] | None) -> AddAction:
    folder = f"{partition}={quote(value, safe='')}" if partition is not None else ""
    relative = f"{folder}/" if folder else ""
    relative += f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    sink = pa.BufferOutputStream()
    pq.write_table(data, sink, compression="snappy", use_dictionary=dictionary_columns(data.schema))
    buffer = sink.getvalue()
    write_small_file(filesystem, f"{root}/{relative}", buffer)
    stats, times = statistics
    if bounds is not None and times is not None:
        bounds[relative] = times
    # create_write_transaction URL-encodes the path itself: pass the file's real relative path
    return AddAction(relative, buffer.size, {partition: value} if partition is not None else {},
                     int(time.time() * 1000), data_change, stats)


def file_stats(data: pa.Table) -> str:
    """Delta JSON statistics of one file's rows: ``numRecords``, ``minValues``, ``maxValues``
    and ``nullCount``; timestamps truncated to milliseconds like delta-rs (readers widen by 1 ms)."""
    return _statistics([data.num_rows], data)[0][0]


def _statistics(sizes: Sequence[int], data: pa.Table) -> list[tuple[str, tuple[Any, Any] | None]]:
    """For each group of consecutive rows of ``data`` (``sizes[i]`` rows each): its ``file_stats``
    and its exact (first, last) ``time_index`` (None without one), from one grouping of all rows."""
    bounded = [field.name for field in data.schema if pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
               or pa.types.is_string(field.type) or pa.types.is_timestamp(field.type) or pa.types.is_date(field.type)]
    groups = pa.array(np.repeat(np.arange(len(sizes), dtype=np.int32), sizes))
    aggregates = [(name, "count", pc.CountOptions(mode="only_null")) for name in data.column_names]
    aggregates += [(name, "min_max") for name in bounded]
    key = "__lakenodes_group"  # "__" names are reserved for lakenodes: no column of a frame has one
    # in threads (2 M rows in 1,000 groups, 2 cores: 47 -> 19 ms), which return the groups in an order of their own
    grouped = data.append_column(key, groups).group_by(key, use_threads=True).aggregate(aggregates).sort_by(key)
    nulls = {name: grouped.column(f"{name}_count").to_pylist() for name in data.column_names}
    extremes = {name: [_naive_values(pc.struct_field(grouped.column(f"{name}_min_max"), [end])) for end in (0, 1)]
                for name in bounded}
    results = []
    for group, size in enumerate(sizes):
        minimums: dict[str, Any] = {}
        maximums: dict[str, Any] = {}
        for name in bounded:
            low, high = (_stat_value(values[group]) for values in extremes[name])
            if low is not None and high is not None:
                minimums[name], maximums[name] = low, high
        times = [values[group] for values in extremes[TIME_INDEX]] if TIME_INDEX in extremes else [None]
        stats = {"numRecords": size, "minValues": minimums, "maxValues": maximums,
                 "nullCount": {name: nulls[name][group] for name in data.column_names}}
        # unescaped UTF-8 as delta-rs writes it: an escaped character beyond U+FFFF (a surrogate pair)
        # is decoded wrong by arrow-rs' JSON reader, so polars, DuckDB and pyarrow pruned on another value
        results.append((json.dumps(stats, ensure_ascii=False), None if times[0] is None else (as_utc(times[0]), as_utc(times[1]))))
    return results


def _naive_values(values: pa.ChunkedArray) -> list[Any]:
    """Python values of ``values``; UTC timestamps as naive datetimes (far cheaper than aware ones)."""
    if pa.types.is_timestamp(values.type) and values.type.tz is not None:
        values = values.cast(pa.timestamp(values.type.unit))
    return values.to_pylist()


def _stat_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        value = as_utc(value)
        # isoformat pads the year to four digits (strftime's %Y does not below 1000 on Linux) and
        # truncates to milliseconds as delta-rs does
        return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def commit_rewrite(
    table: DeltaTable,
    filesystem: Any,
    root: str,
    adds: Sequence[AddAction],
    removes: Sequence[RemovedFile],
    properties: CommitProperties,
    write_id: str,
    data_change: bool = True,
) -> None:
    """Commit ``adds`` and ``removes`` as one Delta commit against ``table``'s snapshot: by
    delta-rs, or by lakenodes itself when a removed file's recorded path is one delta-rs cannot
    write (another engine's, see ``lakenodes.lake._log_commit``).

    When the commit fails with a conflict and ``write_id`` did not land, the new files are
    deleted (best effort: leftovers are unreferenced and invisible to every Delta reader)."""
    partition_columns = list(table.metadata().partition_columns)
    now = int(time.time() * 1000)
    entries = [(removed.path, removed.size, {partition_columns[0]: removed.partition_value} if partition_columns
                else {}) for removed in removes]
    try:
        if not all(written_by_delta_rs(path) for path, _, _ in entries):
            commit_actions(table, filesystem, root, adds, entries, properties, data_change)
            return
        actions: list[AddAction | RemoveAction] = [*adds]
        actions += [RemoveAction(data_file_path(path), data_change, now, size, values) for path, size, values in entries]
        table.create_write_transaction(actions, mode="append", schema=pa.schema(table.schema().to_arrow()),
                                       partition_by=partition_columns or None, commit_properties=properties,
                                       post_commithook_properties=commit_hooks(table))
    except CommitFailedError:
        _discard_unless_committed(table, filesystem, root, adds, write_id)
        raise


def _discard_unless_committed(table: DeltaTable, filesystem: Any, root: str, adds: Sequence[AddAction],
                              write_id: str) -> None:
    try:
        table.update_incremental()
        if table.transaction_version(write_id) is not None:  # it did land (a lost response): keep the files
            return
        for add in adds:
            delete_file(filesystem, f"{root}/{add.path}")
    except Exception as error:  # noqa: BLE001 - cleanup of unreferenced files must never mask the conflict
        logger.debug("could not discard the files of failed commit %s: %s", write_id, error)


def files_overlapping(files: pl.DataFrame, partition: str | None, frame: NormalizedFrame) -> pl.DataFrame:
    """Files that may hold rows of ``frame``: same partition value, time statistics within 1 ms
    of that partition's rows in ``frame``."""
    rows = pl.from_arrow(frame.table.select([*frame.index_names[1:2], TIME_INDEX]))
    low, high = "__lakenodes_lo", "__lakenodes_hi"  # "__" names (reserved): any other may be the partition's
    bounds = [pl.col(TIME_INDEX).min().alias(low), pl.col(TIME_INDEX).max().alias(high)]
    if partition is None:
        windows = rows.select(bounds)
        files = files.with_columns(pl.lit(windows[low][0]).alias(low), pl.lit(windows[high][0]).alias(high))
    else:
        windows = rows.group_by(frame.index_names[1]).agg(bounds).rename({frame.index_names[1]: "partition"})
        files = files.join(windows, on="partition", how="inner")
    overlapping = (pl.col("max").is_null() | (pl.col("max") >= pl.col(low) - SLACK)) & (
        pl.col("min").is_null() | (pl.col("min") <= pl.col(high) + SLACK))
    return files.filter(overlapping).drop(low, high)


def removed_files(files: pl.DataFrame, positions: pa.Array) -> list[RemovedFile]:
    """The files at ``positions`` (rows of a ``Snapshot.files`` frame) as files to remove."""
    chosen = files[positions.to_pylist()] if len(positions) else files.clear()
    return [RemovedFile(path, size, value) for path, size, value in chosen.select("path", "size", "partition").iter_rows()]
