"""One Delta table: create, append, upsert, filtered reads and tail deletes, with commit retries.

Each ``storage_hash`` maps to one plain Delta table (reader 1 / writer 2) under
``<root>/tables/<storage_hash>``, partitioned by its first identity dimension. Its index names
live in the table description so any reader can recover them.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from .frames import TIME_INDEX, NormalizedFrame
from .lake import Lake, lake_filesystem

logger = logging.getLogger(__name__)

T = TypeVar("T")
TABLE_CONFIGURATION = {"delta.setTransactionRetentionDuration": "interval 14 days"}


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a commit is retried above delta-rs's own retries."""

    attempts: int = int(os.environ.get("LAKENODES_COMMIT_ATTEMPTS", "12"))
    base_delay: float = float(os.environ.get("LAKENODES_COMMIT_BASE_DELAY", "0.05"))
    max_delay: float = float(os.environ.get("LAKENODES_COMMIT_MAX_DELAY", "3.0"))

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        return random.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class WriteResult:
    rows_appended: int
    rows_upserted: int
    version: int | None

    @property
    def rows_written(self) -> int:
        return self.rows_appended + self.rows_upserted


@dataclass(frozen=True)
class RangeFilter:
    """Rows of one identity coordinate within a time window (the shape of the seeds' range maps)."""

    coordinate: Mapping[str, str]
    start: datetime.datetime | None = None
    start_inclusive: bool = True
    end: datetime.datetime | None = None
    end_inclusive: bool = True


_table_cache: dict[tuple[str, str], DeltaTable] = {}
_cache_lock = threading.Lock()


