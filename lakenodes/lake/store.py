"""One Delta table: create, append, upsert, filtered reads and tail deletes, with commit retries.

Each ``storage_hash`` maps to one plain Delta table (reader 1 / writer 2) under
``<root>/tables/<storage_hash>``, partitioned by its first identity dimension. Its index names
live in the table description so any reader can recover them.
"""

from __future__ import annotations

import datetime
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import polars as pl
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from .._internal.deferred import pa
from ..core.frames import NormalizedFrame
from ..errors import one_line
from . import _tables
from ._commit_hooks import commit_hooks, warn_of_small_files
from ._create import TABLE_CONFIGURATION, create_empty, create_with_rows, writer_properties
from ._polars_scan import TimeWindow, filters_files_only
from ._ranges import RangeFilter, coordinates_filter, range_selection
from ._retry import RetryPolicy, default_retry, retry_reason
from ._row_filters import all_of, one_of, time_window
from ._row_rewrites import delete_rows, restate
from ._scan import (
    Pruning,
    check_dimensions,
    data_file_path,
    empty_table,
    index_names_of,
    selected_columns,
    to_plain,
)
from ._storage_errors import guarded, storage_errors, table_not_created
from ._table_scan import scan_table
from ._tables import adopt, cached_table, found_missing, is_open, note_missing, table_lock
from ._watermarks import (
    app_transaction,
    compare_since_seen,
    identity_transactions,
    partition_transactions,
    rows_at_or_before_watermark,
)
from .location import Lake, lake_filesystem, prepare_filesystem
from .versions import resolve_as_of, table_as_of

