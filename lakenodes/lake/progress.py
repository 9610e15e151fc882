"""Table progress from Delta metadata: what each identity already holds, exact to the microsecond.

The Delta log's add-action statistics give, per file, its partition value and min/max
``time_index`` at millisecond precision. lakenodes groups files by identity from those
statistics, then resolves the exact boundary from the Parquet footers of only the few files
that can hold it (footer statistics are exact). Files are immutable, so per-file results are
cached by path for the life of the process. Rows are never scanned, except the identity
columns of a file that holds several secondary identities (3-level tables). The exact bounds of
files (cached, persisted in the facts file, read from footers) are :mod:`._exact_bounds`'.
"""

from __future__ import annotations

import datetime
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

import polars as pl
from deltalake import DeltaTable

from .._internal.afterwards import settle
from .._internal.caches import register_cache
from .._internal.datetimes import as_utc
from .._internal.deferred import pa
from .._internal.plain_arrow import polars_series
from .._internal.threads import in_threads, storage_threads
from . import _facts_file as facts_file
from . import _progress_snapshot as snapshots
from ._delta_log import commit_stamp
from ._exact_bounds import (
    FILE_FACTS,
    exact_bounds,
    facts_learned,
    learn_facts_rows,
    learn_own_commit,
    persist_facts,
    resolve_bounds,
    summary_of,
)
from ._file_facts import Identity
from ._file_frame import boundary_candidates, file_frame, identities_and_paths, paths_of, split_by_identity
from ._scan import StoreVersionKey, add_actions, store_version_key
from ._tables import known_stamp, superseded
from .location import Lake, lake_filesystem, store_path
from .store import data_file_path, index_names_of

logger = logging.getLogger(__name__)

UTC = datetime.timezone.utc


class TableProgress:
    """Exact first/last ``time_index`` per identity tuple of one table version.

    ``first`` may be resolved lazily (``first_loader``): statistics before a write need only ``last``.
    """

    def __init__(
        self,
        version: int,
        index_names: tuple[str, ...],
        last: dict[Identity, datetime.datetime] | None = None,
        first: dict[Identity, datetime.datetime] | None = None,
        row_count: int = 0,
        first_loader: Callable[[], dict[Identity, datetime.datetime]] | None = None,
    ):
        self.version = version
        self.index_names = index_names
        self.last = {} if last is None else last
        self.row_count = row_count
        self._first = first if first is not None or first_loader is not None else {}
        self._first_loader = first_loader
        self._first_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Picklable: ``first`` resolved, no lock, no loader."""
        state = {**self.__dict__, "_first": self.first, "_first_loader": None}
        del state["_first_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._first_lock = threading.Lock()

    @property
    def first(self) -> dict[Identity, datetime.datetime]:
        with self._first_lock:
            if self._first is None:
                self._first = self._first_loader()
            return self._first

    @property
    def max_time(self) -> datetime.datetime | None:
        return max(self.last.values(), default=None)

    @property
    def min_time(self) -> datetime.datetime | None:
        return min(self.first.values(), default=None)


# An append adds its own files to the facts file last read or written, not every boundary file (O(files));
# stale entries are harmless (see _facts_file), pruned past FACTS_PER_IDENTITY per identity + FACTS_SLACK.
FACTS_PER_IDENTITY = 8
FACTS_SLACK = 64
FACTS_PATH = facts_file.FACTS_PATH


_progress_cache: dict[StoreVersionKey, TableProgress] = register_cache("progress.tables", {})
# store_path(table root) -> (commit stamp, progress) persisted_progress read: reused for that very commit (a fresh write)
_snapshot_reads: dict[str, tuple[tuple, TableProgress]] = register_cache("progress.snapshot_reads", {})
_facts_loading = threading.Lock()


def read_progress(table: DeltaTable, lake: Lake) -> TableProgress:
    """Exact per-identity first/last time of ``table`` from its Delta metadata (see module doc).

    Cached per (table, version): a table version never changes.
    """
    key = store_version_key(table)  # a table recreated at the same URI has a new metaData.id
    cached = _progress_cache.get(key)
    if cached is None:
        cached = _from_snapshot_read(table, lake) or _read_progress(table, lake)
        if store_version_key(table) == key:  # not advanced by another thread meanwhile
            _store_progress(key, cached)
    return cached


def _from_snapshot_read(table: DeltaTable, lake: Lake) -> TableProgress | None:
    """What ``persisted_progress`` read, when ``table`` is at the very commit it named (else None),
    with the facts file's rows loaded (``persist_append`` adds its own to them after the write)."""
    filesystem, root = lake_filesystem(lake, table.table_uri)
    found, stamp = _snapshot_reads.get(store_path(filesystem, root)), known_stamp(table)
    if found is None or stamp is None or tuple(found[0]) != tuple(stamp):
        return None
    with _facts_loading:  # once per table, whichever thread asks first (run()'s background one)
        if not facts_file.loaded(filesystem, root):  # the rows persist_append adds to; their bounds are learned when needed
            facts_file.load(filesystem, root)
    read = found[1]  # a loader of its own for first: the snapshot's would come back here
    return read if read._first is not None else TableProgress(read.version, read.index_names, read.last,
        row_count=read.row_count, first_loader=lambda: _read_progress(table, lake).first)


