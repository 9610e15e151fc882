"""Time travel: one Delta table as it was at a version or a moment (``as_of``).

``as_of`` is a table version (an int, numpy's too) or a datetime (a pandas Timestamp or numpy
datetime64 too; naive values are UTC): the latest version committed at or before it, from the
commit timestamps of the table's history. An old version
is opened as a separate ``DeltaTable`` (the process-wide cached object of ``_tables`` is never
moved back). A version that does not exist, whose log was cleaned up or whose data files vacuum
removed raises ``VersionUnavailableError`` saying how far back time travel reaches: the oldest
version from which every version up to the latest can be read.

Example:
    >>> resolve_as_of(None, 3)
    3
"""

from __future__ import annotations

import datetime
import json
import numbers
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Any

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from .._internal.caches import register_cache
from .._internal.datetimes import is_moment, parse_datetime
from .._internal.deferred import pafs
from .._internal.threads import in_threads
from ..errors import LakenodesUserError, VersionUnavailableError
from ._delta_log import commit_versions, log_names, read_commit
from ._log_damage import CHECKPOINT_FILE, corrupt_log_error, log_damage
from ._scan import add_actions, data_file_path
from ._storage_errors import storage_errors
from .location import options_key

AsOf = int | datetime.datetime
FileSystemOf = Callable[[str], tuple[Any, str]]  # table URI -> (pyarrow filesystem, root path)

# (table URI, its metaData.id, version, storage options) -> that version opened: a version of a
# table never changes, so reading it again skips its log replay (its data files are still checked
# each time: vacuum may have removed them since). The few most recent are kept: each holds a file list.
_VERSIONS_KEPT = 8
_opened: OrderedDict[tuple[str, str, int, str], DeltaTable] = register_cache("versions.opened", OrderedDict())
_opened_lock = threading.Lock()


def _as_of_hint(as_of: Any) -> str:
    """How to give the moment a date or a text ``as_of`` means (both are refused: which moment of a day?)."""
    if isinstance(as_of, datetime.date):
        return (f": give a moment, e.g. datetime({as_of.year}, {as_of.month}, {as_of.day}, 23, 59, 59, tzinfo=timezone.utc) "
                "for the table at the end of that day")
    if isinstance(as_of, str):
        return ": a version is an int (as_of=3), a moment a datetime, e.g. datetime.fromisoformat('2026-01-31T18:00:00+00:00')"
    return ""


def resolve_as_of(table: DeltaTable | None, as_of: Any) -> int | None:
    """The table version ``as_of`` names; None for a moment before the table's first commit.

    Example:
        >>> resolve_as_of(None, "x")
        Traceback (most recent call last):
        ...
        lakenodes.errors.LakenodesUserError: as_of must be a table version (int) or a datetime, not 'x': a version is an int (as_of=3), a moment a datetime, e.g. datetime.fromisoformat('2026-01-31T18:00:00+00:00')
        >>> resolve_as_of(None, -1)
        Traceback (most recent call last):
        ...
        lakenodes.errors.LakenodesUserError: as_of=-1 is not a version: versions count up from 0 (see the table's history)
    """
    if isinstance(as_of, numbers.Integral) and not isinstance(as_of, bool):  # numpy's ints too
        as_of = int(as_of)
        if as_of < 0:
            raise LakenodesUserError(f"as_of={as_of} is not a version: versions count up from 0 (see the table's history)")
        return as_of
    if not is_moment(as_of):
        raise LakenodesUserError(f"as_of must be a table version (int) or a datetime, not {as_of!r}{_as_of_hint(as_of)}")
    moment = parse_datetime(as_of, "as_of")
    if table is None:
        return None
    cutoff_ms = moment.timestamp() * 1000
    versions = [commit["version"] for commit in table.history() if commit.get("timestamp", 0) <= cutoff_ms]
    return max(versions) if versions else None


