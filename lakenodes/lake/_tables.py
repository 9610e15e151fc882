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
  and rebuilt by another process), or delta-rs refuses the refresh because the log went
  backwards, the table is not the one cached: the object is dropped and the table opened afresh
  (or reported missing). Without this a process either failed every refresh ("the newest
  version in the log 1 is older than the existing snapshot version 3") or replayed the new
  table's later commits on top of the old state.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from .._internal.caches import register_cache
from .._internal.deferred import pafs

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (table URI, storage options as sorted JSON)
FileSystemOf = Callable[[str], tuple[Any, str]]  # table URI -> (pyarrow filesystem, root path)
Guard = Callable[[str], AbstractContextManager[Any]]  # operation ("open", "refresh") -> error mapping


def _unguarded(operation: str) -> AbstractContextManager[Any]:
    return contextlib.nullcontext()


@dataclass
class _Cached:
    table: DeltaTable
    stamp: tuple[int, int | None, int | None]  # (version, size, mtime_ns) of that version's commit file


_table_cache: dict[Key, _Cached] = {}
_cache_lock = threading.Lock()
_locks: dict[Key, threading.RLock] = {}  # per-table locks: state in use, not a cache


def _forget_tables() -> None:
    with _cache_lock:
        _table_cache.clear()


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
            logger.warning("table %s was removed or replaced since this process opened it (version %d): "
                           "reopening it", uri, entry.stamp[0])
            forget(key)
        try:
            with guard("open"):
                opened = DeltaTable(uri, storage_options=options)
        except TableNotFoundError:
            return None
        entry = _Cached(opened, _stamp(opened, filesystem_of))
        with _cache_lock:
            _table_cache[key] = entry
        return opened


def forget(key: Key | None = None) -> None:
    """Drop the cached object of ``key`` (every cached object when None); the next use reopens it."""
    with _cache_lock:
        if key is None:
            _table_cache.clear()
        else:
            _table_cache.pop(key, None)


def _refreshed(entry: _Cached, filesystem_of: FileSystemOf, guard: Guard) -> bool:
    """Bring ``entry`` to the table's latest version; False when the table is not the cached one."""
    try:
        with guard("refresh"):
            entry.table.update_incremental()
    except (DeltaError, OSError):
        if _unchanged(entry, filesystem_of):
            raise  # a real failure of a table that is still there
        return False
    if not _unchanged(entry, filesystem_of):  # rebuilt past our version: the refresh mixed two tables
        return False
    if entry.table.version() != entry.stamp[0]:
        entry.stamp = _stamp(entry.table, filesystem_of)
    return True


def _stamp(table: DeltaTable, filesystem_of: FileSystemOf) -> tuple[int, int | None, int | None]:
    version = table.version()
    info = _commit_file(table.table_uri, version, filesystem_of)
    return version, info.size, info.mtime_ns


def _unchanged(entry: _Cached, filesystem_of: FileSystemOf) -> bool:
    """Is the commit file of the version we remember still the one we saw? (Delta commit files
    are never rewritten; a missing one means the table, or that part of its log, is gone.)"""
    version, size, mtime = entry.stamp
    info = _commit_file(entry.table.table_uri, version, filesystem_of)
    return info.type == pafs.FileType.File and (info.size, info.mtime_ns) == (size, mtime)


def _commit_file(uri: str, version: int, filesystem_of: FileSystemOf) -> Any:
    filesystem, root = filesystem_of(uri)
    return filesystem.get_file_info(f"{root}/_delta_log/{version:020d}.json")
