"""A time-ordered copy of a table version for cross-sectional reads (one date across every identity).

Partitioning by the first identity puts each identity in files of its own, so a read of one date
over N identities opens N files. ``optimize_table(..., cross_section=True)`` also writes every row
of the version it leaves, sorted by the index, to a copy ``_lakenodes/cross_section/<uuid>.parquet``
in small row groups (a date is then one or two row groups of one file), then points
``_lakenodes/cross_section.files.parquet`` at it: the list of the data files the copy holds,
stamped with the version it was written for and the copy's name. A read with a time window and no
identity filter uses the copy while every one of those files is still live in the version read
(same ``metaData.id``, a version at or after the copy's; the URI is not compared, so a lake moved,
copied or mounted elsewhere keeps its copy): the rows of that version are then the copy's plus those
of the files appended since, which the read opens as usual (pruned by their time statistics, so old
dates read the copy alone). A commit that removes a file (a restatement, a delete, a compaction)
retires the copy until the next optimize.

An optimize whose table version is the one the current copy was written for (same layout) keeps
that copy: it writes nothing and deletes nothing. A copy is never rewritten in place: a reader that
opened one (and cached its footer) reads it whole while a concurrent optimize writes the next. The
pointer lists the copies it retired and when each stopped being current; an optimize that writes a
copy deletes those retired ``SUPERSEDED_SECONDS`` (an hour) ago, however long ago they were written.
A copy no pointer names (a killed write, or one whose pointer a concurrent optimize replaced
without seeing it) counts as retired when an optimize first finds it. A read that finds its copy
gone (or unreadable) reads the data files instead. Delta readers and vacuum ignore ``_``-prefixed
folders; the copy costs about the table's size again.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import polars as pl
from deltalake import DeltaTable

from .._internal.caches import register_cache
from .._internal.deferred import pa, pafs, pds, pq
from ._scan import (
    Snapshot,
    StoreVersionKey,
    index_names_of,
    parquet_format,
    read_whole,
    snapshot_of,
    store_version_key,
    version_key,
)
from ._whole_file import write_whole
from .location import Lake, delete_file, lake_filesystem

logger = logging.getLogger(__name__)

COPIES = "_lakenodes/cross_section"  # the copies, each written once under a name of its own
FILES_PATH = "_lakenodes/cross_section.files.parquet"  # the current copy's name and the data files it holds
LEGACY_PATH = "_lakenodes/cross_section.parquet"  # the one copy of lakes optimized before copies were named
ROW_GROUP_ROWS = 8_192
SUPERSEDED_SECONDS = 3600  # a copy is deleted once retired this long (a killed write's temporary file: this old)
_KEY = b"lakenodes.cross_section"
_COPY_KEY = b"lakenodes.cross_section.copy"
_LAYOUT_KEY = b"lakenodes.cross_section.layout"  # how the copy is sorted and grouped: another layout is rewritten
_RETIRED_KEY = b"lakenodes.cross_section.retired"  # {copy: when it stopped being current} of copies not deleted yet
VersionKey = tuple[str, str, int]


def _now() -> float:
    """The clock retirements are stamped and aged with (a test moves it)."""
    return time.time()


@dataclass(frozen=True)
class CopyOutcome:
    """What ``write_cross_section`` did: ``rows`` in the current copy; ``written`` False when the
    copy already current was of this version and layout (kept: nothing written or deleted)."""

    rows: int
    written: bool


@dataclass(frozen=True)
class CrossSection:
    """The copy usable for one table version: its fragment and the paths of the data files it holds."""

    fragment: pds.Fragment
    covered: pl.Series

    def remaining(self, files: pl.DataFrame) -> pl.DataFrame:
        """The rows of ``files`` (a ``Snapshot.files`` selection) the copy does not hold: appended since."""
        return files.filter(~pl.col("path").is_in(self.covered.implode()))


# table root -> (store and version key read, its CrossSection or None); (root, pointer stamp) -> (copy path, covered paths)
_copies: dict[str, tuple[StoreVersionKey, CrossSection | None]] = register_cache("cross_section.copies", {})
_covered: dict[tuple[str, tuple], tuple[str, pl.Series]] = register_cache("cross_section.covered", {})


def write_cross_section(table: DeltaTable, lake: Lake) -> CopyOutcome:
    """Write the time-ordered copy of ``table``'s current version, unless the current copy already is
    of this version and layout (then it is kept as it is), and point readers at it.

    Example (``example``: a temporary lake with one table, see conftest.py):
        >>> first = write_cross_section(example.node.store.table(), example.lake)
        >>> write_cross_section(example.node.store.table(), example.lake) == CopyOutcome(first.rows, written=False)
        True
    """
    index = index_names_of(table)
    filesystem, root = lake_filesystem(lake, table.table_uri)
    layout = json.dumps({"sort": list(index), "row_group_rows": ROW_GROUP_ROWS}).encode()
    kept = _current_rows(filesystem, root, _pointer_stamp(filesystem, root), version_key(table), layout)
    if kept is not None:
        return CopyOutcome(kept, written=False)
    snapshot = snapshot_of(table, index)
    rows = read_whole(filesystem, root, snapshot.partition, snapshot.files, snapshot.schema).drop_columns(["_file"])
    rows = rows.sort_by([(name, "ascending") for name in index])
    copy = f"{COPIES}/{uuid.uuid4().hex}.parquet"
    if isinstance(filesystem, pafs.LocalFileSystem):
        filesystem.create_dir(f"{root}/{COPIES}", recursive=True)
    pq.write_table(rows, f"{root}/{copy}", filesystem=filesystem, row_group_size=ROW_GROUP_ROWS)  # found once pointed at
    retired, due = _retirements(filesystem, root, copy, _pointer_stamp(filesystem, root))
    stamp = {_KEY: json.dumps(list(version_key(table))).encode(), _COPY_KEY: copy.encode(), _LAYOUT_KEY: layout,
             _RETIRED_KEY: json.dumps(retired).encode()}
    paths = pa.table({"path": snapshot.files["path"].to_arrow()}).replace_schema_metadata(stamp)
    write_whole(filesystem, f"{root}/{FILES_PATH}", paths)
    _copies.pop(root, None)
    _delete(filesystem, [f"{root}/{name}" for name in due])
    return CopyOutcome(rows.num_rows, written=True)


def cross_section_of(table: DeltaTable, lake: Lake, snapshot: Snapshot) -> CrossSection | None:
    """The copy usable for ``table``'s current version (whose file list is ``snapshot``), or None:
    no copy, a copy of another table or of a later version, or a file it holds no longer live."""
    filesystem, root = lake_filesystem(lake, table.table_uri)
    key = store_version_key(table)  # another store's table at this root: its copy is not this one's
    known = _copies.get(root)
    if known is not None and known[0] == key:
        return known[1]
    usable = None
    pointer: pds.Fragment = parquet_format().make_fragment(f"{root}/{FILES_PATH}", filesystem=filesystem)
    stamp = _stamp_of(pointer, root)
    written_for, current = _table_version(stamp), _table_version_of(version_key(table))
    if written_for is not None and written_for[0] == current[0] and written_for[1] <= current[1]:
        copy, covered = _copy_and_paths(filesystem, root, pointer, stamp)
        live = snapshot.files["path"]
        fragment = None if copy is None else parquet_format().make_fragment(f"{root}/{copy}", filesystem=filesystem)
        if fragment is not None and (written_for == current or covered.is_in(live.implode()).all()):
            usable = CrossSection(fragment, covered)
    if len(_copies) > 256:
        _copies.clear()
        _covered.clear()
    _copies[root] = (key, usable)
    return usable


def forget_cross_section(lake: Lake, table_uri: str) -> None:
    """Drop what this process remembers of a table's copy (a read found it unreadable)."""
    _copies.pop(lake_filesystem(lake, table_uri)[1], None)


