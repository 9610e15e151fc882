"""Append-only Delta tables under ``<root>/_catalog/``: lakenodes' own metadata store.

Every change is a blind append (conflict-free in Delta); the current state of a record is its
latest row. Claims (``lakenodes.lake.claims``) are built on them.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import threading
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from deltalake import CommitProperties, DeltaTable, PostCommitHookProperties, Transaction, write_deltalake

from .._internal.arrow_rows import arrow_table, empty_table, python_rows
from .._internal.caches import register_cache
from .._internal.deferred import pa, pafs, pq
from .._internal.plain_arrow import cast_column, cast_table
from .._internal.threads import in_threads, storage_threads
from ..errors import UnreadableFileError, one_line
from ._delta_log import app_ids_in_log
from ._retry import RetryPolicy
from ._scan import add_actions, plain_schema, to_plain
from ._tables import table_lock
from ._unreadable import is_missing, missing_catalog_file, naming_unreadable
from .housekeeping import HousekeepingPolicy, LiveFile, housekeep
from .location import Lake, delete_file, file_exists, lake_filesystem, options_key, write_small_file
from .store import TableStore, data_file_path

logger = logging.getLogger(__name__)

RECORDED_AT = "recorded_at"
MARKS_DIR = "_lakenodes/marks"  # beside a ledger's data: Delta readers and vacuum skip folders named _*


def _digest40(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class _LedgerSnapshot:
    """The rows of one version of a ledger, per data file (files are immutable, so a newer version
    reuses the files it shares with an older one), and the latest row per key once computed."""

    table_id: str  # the Delta table's metadata id: a table deleted and created again is another table
    version: int
    files: dict[str, LiveFile]
    rows: pa.Table
    latest: pa.Table | None = None


_NO_HOOKS = PostCommitHookProperties(create_checkpoint=False, cleanup_expired_logs=False)
_snapshots: dict[tuple[str, str], _LedgerSnapshot] = {}  # per ledger: its newest version read in this process
_snapshots_lock = threading.Lock()


class Ledger:
    """One append-only catalog table; rows carry ``recorded_at`` and the latest row per key wins.

    Reads are cached per process by table version and per data file, so a read after a few new
    appends only opens the new files. Writers tidy the table every ``housekeeping.interval``
    commits (compaction, checkpoint, log cleanup; see :mod:`lakenodes.lake.housekeeping`).

    Example:
        >>> schema = pa.schema([("name", pa.string()), ("value", pa.string())])
        >>> ledger = Ledger(Lake("/tmp/my-lake"), "notes", schema, key=("name",))
        >>> ledger.uri.endswith("_catalog/notes")
        True
    """

    def __init__(self, lake: Lake, name: str, schema: pa.Schema, key: Sequence[str], retry: RetryPolicy | None = None,
                 housekeeping: HousekeepingPolicy | None = None):
        self.lake = lake
        self.name = name
        self.key = tuple(key)
        self.schema = schema.append(pa.field(RECORDED_AT, pa.timestamp("us", tz="UTC"))) \
            if RECORDED_AT not in schema.names else schema
        self.uri = lake.catalog_uri(name)
        self.housekeeping = housekeeping or HousekeepingPolicy()
        self._store = TableStore(lake, name, uri=self.uri, retry=retry)
        self._cache_key = (self.uri, options_key(lake.storage_options))  # as TableStore's key

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append rows (``recorded_at`` is filled in) as one commit, retrying on conflicts; the
        writer of every ``housekeeping.interval``-th version then tidies the table (best effort)."""
        if not rows:
            return
        now = utcnow()
        data = self.stamped(rows, now)
        # a fresh id: no commit can have recorded it before this call's first attempt
        self._commit({f"lakenodes-{uuid.uuid4().hex}": data}, now, recorded_before=False)

    def stamped(self, rows: Sequence[Mapping[str, Any]], now: datetime.datetime | None = None) -> pa.Table:
        """``rows`` as a table of this ledger, ``recorded_at`` filled in (``now``, else the current time)."""
        now = utcnow() if now is None else now
        return arrow_table([{RECORDED_AT: now, **row} for row in rows], self.schema)

    def append_batches(self, batches: Mapping[str, pa.Table]) -> None:
        """Append the rows of each named batch (rows holding their ``recorded_at``) as one commit
        that records every name, skipping the batches a commit recorded already (by any process):
        appending a batch again adds nothing. On return, every batch is in the table."""
        self._commit({f"lakenodes.batch.{name}": cast_table(rows, self.schema) for name, rows in batches.items()},
                     utcnow(), recorded_before=True)

    def _commit(self, batches: Mapping[str, pa.Table], now: datetime.datetime, recorded_before: bool) -> None:
        """One blind append of the batches not recorded yet, each recorded as an app transaction (so
        an attempt whose commit landed but whose answer was lost is not appended twice)."""
        if not batches:
            return
        # housekeeping checkpoints and cleans the log itself; delta-rs's hooks would list the whole
        # log after every commit (its expired-log check), a cost that grows with the table's history
        hooks = _NO_HOOKS if self.housekeeping.interval else None
        stamp = int(now.timestamp() * 1000)  # app transactions expire with the log retention
        attempts = 0
        committed: list[int] = []

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            table = self._store.ensure_created(self.schema, ("recorded_at",))
            todo = list(batches)
            if recorded_before or attempts > 1:  # (a fresh id only by this call's attempt that landed)
                recorded = self._recorded(table, todo)
                todo = [app_id for app_id in todo if app_id not in recorded]
            if not todo:
                return
            properties = CommitProperties(app_transactions=[Transaction(app_id, 1, last_updated=stamp) for app_id in todo])
            write_deltalake(table, pa.concat_tables([batches[app_id] for app_id in todo]), mode="append",
                            commit_properties=properties, post_commithook_properties=hooks)
            committed.append(table.version())  # the snapshot right after our own commit

        self._store.with_retries(attempt, what=f"catalog append to {self.name}")
        if committed and self.housekeeping.due(committed[-1]):
            self.tidy()

    def _recorded(self, table: DeltaTable, app_ids: Sequence[str]) -> set[str]:
        """Which of ``app_ids`` a commit of ``table`` recorded: from its log read once (its
        checkpoint's app transactions and the commits since), else asked of delta-rs one by one."""
        filesystem, root = lake_filesystem(self.lake, self.uri)
        found = app_ids_in_log(filesystem, root, table.version(), app_ids)
        if found is None:
            found = {app_id for app_id in app_ids if table.transaction_version(app_id) is not None}
        return found

    def tidy(self) -> None:
        """Compact, checkpoint and clean up the log of this table now (best effort, never raises).

        Works on its own ``DeltaTable`` at the version whose files it compacts, never on the
        process's shared cached one (which only its lock holders may advance)."""
        try:
            snapshot = self._snapshot()
            if snapshot is None:
                return
            table = DeltaTable(self.uri, version=snapshot.version, storage_options=self.lake.storage_options or None)
        except Exception as error:  # the write that asked for housekeeping has committed: never fail it
            logger.warning("catalog housekeeping of _catalog/%s could not read the table: %s", self.name,
                           one_line(error))
            return
        housekeep(self.lake, table, list(snapshot.files.values()), f"_catalog/{self.name}",
                  keep_versions=self.housekeeping.interval)

    def marked(self, name: str, group: str | None = None) -> bool:
        """Whether ``mark(name, group=group)`` was called on this table: one small request, no log replay."""
        return file_exists(*self._mark_path(name, group))

    def mark(self, name: str, data: bytes = b"", group: str | None = None) -> None:
        """Leave the file ``_lakenodes/marks/[<digest of group>/]<digest of name>`` (empty, or holding
        ``data``) beside the table: a fact about its rows that a fresh process checks with one request.
        Call it only once the rows it stands for are committed (a crash before it only costs the next
        process a read of the table). ``group``: the marks ``unmark_group`` removes together."""
        write_small_file(*self._mark_path(name, group), data)

    def mark_data(self, name: str, group: str | None = None) -> bytes | None:
        """What ``mark(name, data, group)`` left (None when there is no such mark)."""
        filesystem, path = self._mark_path(name, group)
        try:
            with filesystem.open_input_stream(path) as stream:
                return stream.read()
        except FileNotFoundError:
            return None

    def unmark(self, name: str, group: str | None = None) -> None:
        """Remove ``mark(name, group=group)`` (the rows it stood for were removed): the next check reads the table."""
        filesystem, path = self._mark_path(name, group)
        with contextlib.suppress(FileNotFoundError):
            delete_file(filesystem, path)

    def unmark_group(self, group: str) -> None:
        """Remove every mark left with ``group``: the next check of any of them reads the table."""
        filesystem, folder = self._mark_path("", group)
        filesystem.delete_dir_contents(folder.rsplit("/", 1)[0], missing_dir_ok=True)

    def unmark_ungrouped(self) -> int:
        """Remove every mark left without a group, including marks of names this version cannot
        recompute (older lakenodes marked table records without the Delta table's id, and in no
        group): each process checks the table once more, then marks again. Returns how many were removed."""
        filesystem, root = lake_filesystem(self.lake, self.uri)
        selector = pafs.FileSelector(f"{root}/{MARKS_DIR}", allow_not_found=True)
        paths = [info.path for info in filesystem.get_file_info(selector) if info.type == pafs.FileType.File]

        def remove(path: str) -> None:
            with contextlib.suppress(FileNotFoundError):
                delete_file(filesystem, path)

        in_threads(remove, paths, storage_threads(filesystem, 16))
        return len(paths)

    def _mark_path(self, name: str, group: str | None = None) -> tuple[Any, str]:
        filesystem, root = lake_filesystem(self.lake, self.uri)
        folder = f"{root}/{MARKS_DIR}" + ("" if group is None else f"/{_digest40(group)}")
        return filesystem, f"{folder}/{_digest40(name)}"

    def version(self) -> tuple[str, int] | None:
        """The table's identity and current version (None before the first append): a cheap check of
        whether anything was appended since."""
        table = self._store.table()
        return None if table is None else (table.metadata().id, table.version())

    def latest_since(self, seen: Collection[str]) -> tuple[pa.Table, list[str]]:
        """The latest row of every key among the rows of data files not in ``seen`` (the files of an
        earlier call: what was appended since; after a compaction, every row), and the current files."""
        snapshot = self._snapshot()
        if snapshot is None:
            return empty_table(self.schema), []
        names, schema = snapshot.rows.column_names, snapshot.rows.schema
        new = [file.rows.select(names).cast(schema) for path, file in snapshot.files.items() if path not in seen]
        rows = pa.concat_tables(new) if new else empty_table(schema)
        return latest_rows(rows, self.key), list(snapshot.files)

    def read(self) -> pa.Table:
        """Every row ever appended (empty table when nothing was)."""
        snapshot = self._snapshot()
        if snapshot is None:
            return empty_table(self.schema)
        return snapshot.rows

    def latest(self, where: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The latest row of every key, in the order keys were first recorded; with ``where``, only
        those whose (latest) columns equal its values."""
        data = self.current()
        rows = python_rows(data)  # filtered in Python: pc.equal(column, value) would import pandas
        return [row for row in rows if all(row[column] == value for column, value in (where or {}).items())]

    def current(self) -> pa.Table:
        """The latest row of every key as an Arrow table (cached per table version)."""
        snapshot = self._snapshot()
        if snapshot is None:
            return empty_table(self.schema)
        if snapshot.latest is None:
            snapshot.latest = latest_rows(snapshot.rows, self.key)
        return snapshot.latest

    def _snapshot(self, opened: DeltaTable | None = None) -> _LedgerSnapshot | None:
        """This process's view of the table's current version (reading only files not read before).

        A file of the version read that is gone was removed since by a compaction and ``vacuum``
        (a race with catalog housekeeping: the newer version does not list it), or deleted outside
        lakenodes: the newer version is read once, and a file still missing then is an
        ``UnreadableFileError``. ``opened``: a snapshot of the table opened earlier to read first
        (by default the process's cached one)."""
        try:
            return self._read_snapshot(opened)
        except UnreadableFileError as error:
            if not error.missing:
                raise
            logger.info("_catalog/%s: file %s of the version read is gone (compacted and vacuumed since?): "
                        "reading the table's current version", self.name, error.file)
        return self._read_snapshot(None)

    def _read_snapshot(self, opened: DeltaTable | None) -> _LedgerSnapshot | None:
        with table_lock(self._cache_key):  # the shared cached table cannot advance while it is read
            table = self._store.table() if opened is None else opened
            if table is None:
                return None
            version, table_id = table.version(), table.metadata().id
            with _snapshots_lock:
                cached = _snapshots.get(self._cache_key)
            if cached is not None and cached.table_id != table_id:
                cached = None
            if cached is not None and cached.version == version:
                return cached
            sizes = live_files(table)
            schema = plain_schema(pa.schema(table.schema().to_arrow()))
        known = cached.files if cached is not None else {}
        new = [path for path in sizes if path not in known]
        fresh = dict(zip(new, read_files(self.lake, table, new, schema), strict=True))
        files = {path: known[path] if path in known else LiveFile(path, size, fresh[path])
                 for path, size in sizes.items()}
        data = pa.concat_tables([file.rows.cast(schema) for file in files.values()]) if files \
            else empty_table(schema)
        rows = data.select([name for name in self.schema.names if name in data.column_names])
        snapshot = _LedgerSnapshot(table_id, version, files, rows)
        with _snapshots_lock:
            current = _snapshots.get(self._cache_key)
            if current is None or current.table_id != table_id or current.version <= version:
                _snapshots[self._cache_key] = snapshot
        return snapshot


def latest_rows(data: pa.Table, key: Sequence[str]) -> pa.Table:
    """The latest row (by ``recorded_at``; on a tie the later one read) of every ``key``, in the
    order keys were first recorded."""
    if data.num_rows == 0:
        return data
    data = data.sort_by([(RECORDED_AT, "ascending")])
    # in polars: pyarrow's group_by and take of Python values import pandas (pyarrow's pandas shim)
    keys = pl.from_arrow(data.select(list(key))).with_row_index("__row")
    last = keys.group_by(list(key), maintain_order=True).agg(pl.col("__row").last())["__row"]
    return data.take(last.cast(pl.Int64).to_arrow())


def forget_cached_reads() -> None:
    """Drop this process's cached ledger reads (the next read opens the table's files again)."""
    with _snapshots_lock:
        _snapshots.clear()


register_cache("ledger.snapshots", _snapshots, forget_cached_reads)

def read_unpartitioned(lake: Lake, table: DeltaTable) -> pa.Table:
    """All rows of a small unpartitioned table, read with a native pyarrow filesystem.

    (delta-rs's own pyarrow dataset goes through a Python filesystem handler that can abort the
    interpreter at exit; native filesystems do not.)
    """
    schema = plain_schema(pa.schema(table.schema().to_arrow()))
    parts = read_files(lake, table, list(live_files(table)), schema)
    return pa.concat_tables(parts) if parts else empty_table(schema)


def live_files(table: DeltaTable) -> dict[str, int]:
    """Path (as in the log) and size of each live data file of ``table``'s loaded version."""
    actions = add_actions(table)
    return dict(zip(actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist(), strict=True))


def read_files(lake: Lake, table: DeltaTable, paths: Sequence[str], schema: pa.Schema) -> list[pa.Table]:
    """The rows of each data file in ``paths`` (in threads on S3, where each is a GET), as ``schema``
    (plain string types, missing columns null)."""
    if not paths:
        return []
    filesystem, root = lake_filesystem(lake, table.table_uri)

    def read(path: str) -> pa.Table:
        file = f"{root}/{data_file_path(path)}"
        try:
            return read_small_file(filesystem, file, schema)
        except OSError as error:
            if isinstance(error, UnreadableFileError) or not is_missing(error):
                raise
            raise missing_catalog_file(file, root) from error

    return in_threads(read, paths, max_threads=storage_threads(filesystem, 8))


def read_small_file(filesystem: Any, path: str, schema: pa.Schema) -> pa.Table:
    """The rows of one small Parquet file as ``schema`` (plain string types, missing columns null).

    The whole file in one read, parsed by ``pq.ParquetFile``: ``pq.read_table`` / pyarrow.dataset
    would import pandas (its module set-up converts a Python scalar), ~0.15 s of a daily run's process.
    """
    with filesystem.open_input_stream(path) as source, naming_unreadable(path):  # pyarrow's message names no file
        rows = pq.ParquetFile(pa.BufferReader(source.read())).read()
    return conform_columns(rows, schema)


def conform_columns(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """``rows`` as ``schema``: its columns in that order and type (plain string types), the
    columns ``rows`` lacks null, the ones ``schema`` lacks left out.

    Example:
        >>> conform_columns(pa.table({"b": [1], "c": [2]}), pa.schema([("a", pa.string()), ("b", pa.float64())]))
        pyarrow.Table
        a: string
        b: double
        ----
        a: [[null]]
        b: [[1]]
    """
    rows = to_plain(rows)
    columns = [cast_column(rows.column(field.name), field.type) if field.name in rows.column_names
               else pa.chunked_array([pa.nulls(rows.num_rows, field.type)]) for field in schema]
    return pa.Table.from_arrays(columns, schema=schema)
