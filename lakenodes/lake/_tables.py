"""The process-wide cache of open ``DeltaTable`` objects: one per table (and storage options).

Opening a table replays its log (tens of ms locally, about a second on S3 for a long log), so a
process keeps one object per table and refreshes it incrementally. Two rules keep that safe:

- **One lock per table.** Every change of the cached object (an incremental refresh, a commit
  through it, which advances it to the new version) happens under the table's re-entrant lock,
  and ``TableStore.with_retries`` holds it for a whole write attempt. So a thread's attempt
  decides (reads watermarks) and commits from the same snapshot: no other thread of the process
  can advance the shared object in between, which would make the commit's read version include
  another writer's commit and hide it from delta-rs's conflict check (duplicated rows).
- **Reset detection.** The object remembers the size and modification time of the commit file of
  a version it holds. If that file changed or vanished (the table folder was removed, or removed
  and rebuilt by another process, or the log was trimmed past it), or delta-rs refuses the
  refresh because the log went backwards, the object is dropped and the table opened afresh (or
  reported missing); a table whose ``metaData.id`` changed is reported as replaced, a trimmed log
  of the same table is not. Without this a process either failed every refresh ("the newest
  version in the log 1 is older than the existing snapshot version 3") or replayed the new
  table's later commits on top of the old state.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from .._internal.caches import register_cache
from .._internal.deferred import pafs
from .._internal.threads import in_threads, storage_threads
from ._delta_log import Stamp, commit_path, commit_stamp
from ._retry import log_entry_vanished
from .location import options_key

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (table URI, storage options as sorted JSON)
FileSystemOf = Callable[[str], tuple[Any, str]]  # table URI -> (pyarrow filesystem, root path)
Guard = Callable[[str], AbstractContextManager[Any]]  # operation ("open", "refresh") -> error mapping


def _unguarded(operation: str) -> AbstractContextManager[Any]:
    return contextlib.nullcontext()


@dataclass
class _Cached:
    table: DeltaTable
    stamp: Stamp  # (version, size, mtime_ns) of that version's commit file
    table_id: str  # metaData.id: a table removed and created again has a new one


_table_cache: dict[Key, _Cached] = {}
_cache_lock = threading.Lock()
_locks: dict[Key, threading.RLock] = {}  # per-table locks: state in use, not a cache
# the tables this process last found missing (until it opens or creates them): creating one of
# those skips its own existence check (a creation that finds a table created since opens it)
_missing: set[Key] = set()
# the cache keys of the open objects of each table, by the table's own URI and options (as its object reports
# them): known_stamp and superseded look a table up here, not through every open table (a process that read
# 1,000 tables, `data-node list`, scanned them all for each one)
_keys_of_table: dict[Key, set[Key]] = {}


def _forget_tables() -> None:
    with _cache_lock:
        _table_cache.clear()
        _keys_of_table.clear()
        _missing.clear()


def _own_key(table: DeltaTable) -> Key:
    return table_key(table.table_uri, table._storage_options)


def _put(key: Key, entry: _Cached) -> None:
    """Cache ``entry`` as the object of ``key`` (under ``_cache_lock``)."""
    _drop(key)
    _table_cache[key] = entry
    _keys_of_table.setdefault(_own_key(entry.table), set()).add(key)
    _missing.discard(key)


def _drop(key: Key) -> None:
    """Forget the cached object of ``key``, if any (under ``_cache_lock``)."""
    entry = _table_cache.pop(key, None)
    if entry is not None:
        keys = _keys_of_table[_own_key(entry.table)]
        keys.discard(key)
        if not keys:
            del _keys_of_table[_own_key(entry.table)]


def _entries_of(table: DeltaTable) -> list[_Cached]:
    """The cached objects of ``table``'s table, ``table`` itself among them if it is cached (under ``_cache_lock``)."""
    return [_table_cache[key] for key in _keys_of_table.get(_own_key(table), ())]


register_cache("tables.open", _table_cache, _forget_tables)