__all__ = ["TABLE_CONFIGURATION", "RangeFilter", "RetryPolicy", "TableStore", "WriteResult", "data_file_path",
           "empty_table", "identity_transactions", "index_names_of",
           "partition_transactions"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class WriteResult:
    """What one write stored: rows blind-appended, rows upserted, and the commit's table version
    (None when it committed nothing: every row it was given equals the stored row of its index,
    ``rows_unchanged`` of them, which a write never rewrites)."""

    rows_appended: int
    rows_upserted: int
    version: int | None
    rows_unchanged: int = 0
    # over the frame's rows, True where a row equalled the stored one and was not written (a merge's)
    unchanged_mask: pa.BooleanArray | None = field(default=None, compare=False, repr=False)

    @property
    def rows_written(self) -> int:
        return self.rows_appended + self.rows_upserted

    def without_unchanged(self, rows: pl.DataFrame) -> pl.DataFrame:
        """The frame written as ``rows`` (empty when not kept) less the rows a merge left as stored."""
        if not self.rows_unchanged or self.unchanged_mask is None or rows.is_empty():
            return rows
        return rows.filter(~pl.Series(self.unchanged_mask))


class TableStore:
    """The Delta table of one storage hash.

    Example:
        >>> store = TableStore(Lake("/tmp/my-lake"), "prices_0123")
        >>> store.uri
        '/tmp/my-lake/tables/prices_0123'
    """

    def __init__(self, lake: Lake, storage_hash: str, *, uri: str | None = None, retry: RetryPolicy | None = None):
        self.lake = lake
        self.storage_hash = storage_hash
        self.uri = uri or lake.table_uri(storage_hash)
        self.retry = retry or default_retry()

    # -- snapshot -------------------------------------------------------------------------------
    def table(self, refresh: bool = True) -> DeltaTable | None:
        """The current snapshot (cached per process, refreshed incrementally, reopened when the
        table was reset under the cache; see ``lakenodes._tables``), or None before creation."""
        prepare_filesystem(self.lake)  # used right after a first open (its commit's stamp): made meanwhile
        return cached_table(self._key, self.lake.storage_options or None,
                            lambda uri: lake_filesystem(self.lake, uri), refresh,
                            lambda operation: storage_errors(self.uri, operation, self.lake))

    @property
    def _key(self) -> tuple[str, str]:
        return _tables.table_key(self.uri, self.lake.storage_options)

    def is_open(self) -> bool:
        """Whether this process has the table open already (``table()`` then costs no log replay)."""
        return is_open(self._key)

    def found_missing(self) -> bool:
        """Whether this process's last look found no table (no I/O; see ``lakenodes.lake._tables``)."""
        return found_missing(self._key)

    def note_missing(self) -> None:
        """Record that a look other than an opening (a log listing) found no table."""
        note_missing(self._key)

    def table_as_of(self, as_of: Any = None) -> DeltaTable | None:
        """The snapshot at ``as_of`` (a version or a datetime, see ``lakenodes.lake.versions``; the
        current one when None); None before creation or for a moment before the table existed."""
        if type(as_of) is int and (held := self.table(refresh=False)) is not None and held.version() == as_of:
            return held  # a version never changes: the one this process holds is read without asking for newer ones
        table = self.table()
        if table is None and as_of is not None:
            resolve_as_of(None, as_of)  # a bad as_of (a negative version) is a mistake before the first write too
        if table is None or as_of is None:
            return table
        with storage_errors(self.uri, "read", self.lake):
            return table_as_of(table, as_of, self.lake.storage_options or None,
                               lambda uri: lake_filesystem(self.lake, uri))

    def exists(self) -> bool:
        return self.table() is not None

    def index_names(self) -> tuple[str, ...] | None:
        table = self.table(refresh=False)
        return index_names_of(table) if table is not None else None

    def schema(self) -> pa.Schema | None:
        table = self.table(refresh=False)
        return pa.schema(table.schema().to_arrow()) if table is not None else None

    def ensure_created(self, schema: pa.Schema, index_names: Sequence[str]) -> DeltaTable:
        """Create the table once; a concurrent creator winning the race is not an error.

        Version 0 is created exactly once (one ``metaData.id``, see ``lakenodes.lake._create``):
        threads of this process create under the table's lock; a process losing the race opens
        the winner's table.
        """
        with table_lock(self._key):
            return self._create_once(schema, index_names)

    def _create_once(self, schema: pa.Schema, index_names: Sequence[str]) -> DeltaTable:
        # found missing a moment ago (e.g. by the run's statistics): creating checks again (a round trip less)
        existing = None if found_missing(self._key) else self.table()
        if existing is not None:
            return existing
        failure: DeltaError | None = None
        try:
            created = create_empty(self.uri, self.storage_hash, schema, index_names, self.lake.storage_options)
        except DeltaError as error:  # another process created it between our check and our commit
            failure = error
            logger.debug("table %s created concurrently: %s", self.storage_hash, error)
        else:  # ours (or, mode="ignore", the one that appeared meanwhile): cached as it is, not reopened
            return adopt(self._key, created, lambda uri: lake_filesystem(self.lake, uri))
        opened = self.table()
        if opened is None:  # the creation failed for a reason of its own: name it
            raise table_not_created(self.uri, failure, self.lake) from failure
        return opened

    # -- writes ---------------------------------------------------------------------------------
    def write(
        self,
        frame: NormalizedFrame,
        watermarks: Callable[[DeltaTable | None], Mapping[tuple[str, ...], datetime.datetime]],
        *,
        metadata: Mapping[str, Any] | None = None,
        seen: Mapping[tuple[str, ...], datetime.datetime] | None = None,
    ) -> WriteResult:
        """Write ``frame`` in one commit: blind append when every row is newer than its identity's
        watermark, else one merge on the full index (restatements replace, never duplicate; rows
        equal to the stored row of their index are not rewritten, and when all are, nothing is
        committed: the result has ``version`` None).

        ``watermarks`` computes the stored watermark per identity from a snapshot (None: the
        table this process found missing, which the write creates holding the rows, in one
        commit); it is re-evaluated on every retry so a retry after a concurrent commit decides
        afresh. ``seen``
        are the watermarks the frame was computed from: when one of the frame's identities now
        has an earlier one (a tail delete landed since), nothing is written and
        ``WatermarkMovedError`` is raised (the caller recomputes the frame).

        A retry that finds an earlier attempt's commit landed (its answer was lost) returns what
        that attempt wrote.
        """
        write_id = f"lakenodes-{uuid.uuid4().hex}"
        custom_metadata = {"lakenodes.write_id": write_id, **{k: str(v) for k, v in (metadata or {}).items()}}
        committing: list[WriteResult] = []  # what each attempt that went on to commit was writing

        def attempt() -> WriteResult:
            if not committing and found_missing(self._key):  # a new table: created with the rows
                created = self._create_with(frame, write_id, custom_metadata, watermarks, seen, committing)
                if created is not None:
                    return created
            table = self.ensure_created(frame.table.schema, frame.index_names)
            # write_id is fresh: only a retry can find it committed (by the last attempt that committed)
            if committing and table.transaction_version(write_id) is not None:
                logger.info("write %s was already committed by an earlier attempt", write_id)
                return committing[-1]
            compared = compare_since_seen(self.uri, frame, seen, watermarks(table))
            overlap = rows_at_or_before_watermark(frame, compared)
            if overlap == 0:
                properties = CommitProperties(
                    app_transactions=[app_transaction(write_id), *identity_transactions(frame, compared)],
                    custom_metadata={**custom_metadata, "lakenodes.operation": "WRITE"},
                )
                committing.append(WriteResult(frame.num_rows, 0, table.version() + 1))
                rows = to_plain(frame.table)
                write_deltalake(table, rows, mode="append", commit_properties=properties,
                                post_commithook_properties=commit_hooks(table), writer_properties=writer_properties(rows.schema))
                warn_of_small_files(table, self.storage_hash)  # the cached table is now at our commit
                return replace(committing[-1], version=table.version())
            version = table.version() + 1
            same = restate(self.lake, table, frame, write_id, {**custom_metadata, "lakenodes.operation": "MERGE"},
                           lambda same: committing.append(WriteResult(
                               frame.num_rows - overlap, overlap - same.true_count, version, same.true_count, same)))
            if same.true_count == frame.num_rows:  # every row is stored as it is: no commit, no new version
                return WriteResult(0, 0, None, same.true_count, same)
            return committing[-1]

        result = self.with_retries(attempt, what=f"write to {self.storage_hash}")
        if result.version is not None and result.rows_appended < frame.num_rows:
            # a merge commits apart from the cached table: bring it to that commit
            try:
                self.table()
            except (OSError, DeltaError) as error:  # the commit has landed: a failed refresh must not fail it
                logger.warning("write to %s committed; refreshing the snapshot failed: %s", self.storage_hash,
                               one_line(error))
        return result

    def _create_with(self, frame: NormalizedFrame, write_id: str, custom_metadata: Mapping[str, str],
                     watermarks: Callable[[DeltaTable | None], Mapping[tuple[str, ...], datetime.datetime]],
                     seen: Mapping[tuple[str, ...], datetime.datetime] | None,
                     committing: list[WriteResult]) -> WriteResult | None:
        """Create the table holding ``frame``'s rows in one commit (``watermarks(None)``: there are
        none yet; ``WatermarkMovedError`` when ``frame`` was computed from watermarks the table had
        before it was dropped); None when it exists by now (the caller appends to it)."""
        def commit() -> None:
            compared = compare_since_seen(self.uri, frame, seen, watermarks(None))
            committing.append(WriteResult(frame.num_rows, 0, 0))
            create_with_rows(self.uri, self.storage_hash, to_plain(frame.table), frame.index_names,
                             self.lake.storage_options, [app_transaction(write_id), *identity_transactions(frame, compared)],
                             {**custom_metadata, "lakenodes.operation": "WRITE"})

        return committing[-1] if self.create_holding(commit) else None

    def create_holding(self, commit: Callable[[], None]) -> bool:
        """Create the table with ``commit`` (``lakenodes.lake._create``: its first rows or files)
        when this process found it missing; False, with nothing committed, when it exists by now
        (found by this process, another thread's or process's creation): the caller commits to it.
        Any other failure is raised, for ``with_retries`` to decide on."""
        with table_lock(self._key):
            if not found_missing(self._key):  # another thread of this process created it meanwhile
                return False
            failure: DeltaError | None = None
            try:
                commit()
            except DeltaError as error:  # looked into below: here, the open's errors would chain to it
                failure = error
            if failure is not None:
                if self.table() is None:  # no race lost: the creation failed for a reason of its own
                    raise table_not_created(self.uri, failure, self.lake) from failure
                logger.debug("table %s created concurrently: %s", self.storage_hash, failure)
                return False
            with storage_errors(self.uri, "open", self.lake):
                created = DeltaTable(self.uri, storage_options=self.lake.storage_options or None)
            adopt(self._key, created, lambda uri: lake_filesystem(self.lake, uri))
            return True

    def delete_after(
        self,
        after: datetime.datetime,
        *,
        dimension_filters: Mapping[str, Sequence[str]] | None = None,
        coordinates: Sequence[Mapping[str, str]] | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete rows with ``time_index >= after``, optionally only within ``dimension_filters``
        (``{dim: [values]}``) and/or ``coordinates`` (``[{dim: value, ...}]``); returns rows deleted
        (with ``dry_run``, the rows it would delete, and nothing is written).

        One commit that rewrites only the files holding deleted rows (plain types, see
        ``lakenodes._rewrite``); a retry after a late failure does not delete twice.
        """
        table = self.table()
        if table is None:
            return 0
        check_dimensions(index_names_of(table), [*(dimension_filters or {}), *(d for c in coordinates or () for d in c)])
        predicate = time_window(after, True, None, True)
        for dimension, values in (dimension_filters or {}).items():
            predicate = all_of(predicate, one_of(dimension, values))
        if coordinates:
            predicate = all_of(predicate, coordinates_filter(coordinates))
        scopes = [RangeFilter(coordinate, start=after) for coordinate in coordinates or []]
        pruning = Pruning.of(after, None, dimension_filters, scopes or None)
        if dry_run:
            return delete_rows(self.lake, table, pruning, predicate, "")
        write_id = f"lakenodes-{uuid.uuid4().hex}"
        pending: list[int] = []

        def attempt() -> int:
            table = self.table()
            if pending and table.transaction_version(write_id) is not None:
                return pending[-1]  # an earlier attempt landed although it reported a failure
            return delete_rows(self.lake, table, pruning, predicate, write_id, pending.append)

        deleted = self.with_retries(attempt, what=f"delete from {self.storage_hash}")
        self.table()
        return deleted

    def with_retries(self, operation: Callable[[], T], what: str) -> T:
        """``operation()`` retried on commit conflicts and transient storage errors (backoff with
        jitter). Each attempt holds the table's lock (``lakenodes._tables``): no other thread of
        this process advances the cached snapshot between the attempt's decision and its commit."""
        for attempt in range(self.retry.attempts):
            try:
                with table_lock(self._key):
                    return guarded(operation, self.uri, what, self.lake)  # storage faults: one-line StorageErrors
            except (DeltaError, OSError) as error:  # conflicts, transient faults, a log entry trimmed meanwhile
                reason = retry_reason(error, attempt + 1)  # a full/read-only disk: None, fail fast
                if reason is None or attempt + 1 == self.retry.attempts:
                    raise
                delay = self.retry.delay(attempt)
                logger.warning("%s: %s; retrying in %.2fs", what, reason, delay)
                time.sleep(delay)  # the next attempt refreshes the snapshot itself (inside the retries)
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
        as_of: Any = None,
    ) -> pa.Table | None:
        """Rows matching all filters, index columns first, sorted by the index; None before creation.
        ``as_of``: the table at that version or moment (no rows, the current schema, before it existed)."""
        table = self.table_as_of(as_of)
        if table is None:
            current = self.table(refresh=False)
            return None if current is None else empty_table(pa.schema(current.schema().to_arrow()),
                                                            index_names_of(current), columns)
        index_names = index_names_of(table)
        check_dimensions(index_names, [*(dimension_filters or {}), *(d for r in ranges or () for d in r.coordinate)])
        expression = time_window(start, start_inclusive, end, end_inclusive)
        for dimension, values in (dimension_filters or {}).items():
            expression = all_of(expression, one_of(dimension, values))
        selection = None
        if ranges is not None:
            if not ranges:
                return empty_table(pa.schema(table.schema().to_arrow()), index_names, columns)
            selection = range_selection(ranges)
            expression = all_of(expression, selection.expression)
        selected = selected_columns(index_names, table, columns)
        # a time window alone (or ranges matched after the scan) selects the rows of the files chosen:
        # they may be read by polars or whole (see _polars_scan, _small_read)
        own = TimeWindow(start, start_inclusive, end, end_inclusive)
        window = None if not filters_files_only(dimension_filters, index_names) \
            else own if selection is None else selection.polars_window(own)
        with storage_errors(self.uri, "read", self.lake):
            data = scan_table(self.lake, table, index_names, Pruning.of(start, end, dimension_filters, ranges), selected, expression,
                              window)
        if selection is not None and selection.exact is not None:
            data = selection.exact(data)
        return data.sort_by([(name, "ascending") for name in index_names])