def table_as_of(table: DeltaTable, as_of: Any, options: dict[str, str] | None,
                filesystem_of: FileSystemOf) -> DeltaTable | None:
    """``table`` at ``as_of`` (a separate object unless it is the current version); None when
    ``as_of`` is a moment before the table existed. A version whose log is damaged raises
    ``CorruptTableError`` naming the damaged file; one that does not exist or lost its files to
    vacuum, ``VersionUnavailableError``."""
    version = resolve_as_of(table, as_of)
    if version is None:
        return None
    if version == table.version():
        return table
    old = _open_readable(table, version, options, filesystem_of, live=_paths(table), keep=True)
    if old is None:
        oldest, latest = oldest_readable_version(table, options, filesystem_of), table.version()
        reach = f"time travel reaches back to version {oldest} " + (
            "(the latest)" if oldest == latest else f"(the latest is {latest})")
        damage = log_damage(*filesystem_of(table.table_uri), version) if 0 <= version < latest else None
        if damage is not None:
            raise corrupt_log_error(damage, "", table.table_uri, "read", prefix=f"version {version} cannot be read: ",
                                    suffix=f"; {reach}")
        raise VersionUnavailableError(
            f"version {version} of {table.table_uri} cannot be read (it does not exist or vacuum removed "
            f"its files); {reach}{_date_hint(version, latest)}")
    return old


def _date_hint(version: int, latest: int) -> str:
    """A word for a version number past the latest that reads as a compact date (``20261101``).

    Example:
        >>> _date_hint(20261101, 12)
        '; 20261101 is taken as a version number: for the moment, give the date as 2026-11-01'
        >>> _date_hint(20261399, 12), _date_hint(7, 3)
        ('', '')
    """
    text = str(version)
    if version <= latest or len(text) != 8:
        return ""
    try:
        day = datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return ""
    return f"; {version} is taken as a version number: for the moment, give the date as {day.isoformat()}"


def oldest_readable_version(table: DeltaTable, options: dict[str, str] | None, filesystem_of: FileSystemOf,
                            gone: Collection[str] = (), present: Collection[str] | None = None) -> int:
    """How far back time travel reaches: the oldest version from which every version up to the
    latest can be read (its log and data files are there), ``gone`` files (paths relative to the
    table root) counted as deleted. An older version may still read on its own (one written before
    a file that a restatement later replaced, or before a damaged commit that a later checkpoint
    covers), but the reach ends at the first one that does not. ``present``: the files under the
    table root, when the caller has just listed them (else they are listed here)."""
    listed = _present_files(table.table_uri, filesystem_of) if present is None else set(present)
    return _oldest_with_log_kept(table, options, filesystem_of,
                                 _oldest_with_files_kept(table, filesystem_of, listed - set(gone)))


def _oldest_with_log_kept(table: DeltaTable, options: dict[str, str] | None, filesystem_of: FileSystemOf,
                          low: int) -> int:
    """The oldest version from ``low`` on from which every version's log reads.

    delta-rs reads a version from the newest checkpoint at or before it and the commits after that
    checkpoint: the versions from one checkpoint to the next all read when the last of them does,
    and a damaged or missing log file breaks only the versions read through it (a commit cut short
    before a later checkpoint: the versions from it up to that checkpoint, not the older ones).
    Readability is not monotonic, so no binary search: the last version of each checkpoint
    interval is opened (in threads), and the reach is the start of the oldest interval from which
    every newer one reads. Log clean-up (the oldest commits gone) is found the same way."""
    filesystem, root = filesystem_of(table.table_uri)
    latest = table.version()
    starts = sorted({0, *(int(name[:20]) for name in log_names(filesystem, root)
                          if CHECKPOINT_FILE.match(name) and int(name[:20]) <= latest)})
    ends = [start - 1 for start in starts[1:]] + [latest]
    intervals = [(start, end) for start, end in zip(starts, ends, strict=True) if end >= low]
    # the last interval ends at the version the table is open at: it reads
    readable = in_threads(lambda end: _opened_version(table, end, options, keep=False) is not None,
                          [end for _, end in intervals[:-1]], max_threads=8) + [True]
    reach = latest
    for (start, _), reads in zip(reversed(intervals), reversed(readable), strict=True):
        if not reads:
            break
        reach = start
    return max(reach, low)