class TableStore:
    """The Delta table of one storage hash.

    Example:
        >>> store = TableStore(Lake("/tmp/my-lake"), "prices_0123")
        >>> store.uri
        '/tmp/my-lake/tables/prices_0123'
    """

    def __init__(self, lake: Lake, storage_hash: str, *, uri: str | None = None, retry: RetryPolicy = DEFAULT_RETRY):
        self.lake = lake
        self.storage_hash = storage_hash
        self.uri = uri or lake.table_uri(storage_hash)
        self.retry = retry

    # -- snapshot -------------------------------------------------------------------------------
    def table(self, refresh: bool = True) -> DeltaTable | None:
        """The current snapshot (cached per process, refreshed incrementally), or None before creation."""
        key = (self.uri, json.dumps(self.lake.storage_options, sort_keys=True))
        with _cache_lock:
            cached = _table_cache.get(key)
        if cached is not None:
            if refresh:
                cached.update_incremental()
            return cached
        try:
            opened = DeltaTable(self.uri, storage_options=self.lake.storage_options or None)
        except TableNotFoundError:
            return None
        with _cache_lock:
            _table_cache[key] = opened
        return opened

    def exists(self) -> bool:
        return self.table() is not None

    def index_names(self) -> tuple[str, ...] | None:
        table = self.table(refresh=False)
        return index_names_of(table) if table is not None else None

    def schema(self) -> pa.Schema | None:
        table = self.table(refresh=False)
        return pa.schema(table.schema().to_arrow()) if table is not None else None

    def ensure_created(self, schema: pa.Schema, index_names: Sequence[str]) -> DeltaTable:
        """Create the table once; a concurrent creator winning the race is not an error."""
        existing = self.table()
        if existing is not None:
            return existing
        partition_by = [index_names[1]] if len(index_names) > 1 else None
        try:
            DeltaTable.create(
                self.uri,
                schema,
                mode="ignore",
                partition_by=partition_by,
                name=self.storage_hash,
                description=json.dumps({"index_names": list(index_names), "created_by": "lakenodes"}),
                configuration=TABLE_CONFIGURATION,
                storage_options=self.lake.storage_options or None,
            )
        except DeltaError as error:  # another process created it between our check and our commit
            logger.debug("table %s created concurrently: %s", self.storage_hash, error)
        created = self.table()
        if created is None:
            raise RuntimeError(f"could not create table {self.uri}")
        return created

    # -- writes ---------------------------------------------------------------------------------
    def write(
        self,
        frame: NormalizedFrame,
        watermarks: Callable[[DeltaTable], Mapping[tuple[str, ...], datetime.datetime]],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Write ``frame`` in one commit: blind append when every row is newer than its identity's
        watermark, else one merge on the full index (restatements replace, never duplicate).

        ``watermarks`` computes the stored watermark per identity from a snapshot; it is
        re-evaluated on every retry so a retry after a concurrent commit decides afresh.
        """
        write_id = f"lakenodes-{uuid.uuid4().hex}"
        custom_metadata = {"lakenodes.write_id": write_id, **{k: str(v) for k, v in (metadata or {}).items()}}

        attempts = 0

        def attempt() -> WriteResult:
            nonlocal attempts
            attempts += 1
            table = self.ensure_created(frame.table.schema, frame.index_names)
            # write_id is fresh: only a retry can find it committed (by an attempt that failed late)
            if attempts > 1 and table.transaction_version(write_id) is not None:
                logger.info("write %s was already committed by an earlier attempt", write_id)
                return WriteResult(0, 0, table.version())
            marks = watermarks(table)
            overlap = _rows_at_or_before_watermark(frame, marks)
            properties = CommitProperties(
                app_transactions=[Transaction(write_id, 1), *identity_transactions(frame, marks)],
                custom_metadata=custom_metadata,
            )
            if overlap == 0:
                write_deltalake(table, frame.table, mode="append", commit_properties=properties)
                return WriteResult(frame.num_rows, 0, table.version() + 1)
            self._merge(table, frame, properties)
            return WriteResult(frame.num_rows - overlap, overlap, table.version() + 1)

        result = self.with_retries(attempt, what=f"write to {self.storage_hash}")
        try:
            self.table()
        except (OSError, DeltaError) as error:  # the commit has landed: a failed refresh must not fail it
            logger.warning("write to %s committed; refreshing the snapshot failed: %s", self.storage_hash, error)
        return result

    def _merge(self, table: DeltaTable, frame: NormalizedFrame, properties: CommitProperties) -> None:
        on = [f"t.{name} = s.{name}" for name in frame.index_names]
        first_time, last_time = pc.min(frame.table.column(TIME_INDEX)).as_py(), pc.max(frame.table.column(TIME_INDEX)).as_py()
        # a bounded window: concurrent appends of later rows do not conflict with a restatement
        on.append(f"t.{TIME_INDEX} >= '{_iso(first_time)}' AND t.{TIME_INDEX} <= '{_iso(last_time)}'")
        if len(frame.index_names) > 1:
            partition = frame.index_names[1]
            values = pc.unique(frame.table.column(partition)).to_pylist()
            on.append(f"t.{partition} IN ({', '.join(_sql_string(v) for v in values)})")
        (
            table.merge(
                frame.table,
                predicate=" AND ".join(on),
                source_alias="s",
                target_alias="t",
                commit_properties=properties,
            )
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )

    def delete_after(
        self,
        after: datetime.datetime,
        *,
        dimension_filters: Mapping[str, Sequence[str]] | None = None,
        coordinates: Sequence[Mapping[str, str]] | None = None,
    ) -> int:
        """Delete rows with ``time_index >= after``, optionally only within ``dimension_filters``
        (``{dim: [values]}``) and/or ``coordinates`` (``[{dim: value, ...}]``); returns rows deleted."""
        if self.table() is None:
            return 0
        predicate = f"{TIME_INDEX} >= '{_iso(after)}'"
        for dimension, values in (dimension_filters or {}).items():
            predicate += f" AND {dimension} IN ({', '.join(_sql_string(v) for v in values)})"
        if coordinates:
            scopes = [
                "(" + " AND ".join(f"{dim} = {_sql_string(value)}" for dim, value in coordinate.items()) + ")"
                for coordinate in coordinates
            ]
            predicate += f" AND ({' OR '.join(scopes)})"

        def attempt() -> int:
            metrics = self.table().delete(predicate)
            return int(metrics.get("num_deleted_rows", 0))

        deleted = self.with_retries(attempt, what=f"delete from {self.storage_hash}")
        self.table()
        return deleted

    def with_retries(self, operation: Callable[[], T], what: str) -> T:
        for attempt in range(self.retry.attempts):
            try:
                return operation()
            except (CommitFailedError, OSError) as error:
                if attempt + 1 == self.retry.attempts:
                    raise
                delay = self.retry.delay(attempt)
                logger.warning("%s: commit attempt %d failed (%s); retrying in %.2fs", what, attempt + 1, error, delay)
                time.sleep(delay)  # the next attempt refreshes the snapshot itself (inside the retries)
            except DeltaError as error:
                if not _is_transient(error) or attempt + 1 == self.retry.attempts:
                    raise
                delay = self.retry.delay(attempt)
                logger.warning("%s: transient storage error (%s); retrying in %.2fs", what, error, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    # -- reads ----------------------------------------------------------------------------------
    def read(
        self,
        *,
        start: datetime.datetime | None = None,
        end: datetime.datetime | None = None,
        start_inclusive: bool = True,
        end_inclusive: bool = True,
        columns: Sequence[str] | None = None,
        dimension_filters: Mapping[str, Sequence[str]] | None = None,
        ranges: Sequence[RangeFilter] | None = None,
    ) -> pa.Table | None:
        """Rows matching all filters, index columns first, sorted by the index; None before creation."""
        table = self.table()
        if table is None:
            return None
        index_names = index_names_of(table)
        _check_dimensions(index_names, [*(dimension_filters or {}), *(d for r in ranges or () for d in r.coordinate)])
        expression = _time_window(start, start_inclusive, end, end_inclusive)
        for dimension, values in (dimension_filters or {}).items():
            expression = _and(expression, pds.field(dimension).isin(list(values)))
        if ranges is not None:
            per_range = [
                _and(
                    _coordinate(r.coordinate),
                    _time_window(r.start, r.start_inclusive, r.end, r.end_inclusive),
                )
                for r in ranges
            ]
            if not per_range:
                return empty_table(pa.schema(table.schema().to_arrow()), index_names, columns)
            expression = _and(expression, _any(per_range))
        selected = _selected_columns(index_names, table, columns)
        dataset = self._dataset(table, index_names, _Pruning.of(start, end, dimension_filters, ranges))
        data = dataset.scanner(columns=selected, filter=expression, fragment_readahead=16).to_table()
        return data.sort_by([(name, "ascending") for name in index_names])

    def _dataset(self, table: DeltaTable, index_names: Sequence[str], pruning: _Pruning) -> pds.Dataset:
        """A pyarrow dataset over only the files that can hold matching rows.

        Files are chosen from the snapshot's add actions (partition value, millisecond time
        statistics widened by 1 ms); the caller's filter then selects rows exactly. Fragments
        are cached by path (data files are immutable), so their footers are read once.
        """
        expected_partitions = list(index_names[1:2])
        if table.protocol().min_reader_version > 1 or table.metadata().partition_columns != expected_partitions:
            return table.to_pyarrow_dataset()  # e.g. deletion vectors or a foreign layout: let delta-rs decide
        snapshot = _snapshot(table, index_names)
        filesystem, root = lake_filesystem(self.lake, table.table_uri)
        chosen = snapshot.files.filter(pruning.mask(snapshot.partition))
        fragments = _fragments(filesystem, root, snapshot.partition, chosen)
        return pds.FileSystemDataset(fragments, snapshot.schema, _PARQUET, filesystem)


@dataclass(frozen=True)
class _Snapshot:
    """The data files of one table version: path, partition value, ms ``min``/``max`` time_index."""

    files: pl.DataFrame
    partition: str | None
    schema: pa.Schema


_snapshots: dict[tuple[str, int], _Snapshot] = {}
_fragment_cache: dict[tuple[int, str], pds.Fragment] = {}
_PARQUET = pds.ParquetFileFormat(default_fragment_scan_options=pds.ParquetFragmentScanOptions(pre_buffer=True))
_SLACK = datetime.timedelta(milliseconds=1)  # Delta statistics truncate timestamps to ms (or round up)


def _snapshot(table: DeltaTable, index_names: Sequence[str]) -> _Snapshot:
    key = (table.table_uri, table.version())
    cached = _snapshots.get(key)
    if cached is None:
        actions = pa.table(table.get_add_actions(flatten=True))
        partition = index_names[1] if len(index_names) > 1 else None
        time_type = pl.Datetime("us", "UTC")

        def column(name: str, dtype: pl.DataType) -> pl.Series:
            if name not in actions.column_names:
                return pl.Series([None] * actions.num_rows, dtype=dtype)
            return pl.Series(actions.column(name)).cast(dtype)

        files = pl.DataFrame({
            "path": column("path", pl.String),
            "size": column("size_bytes", pl.Int64),
            "partition": column(f"partition.{partition}", pl.String),
            "min": column(f"min.{TIME_INDEX}", time_type),
            "max": column(f"max.{TIME_INDEX}", time_type),
        })
        cached = _Snapshot(files, partition if f"partition.{partition}" in actions.column_names else None,
                           pa.schema(table.schema().to_arrow()))
        if len(_snapshots) > 64:
            _snapshots.clear()
        _snapshots[key] = cached
    return cached


def _fragments(filesystem: Any, root: str, partition: str | None, files: pl.DataFrame) -> list[pds.Fragment]:
    """Parquet fragments of ``files`` with their partition value; new ones read their footer once
    (in threads: on S3 each is a GET) so later scans skip it."""
    fragments, new = [], []
    for path, value, size in files.select("path", "partition", "size").iter_rows():
        full = f"{root}/{data_file_path(path)}"
        fragment = _fragment_cache.get((id(filesystem), full))
        if fragment is None:
            fragment = _PARQUET.make_fragment(full, filesystem=filesystem, partition_expression=_partition_expression(
                partition, value), file_size=size)
            new.append(((id(filesystem), full), fragment))
        fragments.append(fragment)
    if new:
        with ThreadPoolExecutor(max_workers=min(16, len(new))) as pool:
            list(pool.map(lambda item: item[1].ensure_complete_metadata(), new))
        if len(_fragment_cache) + len(new) > 20_000:
            _fragment_cache.clear()
        _fragment_cache.update(new)
    return fragments


def _partition_expression(partition: str | None, value: str | None) -> pds.Expression | None:
    if partition is None:
        return None
    return pds.field(partition).is_null() if value is None else pds.field(partition) == value


def data_file_path(path: str) -> str:
    """A data file's path relative to the table root, from an add action's (URL-encoded) path."""
    return unquote(path) if "%" in path else path


@dataclass(frozen=True)
class _Pruning:
    """What a read can rule out from file metadata alone: identity values and time windows (all must hold)."""

    values: tuple[tuple[str, frozenset[str]], ...] = ()
    windows: tuple[tuple[datetime.datetime | None, datetime.datetime | None], ...] = ()

    @classmethod
    def of(cls, start: datetime.datetime | None, end: datetime.datetime | None,
           dimension_filters: Mapping[str, Sequence[str]] | None, ranges: Sequence[RangeFilter] | None) -> _Pruning:
        values = [(dim, frozenset(allowed)) for dim, allowed in (dimension_filters or {}).items()
                  if all(isinstance(value, str) for value in allowed)]
        windows = [(start, end)]
        if ranges:
            starts, ends = [r.start for r in ranges], [r.end for r in ranges]
            windows.append((None if None in starts else min(starts), None if None in ends else max(ends)))
            for dim in set.intersection(*[set(r.coordinate) for r in ranges]):
                if all(isinstance(r.coordinate[dim], str) for r in ranges):
                    values.append((dim, frozenset(r.coordinate[dim] for r in ranges)))
        return cls(tuple(values), tuple(windows))

    def mask(self, partition: str | None) -> pl.Expr:
        """Which files (rows of a ``_Snapshot``) can hold matching rows; conservative by 1 ms."""
        condition = pl.lit(True)
        for dim, allowed in self.values:
            if dim == partition:
                condition = condition & pl.col("partition").is_in(list(allowed))
        for low, high in self.windows:
            if low is not None:
                condition = condition & (pl.col("max").is_null() | (pl.col("max") >= low - _SLACK))
            if high is not None:
                condition = condition & (pl.col("min").is_null() | (pl.col("min") <= high + _SLACK))
        return condition


def identity_transactions(
    frame: NormalizedFrame, watermarks: Mapping[tuple[str, ...], datetime.datetime]
) -> list[Transaction]:
    """One Delta app transaction per partition value (first identity dimension; one for a
    single-index table) for which ``frame`` has rows later than the stored watermark.

    delta-rs fails a commit whose app ids were set by a commit that landed after its read version
    ("Concurrent transaction failed"). Every commit that moves an identity's watermark carries its
    app id, so two writers that decided from the same snapshot to blind-append rows of one
    identity cannot both commit: the later one retries, re-reads the watermarks and upserts
    instead of duplicating. Writers of disjoint identities never conflict, and restatements
    (rows at or before the watermark, conflict-checked by MERGE itself) do not block appends.
    """
    dims = list(frame.identity_dimensions)
    times = frame.table.column(TIME_INDEX)
    if not dims:
        mark = watermarks.get(())
        later = mark is None or bool(pc.any(pc.greater(times, pa.scalar(mark, pa.timestamp("us", "UTC")))).as_py())
        values = [""] if later else []
    else:
        keys = pa.table({**{f"k{i}": frame.table.column(dim) for i, dim in enumerate(dims)}, "time_index": times})
        marks = pa.table(
            {**{f"k{i}": pa.array([key[i] for key in watermarks], pa.string()) for i in range(len(dims))},
             "watermark": pa.array(list(watermarks.values()), pa.timestamp("us", "UTC"))}
        )
        joined = keys.join(marks, [f"k{i}" for i in range(len(dims))], join_type="left outer")
        later = pc.or_kleene(pc.is_null(joined["watermark"]), pc.greater(joined["time_index"], joined["watermark"]))
        values = pc.unique(joined.filter(later)["k0"]).to_pylist()
    return [Transaction(f"lakenodes.identity.{hashlib.sha256(value.encode()).hexdigest()[:32]}", 1) for value in values]


def index_names_of(table: DeltaTable) -> tuple[str, ...]:
    """Index names of a lakenodes table (stored in its description; ``time_index`` otherwise)."""
    description = table.metadata().description
    try:
        return tuple(json.loads(description)["index_names"])
    except (TypeError, ValueError, KeyError):
        return (TIME_INDEX,)


def empty_table(schema: pa.Schema, index_names: Sequence[str], columns: Sequence[str] | None) -> pa.Table:
    names = list(index_names) + [n for n in schema.names if n not in index_names and (columns is None or n in columns)]
    return pa.schema([schema.field(n) for n in names]).empty_table()


def _check_dimensions(index_names: Sequence[str], dimensions: Sequence[str]) -> None:
    unknown = sorted(set(dimensions) - set(index_names[1:]))
    if unknown:
        from .errors import LakenodesUserError

        raise LakenodesUserError(
            f"unknown identity dimension(s) {unknown}; the table is indexed by {list(index_names)}"
        )


def _selected_columns(index_names: Sequence[str], table: DeltaTable, columns: Sequence[str] | None) -> list[str]:
    available = [field.name for field in table.schema().fields]
    if columns is None:
        return list(index_names) + [name for name in available if name not in index_names]
    unknown = [name for name in columns if name not in available]
    if unknown:
        from .errors import LakenodesUserError

        raise LakenodesUserError(f"unknown column(s) {unknown}; the table has {available}")
    return list(index_names) + [name for name in columns if name not in index_names]


def _rows_at_or_before_watermark(frame: NormalizedFrame, watermarks: Mapping[tuple[str, ...], datetime.datetime]) -> int:
    if not watermarks:
        return 0
    dims = list(frame.identity_dimensions)
    times = frame.table.column(TIME_INDEX)
    if not dims:
        mark = watermarks.get(())
        return 0 if mark is None else int(pc.sum(pc.less_equal(times, pa.scalar(mark, pa.timestamp("us", "UTC")))).as_py() or 0)
    keys = pa.table({f"k{i}": frame.table.column(dim) for i, dim in enumerate(dims)})
    marks = pa.table(
        {**{f"k{i}": [key[i] for key in watermarks] for i in range(len(dims))},
         "watermark": pa.array(list(watermarks.values()), pa.timestamp("us", "UTC"))}
    )
    joined = keys.append_column("time_index", times).join(marks, [f"k{i}" for i in range(len(dims))], join_type="inner")
    if joined.num_rows == 0:
        return 0
    return int(pc.sum(pc.less_equal(joined["time_index"], joined["watermark"])).as_py() or 0)


def _time_window(start, start_inclusive, end, end_inclusive) -> pds.Expression | None:
    expression = None
    field = pds.field(TIME_INDEX)
    if start is not None:
        bound = pa.scalar(start, pa.timestamp("us", "UTC"))
        expression = _and(expression, field >= bound if start_inclusive else field > bound)
    if end is not None:
        bound = pa.scalar(end, pa.timestamp("us", "UTC"))
        expression = _and(expression, field <= bound if end_inclusive else field < bound)
    return expression


def _coordinate(coordinate: Mapping[str, str]) -> pds.Expression | None:
    expression = None
    for dimension, value in coordinate.items():
        expression = _and(expression, pds.field(dimension) == value)
    return expression


def _and(left: pds.Expression | None, right: pds.Expression | None) -> pds.Expression | None:
    if left is None:
        return right
    if right is None:
        return left
    return left & right


def _any(expressions: Sequence[pds.Expression | None]) -> pds.Expression | None:
    if any(expression is None for expression in expressions):
        return None
    combined = expressions[0]
    for expression in expressions[1:]:
        combined = combined | expression
    return combined


def _iso(value: datetime.datetime) -> str:
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _is_transient(error: DeltaError) -> bool:
    text = str(error).lower()
    return any(marker in text for marker in ("timeout", "timed out", "connection", "503", "500", "slow down", "io error"))
