"""Table maintenance: per-partition compaction, checkpoints and vacuum, safe alongside updaters.

Why: daily appends of one row per asset create one small file per asset and day; compaction
rewrites each partition's small files into few large ones so reads stay fast.

Safety with concurrent updaters:

- ``optimize_table`` compacts **whole partitions, several per commit** (a bounded amount of data,
  see ``lakenodes.lake._partition_rewrite``). A compaction commit only removes files it read and
  adds their rewritten content with ``dataChange=false``, and carries each of its partitions'
  *rewrite* app transaction (not its identity one, see ``lakenodes.lake._watermarks``),
  so it never conflicts with blind appends; if it races a compaction, upsert or delete of one of its
  partitions (they carry the rewrite id too), the commit fails and is retried from a fresh snapshot
  with the lake's ``RetryPolicy``.
- ``repair_legacy_files`` (run by ``optimize_table``) rewrites files whose embedded Arrow schema
  uses ``string_view`` (delta-rs MERGE/DELETE output from older lakenodes) with plain types,
  ``dataChange=false``, several partitions per commit, retried like compaction.
- ``vacuum_table`` only deletes files that stopped being part of the table more than
  ``retention_hours`` ago (default and minimum: 168 h, Delta's 7-day default), so a reader
  still holding an older snapshot keeps finding its files. Going below the minimum needs
  ``force_unsafe_retention=True`` and is logged loudly.

Checkpoint policy: delta-rs runs a post-commit hook after every commit that writes a checkpoint
once every ``delta.checkpointInterval`` commits. lakenodes creates its tables with an interval of
10 (Spark's default; delta-rs' is 100: a fresh process, such as a daily cron job or another
engine, replays every commit since the last checkpoint) and keeps the hook on every data-table
write (appends, merges, deletes), so every table gets a checkpoint every 10 commits without any
job (checked by ``tests/test_maintenance.py::test_checkpoints_are_written_automatically``; catalog
tables checkpoint in their housekeeping, see :mod:`lakenodes.lake.housekeeping`). ``optimize_table``
also writes a checkpoint after compacting, so readers replay a short log right away.

Table names: a data table is named by its ``storage_hash``; lakenodes' own catalog tables by
``_catalog/<name>`` (``CATALOG_TABLES``).

Example (``example``: a temporary lake with one table, see conftest.py):
    >>> from lakenodes.lake.maintenance import optimize_table, vacuum_table
    >>> result = optimize_table(example.lake, example.node.storage_hash)
    >>> result["files_after"] <= result["files_before"]
    True
    >>> vacuum_table(example.lake, example.node.storage_hash, dry_run=True)["dry_run"]
    True
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from deltalake import DeltaTable

from .._internal.deferred import pafs
from ..errors import LakenodesUserError, NotFoundError, StorageError
from ._delta_log import read_last_checkpoint
from ._foreign_features import refuse_foreign_features
from ._partition_rewrite import rewrite_partitions
from ._retry import RetryPolicy
from ._scan import (
    add_actions,
    data_file_path,
    fragments_of,
    plain_flags,
    snapshot_of,
)
from ._storage_errors import storage_errors
from .cross_section import write_cross_section
from .location import Lake, lake_filesystem
from .pending import fold_pending, pending_files
from .retention import DEFAULT_RETENTION_HOURS, MIN_RETENTION_HOURS, check_retention
from .store import TableStore, index_names_of
from .versions import time_travel_reach

logger = logging.getLogger(__name__)

CATALOG_PREFIX = "_catalog/"
CATALOG_TABLES = ("_catalog/tables", "_catalog/runs", "_catalog/updates", "_catalog/assets")

Progress = Callable[[int, int], None]
F = TypeVar("F", bound=Callable[..., Any])


def table_location(lake: Lake, name: str) -> str:
    """URI of a maintainable table: ``_catalog/<name>`` for catalog tables, else a storage hash."""
    if name.startswith(CATALOG_PREFIX):
        return lake.join(*name.split("/"))
    return lake.table_uri(name)


def existing_tables(lake: Lake, names: Sequence[str], pending: bool = True) -> list[str]:
    """The maintainable tables among ``names`` (storage hashes, ``_catalog/<name>``) that exist and,
    with ``pending``, those maintenance creates: a catalog table with pending rows only is folded
    here (its first fold writes it; a dry run folds nothing), and left out when none of its pending
    files could be read (they are set aside: nothing to maintain, where maintenance used to stop the
    batch on a table that was not written)."""
    return [name for name in names if _store(lake, name).table(refresh=False) is not None
            or (pending and name in CATALOG_TABLES and _created_by_fold(lake, name))]


def _created_by_fold(lake: Lake, name: str) -> bool:
    short = name.removeprefix(CATALOG_PREFIX)
    if not pending_files(lake, short):
        return False
    try:
        fold_pending(lake, short)
    except StorageError:  # e.g. a lake read-only to this user: the table's own step fails and says so
        return True
    return _store(lake, name).table() is not None


def _storage_faults(operation: str) -> Callable[[F], F]:
    """Raise the storage faults of a maintenance call on one table as ``StorageError`` s naming the
    table (its catalog folds, checkpoints and copies as well as its commits)."""
    def decorate(function: F) -> F:
        @functools.wraps(function)
        def maintained(lake: Lake, storage_hash: str, *args: Any, **kwargs: Any) -> Any:
            with storage_errors(table_location(lake, storage_hash), operation, lake):
                return function(lake, storage_hash, *args, **kwargs)

        return maintained  # type: ignore[return-value]

    return decorate


@_storage_faults("optimize")
def optimize_table(
    lake: Lake,
    storage_hash: str,
    *,
    target_size: int | None = None,
    progress: Progress | None = None,
    retry: RetryPolicy | None = None,
    cross_section: bool = False,
) -> dict[str, Any]:
    """Compact each partition of a table into as few files as ``target_size`` (bytes) allows,
    several partitions per commit, then write a checkpoint. ``cross_section``: also write the
    time-ordered copy that makes reads of a date across every identity one file (see
    ``lakenodes.lake.cross_section``; it costs the table's size again), unless the current copy is
    already of the version optimized (then it is kept).

    ``progress(done, total)`` is called after each partition. Returns the table name and URI,
    ``partitions`` (compacted by this call), ``files_before``, ``files_after``, ``files_removed``,
    ``files_added``, ``files_repaired`` (see ``repair_legacy_files``), ``version_before``,
    ``version_after``, ``checkpoint_version``, ``cross_section`` (``"written"``, ``"current"``: the
    copy already current was kept, or None without ``cross_section``) and ``cross_section_rows``
    (the rows of the copy now current).

    Example:
        >>> optimize_table(example.lake, "_catalog/runs")["table"]
        '_catalog/runs'
    """
    if target_size is not None and target_size <= 0:
        raise LakenodesUserError(f"target_size must be a positive number of bytes, got {target_size}")
    store = _store(lake, storage_hash, retry)
    table = _open(store, storage_hash)
    partition_columns = list(table.metadata().partition_columns)
    before = _files_per_partition(table, partition_columns)
    version_before = table.version()
    todo = sorted((partition for partition, count in before.items() if count > 1), key=repr)
    removed = added = compacted = 0
    if progress:
        progress(0, len(todo))
    if partition_columns == list(index_names_of(table)[1:2]):
        # lakenodes' own rewrite, not delta-rs compaction: two delta-rs compactions (or one racing a
        # restatement) from one snapshot both commit and duplicate rows; each commit carries its
        # partitions' rewrite app transactions, so a concurrent rewriter of one conflicts and retries
        # (blind appends do not: they carry the identity id only). Several partitions a commit: see
        # ``lakenodes.lake._partition_rewrite``
        small = (lambda files: [True] * files.height) if target_size is None else (
            lambda files: (files["size"] < target_size).to_list())
        compacted, removed = rewrite_partitions(
            store, storage_hash, [partition[0] if partition else None for partition in todo], small,
            operation="OPTIMIZE", progress=None if progress is None else lambda done: progress(done, len(todo)))
        added = compacted  # one new file per partition
    else:  # a foreign layout: leave the choice of files to delta-rs
        for done, partition in enumerate(todo, start=1):
            filters = [(column, "=", value) for column, value in zip(partition_columns, partition, strict=True)]

            def compact(filters: list[tuple[str, str, Any]] = filters) -> dict[str, Any]:
                return store.table().optimize.compact(partition_filters=filters or None, target_size=target_size)

            metrics = store.with_retries(compact, what=f"compaction of {storage_hash} {partition}")
            removed += int(metrics.get("numFilesRemoved", 0))
            added += int(metrics.get("numFilesAdded", 0))
            compacted += int(metrics.get("numFilesRemoved", 0)) > 0  # a concurrent optimize may have done it already
            if progress:
                progress(done, len(todo))
    repaired = repair_legacy_files(store, storage_hash)
    table = store.table()
    table.create_checkpoint()
    copy = write_cross_section(table, lake) if cross_section else None
    after = _files_per_partition(table, partition_columns)
    logger.info("optimized %s: %d files -> %d files in %d partitions (version %d -> %d)", storage_hash,
                sum(before.values()), sum(after.values()), compacted, version_before, table.version())
    return {
        "table": storage_hash,
        "uri": store.uri,
        "partitions": compacted,
        "files_before": sum(before.values()),
        "files_after": sum(after.values()),
        "files_removed": removed,
        "files_added": added,
        "files_repaired": repaired,
        "version_before": version_before,
        "version_after": table.version(),
        "checkpoint_version": last_checkpoint_version(lake, storage_hash),
        "cross_section": None if copy is None else "written" if copy.written else "current",
        "cross_section_rows": None if copy is None else copy.rows,
    }


def repair_legacy_files(store: TableStore, name: str) -> int:
    """Rewrite the live data files whose embedded Arrow schema uses ``string_view`` or large types
    (delta-rs MERGE/DELETE output, e.g. from older lakenodes) with plain types, several partitions
    per commit (``dataChange=false``: same rows). Compaction already rewrites files it merges;
    this catches the files it leaves alone. Returns how many files were rewritten.

    Reads the footer of every live file once per process (cached), so it runs after compaction.
    """
    table = _open(store, name)
    index_names = index_names_of(table)
    if table.metadata().partition_columns != list(index_names[1:2]):
        return 0  # not a lakenodes layout: leave it to its writer
    filesystem, root = lake_filesystem(store.lake, table.table_uri)
    snapshot = snapshot_of(table, index_names)
    partitions = {value for value, plain in zip(snapshot.files["partition"].to_list(), plain_flags(
        fragments_of(filesystem, root, snapshot.partition, snapshot.files)), strict=True) if not plain}
    _, repaired = rewrite_partitions(
        store, name, sorted(partitions, key=lambda v: (v is None, v or "")),
        lambda files: [not flag for flag in plain_flags(fragments_of(filesystem, root, snapshot.partition, files))],
        operation="REPAIR")
    if repaired:
        logger.info("rewrote %d file(s) of %s with plain string types", repaired, name)
    return repaired


@_storage_faults("vacuum")
def vacuum_table(
    lake: Lake,
    storage_hash: str,
    retention_hours: int = DEFAULT_RETENTION_HOURS,
    dry_run: bool = False,
    *,
    force_unsafe_retention: bool = False,
    retry: RetryPolicy | None = None,
) -> dict[str, Any]:
    """Delete files that left the table more than ``retention_hours`` ago (list them with ``dry_run``).

    Refuses a retention below 168 hours (it could delete files a concurrent reader or a
    time-travel query still needs) unless ``force_unsafe_retention=True``. Returns the table
    name and URI, ``dry_run``, ``retention_hours``, ``files`` (deleted, or deletable when dry),
    ``file_count`` and how far back time travel reaches after it (would reach, when dry):
    ``oldest_readable_version`` and its ``oldest_readable_timestamp``.

    Example:
        >>> vacuum_table(example.lake, "_catalog/runs", dry_run=True)["files"]
        []
    """
    warning = check_retention(retention_hours, force_unsafe_retention or dry_run)  # a dry run deletes nothing
    if warning and not dry_run:
        logger.warning("%s of %s (minimum %d h)", warning, storage_hash, MIN_RETENTION_HOURS)
    store = _store(lake, storage_hash, retry)
    _open(store, storage_hash, fold=not dry_run)  # a dry run writes nothing, not even the catalog's pending rows

    def vacuum() -> list[str]:
        # full: also the files no commit ever added (a killed or failed write's), not only removed ones
        return store.table().vacuum(
            retention_hours=retention_hours, dry_run=dry_run, full=True,
            enforce_retention_duration=not (force_unsafe_retention or dry_run),
        )

    filesystem, root = lake_filesystem(lake, store.uri)
    present = _data_files(filesystem, root)
    # delta-rs also names files an earlier vacuum deleted (their remove actions are still in the
    # log), then by absolute path: report only files that were there, by path in the table
    reported = {_in_table(path, root) for path in store.with_retries(vacuum, what=f"vacuum of {storage_hash}")}
    files = sorted(present[path] for path in reported if path in present)
    # the listing above, less the files vacuum deleted (or would delete): no second listing
    reach = time_travel_reach(_open(store, storage_hash, fold=False), lake.storage_options or None,
                              lambda uri: lake_filesystem(lake, uri), files, present.values())
    logger.info("vacuum of %s (%s, retention %d h): %d files; time travel reaches back to version %d",
                storage_hash, "dry run" if dry_run else "deleted", retention_hours, len(files),
                reach["oldest_readable_version"])
    return {
        "table": storage_hash,
        "uri": store.uri,
        "dry_run": dry_run,
        "retention_hours": retention_hours,
        "files": files,
        "file_count": len(files),
        **reach,
    }


def _data_files(filesystem: Any, root: str) -> dict[str, str]:
    """The files under the table root now (one listing): their path in the table as stored, by its
    decoded form (delta-rs reports a partition folder percent-encoded or not)."""
    listing = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    stored = [info.path[len(root):].lstrip("/") for info in listing if info.type == pafs.FileType.File]
    return {data_file_path(path): path for path in stored}


def _in_table(path: str, root: str) -> str:
    """A path delta-rs reports (relative, absolute, or a URL; percent-encoded or not) as a decoded
    path in the table under ``root`` (the table's path in its filesystem).

    Example:
        >>> _in_table("/tmp/lake/tables/t/u=A%2FB/part-0.parquet", "/tmp/lake/tables/t")
        'u=A/B/part-0.parquet'
    """
    text = data_file_path(path.removeprefix("file://").split("://", 1)[-1])
    for prefix in (root.lstrip("/") + "/", root + "/"):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def last_checkpoint_version(lake: Lake, storage_hash: str) -> int | None:
    """Version of the table's latest checkpoint (from ``_delta_log/_last_checkpoint``), None if none."""
    return read_last_checkpoint(*lake_filesystem(lake, table_location(lake, storage_hash)))


def _store(lake: Lake, name: str, retry: RetryPolicy | None = None) -> TableStore:
    return TableStore(lake, name, uri=table_location(lake, name), retry=retry)


def _open(store: TableStore, name: str, fold: bool = True) -> DeltaTable:
    if fold and name in CATALOG_TABLES:  # its pending rows first: maintenance works on every row recorded
        fold_pending(store.lake, name.removeprefix("_catalog/"))
    table = store.table()
    if table is None:
        raise NotFoundError(f"no Delta table {name!r} at {store.uri} (not written yet?)")
    refuse_foreign_features(table)  # vacuum too: such a table is left to the engine that made it so
    return table


def _files_per_partition(table: DeltaTable, partition_columns: list[str]) -> Counter[tuple[Any, ...]]:
    actions = add_actions(table)
    if actions.num_rows == 0:
        return Counter()
    if not partition_columns:
        return Counter({(): actions.num_rows})
    values = zip(*(actions.column(f"partition.{column}").to_pylist() for column in partition_columns), strict=True)
    return Counter(tuple(row) for row in values)