def _stamp_of(fragment: pds.Fragment, root: str) -> dict[bytes, bytes]:
    """The schema metadata of a copy's pointer ({} when there is none)."""
    try:
        fragment.ensure_complete_metadata()
        return dict(fragment.physical_schema.metadata or {})
    except FileNotFoundError:  # no copy: never optimized with one (the usual case, not worth a line)
        return {}
    except (OSError, pa.ArrowException, ValueError) as error:
        logger.debug("unreadable cross-section pointer of %s: %s", root, error)
        return {}


def _table_version(stamp: dict[bytes, bytes]) -> tuple[str, int] | None:
    """The ``(metaData.id, version)`` a pointer's copy was written for (None: no pointer). The table URI
    stamped with them is left out: the copy lives in the table's own folder, so a lake moved or copied
    (``mv``, ``cp -r``, ``aws s3 sync`` to a bucket) or mounted at another path keeps using its copy.

    Example:
        >>> _table_version({_KEY: b'["/old/lake/tables/t", "id-1", 7]'})
        ('id-1', 7)
    """
    written_for = json.loads(stamp.get(_KEY, b"null"))
    return None if not written_for else _table_version_of(tuple(written_for))


def _table_version_of(key: VersionKey) -> tuple[str, int]:
    """The ``(metaData.id, version)`` of a ``version_key``."""
    return key[1], key[2]


