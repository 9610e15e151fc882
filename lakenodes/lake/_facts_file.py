"""A table's persisted file facts, ``_lakenodes/file_facts.parquet``: the exact time bounds of its
boundary data files and, in the file's metadata, the progress snapshot of its newest version
(:mod:`lakenodes.lake._progress_snapshot`), so a fresh process reads no footer and no whole log.

Only a cache: entries are keyed by immutable data-file paths, so a stale or missing entry is never
wrong (unknown files fall back to their footers); Delta readers ignore the file. It is written whole
(temp file + rename locally, one PUT on object stores: a reader never sees half a file). This
process keeps the rows it last read or wrote as Arrow, so an append adds its own files' rows
without converting the others again.

Example:
    >>> import pyarrow.fs as pafs, tempfile
    >>> root = tempfile.mkdtemp()
    >>> rows = pa.table({"path": ["a.parquet"], "min": [0], "max": [5]}).cast(facts_schema())
    >>> write(pafs.LocalFileSystem(), root, rows)
    True
    >>> load(pafs.LocalFileSystem(), root).num_rows
    1
"""

from __future__ import annotations

import datetime
import errno
import logging
from typing import Any

import polars as pl

from .._internal.afterwards import settle
from .._internal.caches import register_cache
from .._internal.deferred import pa, pq
from .._internal.plain_arrow import cast_table
from ..core.frames import timestamp_type
from . import _progress_snapshot as snapshots
from ._storage_errors import fault_errno
from ._whole_file import write_whole
from .location import store_path

logger = logging.getLogger(__name__)

FACTS_PATH = "_lakenodes/file_facts.parquet"

# store_path(table root) -> the facts rows its file holds, as this process last read or wrote them
_rows: dict[str, pa.Table] = register_cache("progress.persisted_facts", {})
# store_path(table root) -> (version, metadata) of the progress snapshot last read from or written to its facts file
_snapshots: dict[str, tuple[int, dict[bytes, bytes]]] = register_cache("progress.snapshots", {})
# store_path of folders of tables (a lake's tables/) where the store refused a facts file (read-only, permission
# denied: a key that may only read): not tried there again, so a reader sends one refused PUT, not one a table
_refused: set[str] = register_cache("progress.facts_refused", set())
_REFUSALS = (errno.EACCES, errno.EPERM, errno.EROFS)


def facts_schema() -> pa.Schema:
    """The facts file's columns: a data file's path (relative to the table root) and its exact bounds."""
    return pa.schema([("path", pa.string()), ("min", timestamp_type()), ("max", timestamp_type())])


def snapshot_version(filesystem: Any, root: str) -> int | None:
    """The version of the progress snapshot this process last saw in the table's facts file."""
    known = _snapshots.get(store_path(filesystem, root))
    return None if known is None else known[0]


def saw_snapshot(filesystem: Any, root: str, version: int, raw: bytes) -> None:
    """Note the snapshot read from the facts file (unless this process knows one already)."""
    _snapshots.setdefault(store_path(filesystem, root), (version, {snapshots.KEY: raw}))


def loaded(filesystem: Any, root: str) -> bool:
    """Whether this process read or wrote the table's facts file."""
    return store_path(filesystem, root) in _rows


def rows(filesystem: Any, root: str) -> pa.Table | None:
    """The rows of the table's facts file as this process last read or wrote them (None: neither)."""
    return _rows.get(store_path(filesystem, root))


def load(filesystem: Any, root: str) -> pa.Table | None:
    """The rows of the table's facts file (None when absent or unreadable), remembering them and
    the snapshot in its metadata; once this process's saves of it left for later are done."""
    settle()
    try:
        buffer = snapshots.file_bytes(filesystem, root, FACTS_PATH)  # what persisted_progress read, else a read
        stored = pq.ParquetFile(pa.BufferReader(buffer)).read()  # (pq.read_table would import pandas)
    except (OSError, pa.ArrowException) as error:  # absent (never written) or unreadable: footers then
        logger.debug("no persisted file facts for %s: %s", root, error)
        return None
    metadata = stored.schema.metadata or {}
    version = snapshots.version_of(metadata)
    if version is not None:
        saw_snapshot(filesystem, root, version, metadata[snapshots.KEY])
    rows = cast_table(stored.replace_schema_metadata(None), facts_schema())
    _rows[store_path(filesystem, root)] = rows
    return rows