def table_lock(key: Key) -> threading.RLock:
    """The re-entrant lock serializing changes of the cached object of ``key`` in this process."""
    with _cache_lock:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = threading.RLock()
        return lock


def cached_table(key: Key, options: dict[str, str] | None, filesystem_of: FileSystemOf,
                 refresh: bool = True, guard: Guard = _unguarded) -> DeltaTable | None:
    """The cached table of ``key`` (opened on first use; brought to the latest version when
    ``refresh``); None when no table exists at its URI. A table that was reset under the cache
    is reopened (see module doc). ``guard(operation)`` wraps each open and refresh (error mapping)."""
    uri = key[0]
    if not refresh:
        with _cache_lock:
            entry = _table_cache.get(key)
        if entry is not None:
            return entry.table
    with table_lock(key):
        with _cache_lock:
            entry = _table_cache.get(key)
        if entry is not None and (not refresh or _refreshed(entry, filesystem_of, guard)):
            return entry.table
        if entry is not None:
            forget(key)
        try:
            with guard("open"):
                opened = _open(uri, options)
        except TableNotFoundError:
            if entry is not None:
                logger.warning("table %s was removed since this process opened it (version %d)", uri, entry.stamp[0])
            with _cache_lock:
                _missing.add(key)
            return None
        table_id = opened.metadata().id
        if entry is not None and entry.table_id != table_id:
            logger.warning("table %s was replaced since this process opened it (version %d): reopened it",
                           uri, entry.stamp[0])
        elif entry is not None:
            logger.debug("table %s: the log was trimmed past version %d: reopened it", uri, entry.stamp[0])
        entry = _Cached(opened, _stamp(opened, filesystem_of), table_id)
        with _cache_lock:
            _put(key, entry)
        return opened


def adopt(key: Key, table: DeltaTable, filesystem_of: FileSystemOf) -> DeltaTable:
    """Cache ``table``, an object this process just created the table with, as the object of
    ``key`` (no reopening: a log listing and read, two round trips on S3) unless one is cached
    already; return the cached object."""
    with table_lock(key):
        with _cache_lock:
            entry = _table_cache.get(key)
        if entry is None:
            entry = _Cached(table, _stamp(table, filesystem_of), table.metadata().id)
            with _cache_lock:
                _put(key, entry)
        return entry.table


def known_stamp(table: DeltaTable) -> Stamp | None:
    """The (version, size, mtime_ns) this cache took of the commit file of ``table``'s current
    version, when it holds that very object at that version (no I/O); None otherwise."""
    with _cache_lock:
        for entry in _entries_of(table):
            if entry.table is table and entry.stamp[0] == table.version():
                return entry.stamp
    return None


def superseded(table: DeltaTable) -> bool:
    """Whether this cache holds a newer version of ``table``'s table than ``table`` itself: ``table``
    is a time-travel snapshot (no I/O)."""
    with _cache_lock:  # the same table: the same URI in the same store
        return any(entry.table is not table and entry.stamp[0] > table.version() for entry in _entries_of(table))


def table_key(uri: str, storage_options: Mapping[str, str] | None) -> Key:
    """The cache key of a table: its URI and storage options."""
    return uri, options_key(storage_options)


def seen_version(uri: str, storage_options: Mapping[str, str] | None) -> int | None:
    """The version of the table's open object: what this process last saw of it, None when it
    holds none; no I/O, and cheaper than a ``TableStore`` (for a property read in a loop)."""
    with _cache_lock:
        entry = _table_cache.get(table_key(uri, storage_options))
    return None if entry is None else entry.table.version()


def is_open(key: Key) -> bool:
    """Whether this process holds an open object of ``key`` (no I/O)."""
    with _cache_lock:
        return key in _table_cache


def found_missing(key: Key) -> bool:
    """Whether this process's last look for ``key`` found no table (no I/O; another process may
    have created it since: only for choices a table found after all still makes right)."""
    with _cache_lock:
        return key in _missing


def note_missing(key: Key) -> None:
    """Record that a look for ``key`` other than an opening (a log listing) found no table."""
    with _cache_lock:
        if key not in _table_cache:
            _missing.add(key)