def _pointer_stamp(filesystem: Any, root: str) -> dict[bytes, bytes]:
    """The schema metadata of the table's current pointer, read afresh ({} when there is none)."""
    return _stamp_of(parquet_format().make_fragment(f"{root}/{FILES_PATH}", filesystem=filesystem), root)


def _current_rows(filesystem: Any, root: str, stamp: dict[bytes, bytes], key: VersionKey,
                  layout: bytes) -> int | None:
    """The row count of the copy ``stamp`` names when it is of version ``key`` and ``layout`` and still
    readable (its footer), else None: a copy must be written."""
    if _COPY_KEY not in stamp or stamp.get(_LAYOUT_KEY) != layout or _table_version(stamp) != _table_version_of(key):
        return None
    path = f"{root}/{stamp[_COPY_KEY].decode()}"
    try:
        with filesystem.open_input_file(path) as file:
            return pq.read_metadata(file).num_rows
    except (OSError, pa.ArrowException) as error:  # deleted or damaged by hand: written again
        logger.debug("the current cross-section copy %s is unreadable (%s): writing another", path, error)
        return None


def _copy_and_paths(filesystem: Any, root: str, pointer: pds.Fragment,
                    stamp: dict[bytes, bytes]) -> tuple[str | None, pl.Series]:
    """The copy the pointer names and the data files it holds. A lake optimized before copies were
    named has one copy rewritten in place: it counts only while stamped as its pointer (None else)."""
    cache_key = (root, tuple(sorted(stamp.items())))
    cached = _covered.get(cache_key)
    if cached is not None:
        return cached
    copy = stamp[_COPY_KEY].decode() if _COPY_KEY in stamp else LEGACY_PATH
    if copy == LEGACY_PATH:
        legacy = parquet_format().make_fragment(f"{root}/{LEGACY_PATH}", filesystem=filesystem)
        if _stamp_of(legacy, root).get(_KEY) != stamp.get(_KEY):
            return None, pl.Series("path", [], pl.String)
    found = (copy, pl.Series(pointer.to_table().column("path")))
    _covered[cache_key] = found
    return found


def _retirements(filesystem: Any, root: str, written: str,
                 stamp: dict[bytes, bytes]) -> tuple[dict[str, float], list[str]]:
    """For the pointer to the copy ``written`` replacing the pointer ``stamp``: the copies retired and
    kept (by when they stopped being current), and the files to delete (relative paths): copies retired
    ``SUPERSEDED_SECONDS`` ago (readers that opened them have long finished) and temporary files of
    pointers of killed writes as old. The copy ``stamp`` names and copies no pointer lists (killed
    writes, replaced by a concurrent optimize that did not see them, the legacy copy) are retired now:
    never too early."""
    now = _now()
    cutoff = now - SUPERSEDED_SECONDS
    listed = {name: float(since) for name, since in json.loads(stamp.get(_RETIRED_KEY, b"{}")).items()}
    if _KEY in stamp:  # the copy it names (a lake optimized before copies were named: the legacy one)
        listed[stamp[_COPY_KEY].decode() if _COPY_KEY in stamp else LEGACY_PATH] = now
    try:
        entries = filesystem.get_file_info(pafs.FileSelector(f"{root}/_lakenodes", recursive=True,
                                                             allow_not_found=True))
    except (OSError, pa.ArrowException) as error:
        logger.debug("could not list the cross-section copies of %s: %s", root, error)
        return {name: since for name, since in listed.items() if name != written}, []
    retired: dict[str, float] = {}
    due = []
    for entry in entries:
        if entry.type != pafs.FileType.File:
            continue
        relative = entry.path[len(root) + 1:] if entry.path.startswith(root) else entry.path
        if (relative.startswith(f"{COPIES}/") or relative == LEGACY_PATH) and relative != written:
            since = listed.get(relative, now)
            if since < cutoff:
                due.append(relative)
            else:
                retired[relative] = since
        elif entry.base_name.startswith(".cross_section") and entry.mtime is not None:
            if entry.mtime.timestamp() < cutoff:  # a killed write's temporary pointer
                due.append(relative)
    return retired, due


def _delete(filesystem: Any, paths: list[str]) -> None:
    """Delete these files, best effort (one left is retired again by the next optimize that finds it)."""
    for path in paths:
        try:
            delete_file(filesystem, path)
        except OSError as error:
            logger.debug("could not delete %s: %s", path, error)


def is_cross_sectional(values: Any, windows: Any) -> bool:
    """A read with a time bound and no identity filter (``Pruning.values`` / ``Pruning.windows``)."""
    return not values and any(low is not None or high is not None for low, high in windows)
