"""One Delta table: create, append, upsert, filtered reads and tail deletes, with commit retries.

Each ``storage_hash`` maps to one plain Delta table (reader 1 / writer 2) under
``<root>/tables/<storage_hash>``, partitioned by its first identity dimension. Its index names
live in the table description so any reader can recover them.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from ..core.frames import TIME_INDEX, NormalizedFrame
from ..errors import LakenodesUserError
from ._rewrite import RemovedFile, commit_rewrite, write_files
from ._scan import (
    SLACK,
    Pruning,
    all_of,
    any_of,
    coordinate_filter,
    data_file_path,
    fragments_of,
    read_whole,
    scan,
    snapshot_of,
    time_window,
    to_plain,
)
from ._watermarks import identity_transactions, partition_transactions, rows_at_or_before_watermark
from .location import Lake, lake_filesystem

__all__ = ["DEFAULT_RETRY", "RangeFilter", "RetryPolicy", "TableStore", "WriteResult", "data_file_path",
           "empty_table", "identity_transactions", "index_names_of",
           "partition_transactions"]

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
            overlap = rows_at_or_before_watermark(frame, marks)
            if overlap == 0:
                properties = CommitProperties(
                    app_transactions=[Transaction(write_id, 1), *identity_transactions(frame, marks)],
                    custom_metadata={**custom_metadata, "lakenodes.operation": "WRITE"},
                )
                write_deltalake(table, to_plain(frame.table), mode="append", commit_properties=properties)
                return WriteResult(frame.num_rows, 0, table.version() + 1)
            self._restate(table, frame, write_id, {**custom_metadata, "lakenodes.operation": "MERGE"})
            return WriteResult(frame.num_rows - overlap, overlap, table.version() + 1)

        result = self.with_retries(attempt, what=f"write to {self.storage_hash}")
        try:
            self.table()
        except (OSError, DeltaError) as error:  # the commit has landed: a failed refresh must not fail it
            logger.warning("write to %s committed; refreshing the snapshot failed: %s", self.storage_hash, error)
        return result

    def _restate(self, table: DeltaTable, frame: NormalizedFrame, write_id: str, metadata: dict[str, str]) -> None:
        """Upsert ``frame`` on its full index in one commit: the files holding rows it restates are
        rewritten without those rows, and the frame's rows are added (see ``lakenodes.lake._rewrite``).

        The commit carries the identity app transaction of every partition it touches, so it
        conflicts with (and retries after) any concurrent append, restatement or delete of them.
        """
        index = list(frame.index_names)
        snapshot = snapshot_of(table, index)
        filesystem, root = lake_filesystem(self.lake, table.table_uri)
        candidates = _files_overlapping(snapshot.files, snapshot.partition, frame)
        old = read_whole(filesystem, root, snapshot.partition, candidates, snapshot.schema)
        keys = to_plain(frame.table.select(index))
        hit = old.select([*index, "_file"]).join(keys, keys=index, join_type="left semi")
        changed = pa.array(sorted(set(hit.column("_file").to_pylist())), pa.int32())
        kept = old.filter(pc.is_in(old.column("_file"), value_set=changed)).join(keys, keys=index, join_type="left anti")
        rows = pa.concat_tables([kept.drop_columns(["_file"]).cast(snapshot.schema),
                                 to_plain(frame.table).select(snapshot.schema.names).cast(snapshot.schema)])
        adds = write_files(filesystem, root, rows, snapshot.schema, snapshot.partition, sort_by=index)
        values = [""] if snapshot.partition is None else pc.unique(frame.table.column(index[1])).to_pylist()
        properties = CommitProperties(
            app_transactions=[Transaction(write_id, 1), *partition_transactions(values)], custom_metadata=metadata,
        )
        commit_rewrite(table, filesystem, root, adds, _removed(candidates, changed), properties, write_id)

    def delete_after(
        self,
        after: datetime.datetime,
        *,
        dimension_filters: Mapping[str, Sequence[str]] | None = None,
        coordinates: Sequence[Mapping[str, str]] | None = None,
    ) -> int:
        """Delete rows with ``time_index >= after``, optionally only within ``dimension_filters``
        (``{dim: [values]}``) and/or ``coordinates`` (``[{dim: value, ...}]``); returns rows deleted.

        One commit that rewrites only the files holding deleted rows (plain types, see
        ``lakenodes.lake._rewrite``); a retry after a late failure does not delete twice.
        """
        table = self.table()
        if table is None:
            return 0
        _check_dimensions(index_names_of(table), [*(dimension_filters or {}), *(d for c in coordinates or () for d in c)])
        predicate = time_window(after, True, None, True)
        for dimension, values in (dimension_filters or {}).items():
            predicate = all_of(predicate, pds.field(dimension).isin(list(values)))
        if coordinates:
            predicate = all_of(predicate, any_of([coordinate_filter(coordinate) for coordinate in coordinates]))
        scopes = [RangeFilter(coordinate, start=after) for coordinate in coordinates or []]
        pruning = Pruning.of(after, None, dimension_filters, scopes or None)
        write_id = f"lakenodes-{uuid.uuid4().hex}"
        pending: list[int] = []

        def attempt() -> int:
            table = self.table()
            if pending and table.transaction_version(write_id) is not None:
                return pending[-1]  # an earlier attempt landed although it reported a failure
            index = list(index_names_of(table))
            snapshot = snapshot_of(table, index)
            filesystem, root = lake_filesystem(self.lake, table.table_uri)
            candidates = snapshot.files.filter(pruning.mask(snapshot.partition))
            old = read_whole(filesystem, root, snapshot.partition, candidates, snapshot.schema)
            hit = old.filter(predicate)
            if hit.num_rows == 0:
                return 0
            changed = pa.array(sorted(set(hit.column("_file").to_pylist())), pa.int32())
            kept = old.filter(pc.is_in(old.column("_file"), value_set=changed)).filter(~predicate)
            adds = write_files(filesystem, root, kept.drop_columns(["_file"]), snapshot.schema, snapshot.partition,
                               sort_by=index)
            removed = _removed(candidates, changed)
            values = [""] if snapshot.partition is None else sorted({file.partition_value or "" for file in removed})
            properties = CommitProperties(
                app_transactions=[Transaction(write_id, 1), *partition_transactions(values)],
                custom_metadata={"lakenodes.write_id": write_id, "lakenodes.operation": "DELETE"},
            )
            pending.append(hit.num_rows)
            commit_rewrite(table, filesystem, root, adds, removed, properties, write_id)
            return hit.num_rows

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
        expression = time_window(start, start_inclusive, end, end_inclusive)
        for dimension, values in (dimension_filters or {}).items():
            expression = all_of(expression, pds.field(dimension).isin(list(values)))
        if ranges is not None:
            per_range = [
                all_of(
                    coordinate_filter(r.coordinate),
                    time_window(r.start, r.start_inclusive, r.end, r.end_inclusive),
                )
                for r in ranges
            ]
            if not per_range:
                return empty_table(pa.schema(table.schema().to_arrow()), index_names, columns)
            expression = all_of(expression, any_of(per_range))
        selected = _selected_columns(index_names, table, columns)
        data = self._scan(table, index_names, Pruning.of(start, end, dimension_filters, ranges), selected, expression)
        return data.sort_by([(name, "ascending") for name in index_names])

    def _scan(self, table: DeltaTable, index_names: Sequence[str], pruning: Pruning, columns: Sequence[str],
              expression: pds.Expression | None) -> pa.Table:
        """Matching rows from only the files that can hold them (plain types whatever the files hold).

        Files are chosen from the snapshot's add actions (partition value, millisecond time
        statistics widened by 1 ms); ``expression`` then selects rows exactly.
        """
        expected_partitions = list(index_names[1:2])
        if table.protocol().min_reader_version > 1 or table.metadata().partition_columns != expected_partitions:
            dataset = table.to_pyarrow_dataset()  # e.g. deletion vectors or a foreign layout: let delta-rs decide
            return scan(list(dataset.get_fragments()), dataset.schema, dataset.filesystem, columns, expression,
                        dataset.format)
        snapshot = snapshot_of(table, index_names)
        filesystem, root = lake_filesystem(self.lake, table.table_uri)
        chosen = snapshot.files.filter(pruning.mask(snapshot.partition))
        return scan(fragments_of(filesystem, root, snapshot.partition, chosen), snapshot.schema, filesystem,
                    columns, expression)


def _files_overlapping(files: pl.DataFrame, partition: str | None, frame: NormalizedFrame) -> pl.DataFrame:
    """Files that may hold rows of ``frame``: same partition value, time statistics within 1 ms
    of that partition's rows in ``frame``."""
    rows = pl.from_arrow(frame.table.select([*frame.index_names[1:2], TIME_INDEX]))
    bounds = [pl.col(TIME_INDEX).min().alias("_lo"), pl.col(TIME_INDEX).max().alias("_hi")]
    if partition is None:
        windows = rows.select(bounds)
        files = files.with_columns(_lo=pl.lit(windows["_lo"][0]), _hi=pl.lit(windows["_hi"][0]))
    else:
        windows = rows.group_by(frame.index_names[1]).agg(bounds).rename({frame.index_names[1]: "partition"})
        files = files.join(windows, on="partition", how="inner")
    overlapping = (pl.col("max").is_null() | (pl.col("max") >= pl.col("_lo") - SLACK)) & (
        pl.col("min").is_null() | (pl.col("min") <= pl.col("_hi") + SLACK))
    return files.filter(overlapping).drop("_lo", "_hi")


def _removed(files: pl.DataFrame, positions: pa.Array) -> list[RemovedFile]:
    """The files at ``positions`` (rows of a ``Snapshot.files`` frame) as files to remove."""
    chosen = files[positions.to_pylist()] if len(positions) else files.clear()
    return [RemovedFile(path, size, value) for path, size, value in chosen.select("path", "size", "partition").iter_rows()]


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
        raise LakenodesUserError(
            f"unknown identity dimension(s) {unknown}; the table is indexed by {list(index_names)}"
        )


def _selected_columns(index_names: Sequence[str], table: DeltaTable, columns: Sequence[str] | None) -> list[str]:
    available = [field.name for field in table.schema().fields]
    if columns is None:
        return list(index_names) + [name for name in available if name not in index_names]
    unknown = [name for name in columns if name not in available]
    if unknown:
        raise LakenodesUserError(f"unknown column(s) {unknown}; the table has {available}")
    return list(index_names) + [name for name in columns if name not in index_names]


def _is_transient(error: DeltaError) -> bool:
    text = str(error).lower()
    return any(marker in text for marker in ("timeout", "timed out", "connection", "503", "500", "slow down", "io error"))