def remember_append(table: DeltaTable, before: TableProgress, rows: pa.Table,
                    summary: pl.DataFrame | None = None) -> TableProgress | None:
    """Cache and return the progress of ``table`` after our own blind append of ``rows`` on top of ``before``.

    Exact without any I/O: when the table is now exactly one version past ``before``, that
    version is our append, so each identity's first/last is the old one widened by the rows'.
    Returns None (and caches nothing) when another commit intervened. ``summary``: the rows'
    ``NormalizedFrame.identity_bounds`` when already known. ``persist_append`` then saves it for
    other processes.

    Example (``example``: a temporary lake with one table, see conftest.py):
        >>> table = example.node.store.table()
        >>> remember_append(table, read_progress(table, example.lake), table.to_pyarrow_table().slice(0, 0)) is None
        True
    """
    key = store_version_key(table)
    version = key[3]
    if version != before.version + 1:
        return None
    dims = list(before.index_names[1:])
    summary = summary_of(rows, dims) if summary is None else summary
    identities = list(zip(*[summary[dim].to_list() for dim in dims], strict=True)) if dims else [()]
    last = dict(before.last)
    for identity, high in zip(identities, summary["hi"].to_list(), strict=True):
        _keep_max(last, identity, as_utc(high))

    def first_loader() -> dict[Identity, datetime.datetime]:  # on first use only: a run needs ``last``
        first = dict(before.first)
        for identity, low in zip(identities, summary["lo"].to_list(), strict=True):
            keep_min(first, identity, as_utc(low))
        return first

    after = TableProgress(version, before.index_names, last, row_count=before.row_count + rows.num_rows,
                          first_loader=first_loader)
    _store_progress(key, after)
    return after