def _oldest_with_files_kept(table: DeltaTable, filesystem_of: FileSystemOf, present: set[str]) -> int:
    """The oldest version from which no version up to the latest lacks a data file, if the latest
    lacks none: walking back from the latest, version ``v - 1`` holds the files of ``v`` less the
    ones ``v`` added, plus the ones it removed, so it reads when those removed files are present."""
    filesystem, root = filesystem_of(table.table_uri)
    logged = set(commit_versions(filesystem, root))
    try:
        appends = {commit["version"] for commit in table.history() if _removes_nothing(commit)}
    except DeltaError:  # a commit's first line cut short: read every commit (the damaged one ends the walk)
        appends = set()
    version = table.version()
    while version > 0 and version - 1 in logged:
        if version in appends:
            version -= 1
            continue
        try:
            lines, _ = read_commit(filesystem, root, version)
            removed = [json.loads(line)["remove"]["path"] for line in lines if line.startswith('{"remove"')]
        except (OSError, ValueError, KeyError, TypeError):  # unreadable, cut short or garbage: the files of
            return version  # the versions before it are unknown (reading one names the damaged commit)
        if any(data_file_path(path) not in present for path in removed):
            return version
        version -= 1
    return version


def _removes_nothing(commit: dict[str, Any]) -> bool:
    """Whether a commit (its history entry) surely removes no file: lakenodes' appends, and the
    commits whose metrics count no removed file (neither needs a read of the commit, a GET on S3).
    Restatements and deletes are written as delta appends too, with removes: they are read."""
    return commit.get("lakenodes.operation") == "WRITE" or (commit.get("operationMetrics") or {}).get(
        "num_removed_files", -1) == 0


def time_travel_reach(table: DeltaTable, options: dict[str, str] | None, filesystem_of: FileSystemOf,
                      gone: Collection[str] = (), present: Collection[str] | None = None) -> dict[str, Any]:
    """How far back ``as_of`` reads reach (with ``gone`` files deleted; ``present``: the files
    under the table root, if just listed): the oldest readable version and its commit timestamp
    (aware UTC; None when its commit file cannot tell)."""
    oldest = oldest_readable_version(table, options, filesystem_of, gone, present)
    try:  # that commit's file alone: the history reads every commit, and fails on any damaged one
        moment = read_commit(*filesystem_of(table.table_uri), oldest)[1]["timestamp"]
    except (OSError, ValueError, KeyError, TypeError):
        moment = None
    return {"oldest_readable_version": oldest,
            "oldest_readable_timestamp": None if moment is None else datetime.datetime.fromtimestamp(
                moment / 1000, datetime.UTC)}


# At most this many data files of an old version are checked one by one (a HEAD each on S3);
# more, and the table's files are listed instead (one request per 1,000 on S3).
_CHECKED_ONE_BY_ONE = 100


def _open_readable(table: DeltaTable, version: int, options: dict[str, str] | None,
                   filesystem_of: FileSystemOf, present: set[str] | None = None,
                   live: set[str] | None = None, keep: bool = False) -> DeltaTable | None:
    """``version`` of ``table`` (its current version is the latest) if its log and data files are
    all there (``present``: the files known to exist; else those not in ``live``, the current
    version's files, are checked). ``keep``: a version read for its rows, kept for the next read
    (the probes of a search for the oldest readable version would only push those out)."""
    uri = table.table_uri
    if not 0 <= version <= table.version():
        return None
    old = _opened_version(table, version, options, keep)
    if old is None:
        return None  # the log of that version was cleaned up
    paths = _paths(old)
    unsure = paths - live if present is None and live is not None else None
    if unsure is not None and len(unsure) <= _CHECKED_ONE_BY_ONE:
        # vacuum never removes a file the current version holds: only the others can be gone
        filesystem, root = filesystem_of(uri)
        infos = filesystem.get_file_info([f"{root}/{path}" for path in sorted(unsure)]) if unsure else []
        return old if all(info.type == pafs.FileType.File for info in infos) else None
    present = _present_files(uri, filesystem_of) if present is None else present
    return old if paths <= present else None


def _opened_version(table: DeltaTable, version: int, options: dict[str, str] | None,
                    keep: bool) -> DeltaTable | None:
    """``version`` of ``table`` opened (kept from an earlier call when it was; kept for later ones
    when ``keep``), None when its log is gone."""
    key = (table.table_uri, table.metadata().id, version, options_key(options))
    with _opened_lock:
        old = _opened.get(key)
        if old is not None:
            _opened.move_to_end(key)
            return old
    try:
        old = DeltaTable(table.table_uri, version=version, storage_options=options)
    except (DeltaError, OSError):
        return None
    if not keep:
        return old
    with _opened_lock:
        _opened[key] = old
        while len(_opened) > _VERSIONS_KEPT:
            _opened.popitem(last=False)
    return old


