"""Streamed appends: validated batches are written as Parquet files while they arrive (memory holds
one flush of rows), then committed in ONE Delta commit, so a bad batch anywhere leaves the table
exactly as it was (the files already written are deleted, and no reader ever saw them).

A stream is append-only: it cannot be replayed, so rows at or before their identity's stored
watermark (a restatement) are refused; collect such output into a DataFrame instead. The commit
carries the identity app transaction of every partition it advances (see ``_watermarks``) and is
retried on conflicts like every lakenodes write; a concurrent writer that appended rows of the
same identities meanwhile makes it fail with a clear error instead of duplicating rows.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl
from deltalake import CommitProperties, DeltaTable

from .._internal.deferred import pa
from ..core.frame_stream import FrameStream
from ..errors import ConcurrentCreationError, FrameValidationError, WatermarkMovedError
from ._commit_hooks import commit_hooks
from ._create import create_with_files
from ._delta_log import read_commit
from ._exact_bounds import learn_file_bounds
from ._rewrite import write_files
from ._scan import plain_schema, snapshot_of
from ._watermarks import (
    app_transaction,
    compare_since_seen,
    compare_watermarks,
    identity_transactions,
    overlapping_identities,
    refuse_moved_back,
)
from .location import delete_file, lake_filesystem
from .store import TableStore, WriteResult
from .versions import row_counts

logger = logging.getLogger(__name__)

FLUSH_ROWS = 2_000_000  # rows buffered before they are written out (one file per partition per flush)
Watermarks = Callable[[DeltaTable | None], Mapping[tuple[str, ...], datetime.datetime]]


def write_stream(
    store: TableStore,
    stream: FrameStream,
    watermarks: Watermarks,
    *,
    metadata: Mapping[str, Any] | None = None,
    seen: Mapping[tuple[str, ...], datetime.datetime] | None = None,
    flush_rows: int | None = None,
    before_commit: Callable[[], None] | None = None,
) -> WriteResult | None:
    """Append every row of ``stream`` in one commit (see module doc); None when it held no row.

    ``watermarks`` and ``seen`` are those of ``TableStore.write``; ``flush_rows``: rows buffered
    before they are written out (default ``FLUSH_ROWS``). ``before_commit`` runs once every file
    is written, before the table is created or committed to: when it raises, the files are deleted
    and nothing is committed (a run waits there for its identifier claim, which its uploads overlap).
    """
    flush_rows = flush_rows or FLUSH_ROWS
    write_id = f"lakenodes-{uuid.uuid4().hex}"
    files = _Files(store, seen)
    try:
        for frame in stream:
            files.add(frame, watermarks)
            if files.pending_rows >= flush_rows:
                files.flush()
        files.flush()
        if not files.adds:
            return None
        if before_commit is not None:
            before_commit()
        version = store.with_retries(lambda: _commit(store, stream, files, watermarks, seen, write_id, metadata),
                                     what=f"streamed write to {store.storage_hash}")
    except BaseException:
        files.discard(write_id)
        raise
    learn_file_bounds(store.lake, store.uri, files.bounds)  # statistics then read none of their footers
    return WriteResult(stream.num_rows, 0, version)


class _Files:
    """The data files of one streamed write: rows buffered, then written per partition."""

    def __init__(self, store: TableStore, seen: Mapping[tuple[str, ...], datetime.datetime] | None = None):
        self.store = store
        self.seen = seen  # the watermarks the stream was computed from (see _refuse_restatements)
        self.adds: list[Any] = []
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self._target: tuple[Any, str, pa.Schema, str | None] | None = None  # filesystem, root, schema, partition
        self.index_names: tuple[str, ...] = ()
        self.bounds: dict[str, Any] = {}  # exact time bounds of the files written, by relative path
        self._marks: Mapping[tuple[str, ...], datetime.datetime] = {}

    def add(self, frame: Any, watermarks: Watermarks) -> None:
        if self._target is None:  # the table is created by the commit: a bad first batch creates nothing
            # found missing by the run's validation a moment ago: not looked for again (a table created
            # since is met by the commit, which checks its types and watermarks)
            table = None if self.store.found_missing() else self.store.table()
            self._marks = {} if table is None else watermarks(table)
            if table is None:  # one dropped since update() read its watermarks is refused before any file is written
                refuse_moved_back(self.store.uri, frame, self.seen, {})
                schema = plain_schema(frame.table.schema)
                partition = frame.index_names[1] if len(frame.index_names) > 1 else None
            else:
                snapshot = snapshot_of(table, frame.index_names)
                schema, partition = snapshot.schema, snapshot.partition
            filesystem, root = lake_filesystem(self.store.lake, self.store.uri)
            self._target = (filesystem, root, schema, partition)
            self.index_names = frame.index_names
        if self._marks:  # a new table's stream (no watermark yet) restates nothing
            _refuse_restatements(self.store, frame, compare_watermarks(frame, self._marks), self.seen)
        self.pending.append(frame.table)
        self.pending_rows += frame.num_rows

    @property
    def schema(self) -> pa.Schema:
        assert self._target is not None
        return self._target[2]

    def flush(self) -> None:
        if not self.pending or self._target is None:
            return
        filesystem, root, schema, partition = self._target
        rows = pa.concat_tables(self.pending)
        self.pending, self.pending_rows = [], 0
        self.adds += write_files(filesystem, root, rows, schema, partition, sort_by=self.index_names,
                                 bounds=self.bounds)

    def discard(self, write_id: str) -> None:
        """Delete the files written (best effort: leftovers are unreferenced, invisible to readers)
        unless the commit landed."""
        if self._target is None or not self.adds:
            return
        filesystem, root = self._target[:2]
        try:
            table = self.store.table()
            if table is not None and table.transaction_version(write_id) is not None:
                return
            for add in self.adds:
                delete_file(filesystem, f"{root}/{add.path}")
        except Exception as error:  # noqa: BLE001 - cleanup must never mask the failure being raised
            logger.debug("could not discard the files of streamed write %s: %s", write_id, error)


def _refuse_restatements(store: TableStore, frame: Any, compared: pl.DataFrame,
                         seen: Mapping[tuple[str, ...], datetime.datetime] | None) -> None:
    """Refuse a stream holding rows at or before their identity's stored watermark: a restatement
    (the caller's mistake), unless every such watermark is later than the one ``update()`` was
    computed from (``seen``): then a concurrent writer appended them, and the run computes its
    rows again (``WatermarkMovedError``)."""
    overlapping = overlapping_identities(compared)
    if overlapping.height:
        dims = list(frame.identity_dimensions)
        identities = [tuple(row[dim] for dim in dims) for row in overlapping.iter_rows(named=True)]
        if seen is not None and all(
                seen.get(identity) is None or mark > seen[identity]
                for identity, mark in zip(identities, overlapping["watermark"].to_list(), strict=True)):
            raise WatermarkMovedError(store.uri, identities, forward=True)
        row = overlapping.row(0, named=True)
        who = ", ".join(f"{dim}={row[dim]!r}" for dim in dims) or "the series"
        raise FrameValidationError(
            f"the streamed update has rows of {who} from {row['lo'].isoformat()}, at or before its stored "
            f"watermark {row['watermark'].isoformat()}: a streamed update (RecordBatchReader, LazyFrame) only "
            "appends; return a DataFrame to restate stored rows")


def _refuse_other_types(store: TableStore, files: _Files, table: DeltaTable) -> None:
    """The written files must have the table's column types: another writer may have created the
    table, with types of its own, after the stream's first batch was typed (Delta readers would
    then meet files that disagree with the table's schema)."""
    stored = plain_schema(pa.schema(table.schema().to_arrow()))
    written = plain_schema(files.schema)
    if [(f.name, f.type) for f in written] != [(f.name, f.type) for f in stored]:
        raise ConcurrentCreationError(
            f"table {store.storage_hash} was created by another writer while this stream was written, with other "
            f"columns or types ({', '.join(f'{f.name}: {f.type}' for f in stored)}; the stream has "
            f"{', '.join(f'{f.name}: {f.type}' for f in written)}): nothing was written; run it again")


def _commit(store: TableStore, stream: FrameStream, files: _Files, watermarks: Watermarks,
            seen: Mapping[tuple[str, ...], datetime.datetime] | None, write_id: str,
            metadata: Mapping[str, Any] | None) -> int:
    """One commit attempt of the written files, decided afresh from the current snapshot: one that
    finds the table missing (this process's last look) creates it holding them. A retry after a
    creation that landed unreported finds the table, then its own commit in it."""
    # the rows counted here: delta-rs records no operation metrics for a commit of files written outside it
    custom_metadata = {"lakenodes.write_id": write_id, "lakenodes.operation": "WRITE", **row_counts(stream.num_rows, 0, 0),
                       **{key: str(value) for key, value in (metadata or {}).items()}}
    if store.create_holding(lambda: create_with_files(
            store.uri, store.storage_hash, files.schema, files.adds, files.index_names, store.lake.storage_options,
            [app_transaction(write_id),
             *identity_transactions(stream, compare_since_seen(store.uri, stream, seen, watermarks(None)))],
            custom_metadata)):
        return 0
    table = store.ensure_created(files.schema, files.index_names)
    if table.transaction_version(write_id) is not None:  # an earlier attempt's commit landed although it reported a failure
        return table.version()
    compared = compare_since_seen(store.uri, stream, seen, watermarks(table))
    _refuse_restatements(store, stream, compared, seen)  # a concurrent writer appended rows of them meanwhile
    _refuse_other_types(store, files, table)
    properties = CommitProperties(app_transactions=[app_transaction(write_id), *identity_transactions(stream, compared)],
                                  custom_metadata=custom_metadata)
    partition_columns = list(table.metadata().partition_columns)
    read_version = table.version()
    table.create_write_transaction(files.adds, mode="append", schema=pa.schema(table.schema().to_arrow()),
                                   partition_by=partition_columns or None, commit_properties=properties,
                                   post_commithook_properties=commit_hooks(table))
    return _committed_version(store, write_id, read_version)


def _committed_version(store: TableStore, write_id: str, read_version: int) -> int:
    """The version our commit (read at ``read_version``) landed at, with the cached table brought
    to it or later (``create_write_transaction`` leaves the object where it was). Only when
    another commit came in between or after does a commit file have to be read to tell."""
    latest = store.table().version()
    if latest == read_version + 1:
        return latest
    filesystem, root = lake_filesystem(store.lake, store.uri)
    for version in range(read_version + 1, latest + 1):
        if read_commit(filesystem, root, version)[1].get("lakenodes.write_id") == write_id:
            return version
    return latest