def persist_append(lake: Lake, table: DeltaTable, after: TableProgress, rows: pa.Table, run_id: str | None = None,
                   summary: pl.DataFrame | None = None, *, first_rows: bool = False) -> None:
    """Save the progress ``remember_append`` returned, and the exact bounds of the files our append
    committed, to the table's facts file (a cache for other processes: failures are only logged).
    ``first_rows``: the table held no rows before the append (its files are all the append's).

    Example (``example``: a temporary lake with one table, see conftest.py):
        >>> table = example.node.store.table()
        >>> persist_append(example.lake, table, read_progress(table, example.lake), table.to_pyarrow_table().slice(0, 0))
    """
    dims = list(after.index_names[1:])
    filesystem, root = lake_filesystem(lake, table.table_uri)
    by_partition = summary if summary is not None and len(dims) == 1 else summary_of(rows, dims[:1])
    steps = [functools.partial(learn_own_commit, filesystem, root, after.version, run_id, by_partition, dims[:1]),
             functools.partial(_snapshot, filesystem, root, after, table)]
    # on an object store, the commit file's GET and its stamp's HEAD at once (two round trips)
    own, snapshot = in_threads(lambda step: step(), steps, max_threads=storage_threads(filesystem, 2))
    if first_rows:  # a backfill into a new table: its facts are the append's own, nothing to prune
        facts_file.write(filesystem, root, own, snapshot)
        return
    # the boundary files of the new version are among the old ones and ours (a blind append only
    # moves an identity's best statistics forward): no need to look at every file of the table
    limit = FACTS_PER_IDENTITY * len(after.last) + FACTS_SLACK
    if facts_file.append(filesystem, root, own, snapshot, limit) or (
            len(dims) <= 1 and facts_file.prune(filesystem, root, own, snapshot, limit // 2)):
        return
    keys, single, _ = split_by_identity(file_frame(add_actions(table), dims), dims)
    if store_path(filesystem, root) not in facts_learned:  # the persisted bounds of the boundary files kept
        learn_facts_rows(filesystem, root, facts_file.rows(filesystem, root))
    persist_facts(filesystem, root, paths_of(*boundary_candidates(single, keys)), snapshot)


def _store_progress(key: StoreVersionKey, progress: TableProgress) -> None:
    if len(_progress_cache) > 256:
        _progress_cache.clear()
    _progress_cache[key] = progress


def _read_progress(table: DeltaTable, lake: Lake) -> TableProgress:
    index_names = index_names_of(table)
    dims = list(index_names[1:])
    actions = add_actions(table)
    if actions.num_rows == 0:
        return TableProgress(version=table.version(), index_names=index_names)
    filesystem, root = lake_filesystem(lake, table.table_uri)
    keys, single, multi = split_by_identity(file_frame(actions, dims, table.table_uri), dims)
    candidates_last, candidates_first = boundary_candidates(single, keys)

    last: dict[Identity, datetime.datetime] = {}
    first_of_mixed: dict[Identity, datetime.datetime] = {}
    multi_rows = [(f"{root}/{data_file_path(path)}", {dim: value for dim, value in zip(dims, values, strict=True) if value is not None})
                  for path, *values in multi.select("path", *[f"_p{k}" for k in range(len(dims))]).iter_rows()]
    for identities in in_threads(lambda row: FILE_FACTS.identities(filesystem, row[0], dims, row[1]), multi_rows):
        for identity, (low, high) in identities.items():
            _keep_max(last, identity, high)
            keep_min(first_of_mixed, identity, low)
    # a past version's facts are never saved: the facts file is the newest version's (a read of the past stores nothing)
    boundary = None if superseded(table) else paths_of(candidates_last, candidates_first)
    last_files = list(identities_and_paths(candidates_last, keys))
    footers_read = resolve_bounds(filesystem, root, candidates_last)
    for identity, path in last_files:
        _keep_max(last, identity, FILE_FACTS.bounds(filesystem, f"{root}/{path}")[1])

    def first_loader() -> dict[Identity, datetime.datetime]:
        first = dict(first_of_mixed)
        for identity, (low, _) in exact_bounds(candidates_first, keys, filesystem, root, boundary):
            keep_min(first, identity, low)
        return first

    row_count = int(polars_series(actions["num_records"]).sum() or 0)
    progress = TableProgress(table.version(), index_names, last, row_count=row_count, first_loader=first_loader)
    if boundary is not None and (footers_read or facts_file.snapshot_version(filesystem, root) != progress.version):  # for cold readers
        persist_facts(filesystem, root, boundary, _snapshot(filesystem, root, progress, table))
    return progress


def _snapshot(filesystem: Any, root: str, progress: TableProgress, table: DeltaTable) -> tuple[int, dict[bytes, bytes]]:
    stamp = known_stamp(table)  # the open-tables cache stamped that commit file already: no request
    if stamp is None or stamp[0] != progress.version:
        stamp = commit_stamp(filesystem, root, progress.version)
    return progress.version, snapshots.encode(stamp, progress.index_names, progress.row_count, progress.last, None)


NO_TABLE: Any = snapshots.NO_LOG  # persisted_progress's answer when the table has no log


def persisted_progress(lake: Lake, uri: str,
                       first_loader: Callable[[], dict[Identity, datetime.datetime]]) -> TableProgress | None:
    """The progress of the table's newest version from its persisted snapshot (see
    ``_progress_snapshot``): one log listing and one footer read, no log replay. None when there
    is no snapshot of that version (the caller opens the table), ``NO_TABLE`` when there is no
    table (no log). ``first`` comes from ``first_loader``."""
    filesystem, root = lake_filesystem(lake, uri)
    settle()  # this process's own save of the snapshot, when one is still under way
    found = snapshots.read_latest(filesystem, root, FACTS_PATH)
    if found is snapshots.NO_LOG:
        return NO_TABLE
    if found is None:
        return None
    stamp, payload, raw = found
    facts_file.saw_snapshot(filesystem, root, stamp[0], raw)
    progress = TableProgress(stamp[0], payload["index_names"], payload["last"], first=payload["first"],
                             row_count=payload["row_count"], first_loader=None if payload["first"] else first_loader)
    _snapshot_reads[store_path(filesystem, root)] = (stamp, progress)
    return progress


def _keep_max(target: dict, key: Any, value: datetime.datetime) -> None:
    if key not in target or value > target[key]:
        target[key] = value


def keep_min(target: dict, key: Any, value: datetime.datetime) -> None:
    if key not in target or value < target[key]:
        target[key] = value