def _paths(table: DeltaTable) -> set[str]:
    """The data files of ``table``'s version, relative to its root."""
    return {data_file_path(path) for path in add_actions(table).column("path").to_pylist()}


def _present_files(uri: str, filesystem_of: FileSystemOf) -> set[str]:
    filesystem, root = filesystem_of(uri)
    listing = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    return {info.path[len(root) + 1:] for info in listing if info.type == pafs.FileType.File}


_LAKENODES_OPERATIONS = {"WRITE": "append", "MERGE": "upsert", "DELETE": "delete", "OPTIMIZE": "optimize",
                         "RESTORE": "restore"}
_DELTA_OPERATIONS = {"CREATE TABLE": "create", "WRITE": "append", "STREAMING UPDATE": "append", "MERGE": "upsert",
                     "DELETE": "delete", "OPTIMIZE": "optimize", "VACUUM START": "vacuum", "VACUUM END": "vacuum"}


_ROW_COUNTS = ("added", "updated", "deleted")
_METRICS = {"added": ("num_added_rows", "numTargetRowsInserted"), "updated": ("numTargetRowsUpdated",),
            "deleted": ("num_deleted_rows", "numTargetRowsDeleted")}


def row_counts(added: int, updated: int, deleted: int) -> dict[str, str]:
    """Commit metadata recording the rows a lakenodes rewrite added, updated and deleted (its
    commits carry no operationMetrics); :func:`table_history` reads them back.

    Example:
        >>> row_counts(3, 2, 0)
        {'lakenodes.rows_added': '3', 'lakenodes.rows_updated': '2', 'lakenodes.rows_deleted': '0'}
    """
    return {f"lakenodes.rows_{name}": str(count) for name, count in zip(_ROW_COUNTS, (added, updated, deleted),
                                                                         strict=True)}


def _rows(commit: dict[str, Any], name: str) -> int | None:
    if f"lakenodes.rows_{name}" in commit:
        return int(commit[f"lakenodes.rows_{name}"])
    metrics = commit.get("operationMetrics") or {}
    return next((int(metrics[key]) for key in _METRICS[name] if key in metrics), None)


def table_history(table: DeltaTable, limit: int | None = None, lake: Any = None) -> list[dict[str, Any]]:
    """One entry per commit of ``table``, newest first: ``version``, ``timestamp`` (aware UTC),
    ``operation`` (append / upsert / delete / restore / optimize / vacuum / create, from the commit's
    ``lakenodes.operation`` where lakenodes wrote it, else delta's operation in lower case),
    ``update_hash`` and ``run_id`` of the writing run (None unless a lakenodes run wrote it) and
    ``rows_added`` / ``rows_updated`` / ``rows_deleted`` (from the counts lakenodes' rewrites
    record, see :func:`row_counts`, else the commit's operationMetrics; None when neither has them).
    A commit of the log that cannot be read raises ``CorruptTableError`` naming it (``lake``: the
    table's, to find it on S3)."""
    if limit is not None and limit > table.version():  # every commit; delta-rs overflowed on a 20-digit limit
        limit = None
    entries = []
    with storage_errors(table.table_uri, "history", lake):
        commits = table.history(limit)
    for commit in commits:
        delta_operation = str(commit.get("operation", ""))
        operation = (_LAKENODES_OPERATIONS.get(commit["lakenodes.operation"], commit["lakenodes.operation"].lower())
                     if "lakenodes.operation" in commit
                     else _DELTA_OPERATIONS.get(delta_operation, delta_operation.lower()))
        entries.append({
            "version": commit["version"],
            "timestamp": datetime.datetime.fromtimestamp(commit["timestamp"] / 1000, datetime.UTC),
            "operation": operation,
            "update_hash": commit.get("lakenodes.update_hash"),
            "run_id": commit.get("lakenodes.run_id"),
            **{f"rows_{name}": _rows(commit, name) for name in _ROW_COUNTS},
        })
    return entries