def write(filesystem: Any, root: str, rows: pa.Table, snapshot: tuple[int, dict[bytes, bytes]] | None = None) -> bool:
    """Replace the facts file by ``rows`` with the newest progress snapshot known for the table
    (``snapshot``, else the last one seen); False when it could not be written (a cache: not an error)."""
    key, folder = store_path(filesystem, root), store_path(filesystem, root.rsplit("/", 1)[0])
    if snapshot is not None:
        _snapshots[key] = snapshot
    if folder in _refused:
        return False
    data = rows.replace_schema_metadata(_snapshots.get(key, (None, None))[1] or {})
    try:
        # no statistics (the file is read whole) and no dictionaries (its paths are all distinct:
        # a dictionary is built, then given up, on every write)
        write_whole(filesystem, f"{root}/{FACTS_PATH}", data, write_statistics=False, use_dictionary=False)
    except (OSError, pa.ArrowException) as error:
        if fault_errno(error) in _REFUSALS:
            _refused.add(folder)
            logger.debug("file facts cannot be stored in %s (%s): not tried there again in this process",
                         root.rsplit("/", 1)[0], error)
        else:
            logger.debug("could not persist file facts for %s: %s", root, error)
        return False
    _rows[key] = rows
    return True


def append(filesystem: Any, root: str, rows: pa.Table, snapshot: tuple[int, dict[bytes, bytes]], limit: int) -> bool:
    """Add ``rows`` to the facts file this process last read or wrote, with ``snapshot``; False (and
    nothing written) when that file is unknown here or would outgrow ``limit`` rows."""
    known = _rows.get(store_path(filesystem, root))
    if known is None or known.num_rows + rows.num_rows > limit:
        return False
    return write(filesystem, root, pa.concat_tables([known, cast_table(rows, facts_schema())]), snapshot)


def prune(filesystem: Any, root: str, rows: pa.Table, snapshot: tuple[int, dict[bytes, bytes]], most: int) -> bool:
    """Replace the facts file by the rows of the one this process last read or wrote, and ``rows``,
    that may hold their partition folder's first or last time, with ``snapshot``: for a table whose
    partition is its only identity dimension, the rows every boundary file of an append-only table
    is among, found without the table's file list. False (nothing written) when the file is
    unknown here or more than ``most`` rows are left: files rewritten since (``optimize``) leave
    ties that only the file list tells apart.

    Example:
        >>> import datetime, pyarrow.fs as pafs, tempfile
        >>> day = lambda d: datetime.datetime(2024, 1, d, tzinfo=datetime.timezone.utc)
        >>> root, local = tempfile.mkdtemp(), pafs.LocalFileSystem()
        >>> old = pa.table({"path": ["a=1/x", "a=1/y", "a=2/z", "r"], "min": [day(1), day(2), day(1), day(5)],
        ...                 "max": [day(1), day(2), day(1), day(5)]}).cast(facts_schema())
        >>> write(local, root, old)
        True
        >>> new = pa.table({"path": ["a=1/n"], "min": [day(3)], "max": [day(3)]}).cast(facts_schema())
        >>> prune(local, root, new, (5, {}), most=10), sorted(load(local, root)["path"].to_pylist())
        (True, ['a=1/n', 'a=1/x', 'a=2/z', 'r'])
        >>> prune(local, root, new, (6, {}), most=3), load(local, root).num_rows  # 5 left: nothing written
        (False, 4)
    """
    known = _rows.get(store_path(filesystem, root))
    if known is None:
        return False
    path = pl.col("path")  # its folder: all before its last "/" ("" at the root; a regular expression took 4x as long)
    frame = pl.from_arrow(pa.concat_tables([known, rows.cast(facts_schema())])).with_columns(
        path.str.head(path.str.len_chars() - path.str.split("/").list.last().str.len_chars()).alias("_folder"))
    slack = datetime.timedelta(milliseconds=2)  # a boundary candidate is within 1 ms of its best statistic
    kept = frame.filter((pl.col("max") >= pl.col("max").max().over("_folder") - slack)
                        | (pl.col("min") <= pl.col("min").min().over("_folder") + slack))
    return kept.height <= most and write(filesystem, root, kept.drop("_folder").to_arrow().cast(facts_schema()), snapshot)