def forget(key: Key | None = None) -> None:
    """Drop the cached object of ``key`` (every cached object when None); the next use reopens it."""
    with _cache_lock:
        if key is None:
            _table_cache.clear()
            _keys_of_table.clear()
        else:
            _drop(key)


def _refreshed(entry: _Cached, filesystem_of: FileSystemOf, guard: Guard) -> bool:
    """Bring ``entry`` to the table's latest version; False when the table is not the cached one."""
    with guard("refresh"):
        if _nothing_committed_since(entry, filesystem_of):
            return True
    try:
        with guard("refresh"):
            entry.table.update_incremental()
    except (DeltaError, OSError) as error:
        if log_entry_vanished(error):
            return False
        if _unchanged(entry, filesystem_of):
            raise  # a real failure of a table that is still there
        return False
    if not _unchanged(entry, filesystem_of):  # rebuilt past our version: the refresh mixed two tables
        return False
    if entry.table.version() != entry.stamp[0]:
        entry.stamp = _stamp(entry.table, filesystem_of)
    return True


def _nothing_committed_since(entry: _Cached, filesystem_of: FileSystemOf) -> bool:
    """Whether the cached object is the table's latest version: no commit file after its version,
    and the one stamped unchanged. Two probes instead of delta-rs's log listing (~0.7 ms locally;
    on an object store a listing and then the stamp's request, where these two go out at once).

    An object ahead of its stamp advanced by this process's own commits through it (every other
    change restamps it): the stamped file unchanged, the table is the one those commits went
    to, and the object's own commit file is stamped too (a third probe, not a listing)."""
    filesystem, root = filesystem_of(entry.table.table_uri)
    version = entry.table.version()
    if version < entry.stamp[0]:
        return False
    probes: list[Callable[[], Any]] = [lambda: not _commit_exists(filesystem, root, version + 1),
                                       lambda: _unchanged(entry, filesystem_of)]
    if version > entry.stamp[0]:
        probes.append(lambda: commit_stamp(filesystem, root, version))
    answers = in_threads(lambda probe: probe(), probes, max_threads=storage_threads(filesystem, len(probes)))
    if not (answers[0] and answers[1]):
        return False
    if len(answers) == 3:
        entry.stamp = answers[2]
    return True


def _commit_exists(filesystem: Any, root: str, version: int) -> bool:
    """Whether the commit file of ``version`` exists: a stat locally; on an object store one
    request (opening the object asks for its head; a missing-file info would list its "folder" too)."""
    if isinstance(filesystem, pafs.LocalFileSystem):
        return commit_stamp(filesystem, root, version)[1] is not None
    try:
        with filesystem.open_input_stream(commit_path(root, version)):
            return True
    except FileNotFoundError:
        return False


_OPEN_ATTEMPTS = 3


def _open(uri: str, options: dict[str, str] | None) -> DeltaTable:
    """Open the table, again when a log entry it was reading vanished: catalog housekeeping in
    another process trims old log entries, and an open that read ``_last_checkpoint`` just before
    may look for a checkpoint deleted since (the next open starts from the newer one)."""
    attempt = 1
    while True:
        try:
            return DeltaTable(uri, storage_options=options)
        except DeltaError as error:
            if attempt == _OPEN_ATTEMPTS or not log_entry_vanished(error):
                raise
            logger.debug("opening %s: a log entry vanished while reading it (%s): opening again", uri, error)
            attempt += 1


def _stamp(table: DeltaTable, filesystem_of: FileSystemOf) -> Stamp:
    return commit_stamp(*filesystem_of(table.table_uri), table.version())


def _unchanged(entry: _Cached, filesystem_of: FileSystemOf) -> bool:
    """Is the commit file of the version we remember still the one we saw? (Delta commit files
    are never rewritten; a missing one, whose stamp has no size, means the table, or that part
    of its log, is gone.)"""
    now = commit_stamp(*filesystem_of(entry.table.table_uri), entry.stamp[0])
    return now[1] is not None and now == entry.stamp
