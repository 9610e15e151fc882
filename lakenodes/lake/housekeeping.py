"""Housekeeping of lakenodes' own catalog tables, done by their writers as part of normal writes.

Why: every catalog write (a table, updater or run registered) is one blind append: one small
file and one log entry. Without housekeeping a reader replays an ever longer log and opens every
file ever appended, so registering the 2,000th table costs many times the 50th.

What: the writer whose append lands on a version that is a multiple of ``interval`` (each version
is committed by exactly one writer, so exactly one writer is chosen, without coordination)

1. compacts the table: the rows of its small files (under ``COMPACT_BELOW`` bytes) are rewritten
   as one file in one ``dataChange=false`` commit that removes them. The commit sets the app
   transaction ``lakenodes.compaction``, so it fails when another compaction committed since its
   snapshot (delta-rs 1.6.6 does not detect a file removed twice: two unguarded compactions from
   one snapshot both commit and duplicate every row), and blind appends never conflict with it;
2. writes a checkpoint, so the next reader replays at most ``interval`` log entries;
3. trims the log: deletes the commit files and checkpoints more than ``interval`` versions older
   than the new checkpoint, and older than the previous checkpoint. Catalog tables are never read
   as of an old version, and a reader only needs the latest checkpoint and the commits after it,
   so their history is dead weight: on a local lake delta-rs lists the whole ``_delta_log``
   folder on every open and commit, and with Delta's time-based log retention (30 days) the
   2,000th registration paid for 2,000 entries.
   Readers are safe: a new one starts from the checkpoint (kept), one that read the previous
   ``_last_checkpoint`` finds that checkpoint kept too, and a process whose cached view is older
   reopens the table (:mod:`lakenodes.lake._tables` tells that apart from a reset table). A
   reader slower than two housekeepings misses a log entry; its write is retried from the latest
   checkpoint (``lakenodes.lake._retry.log_entry_vanished``).

Catalog appends skip delta-rs's post-commit hooks while housekeeping is on: its expired-log check
lists the whole ``_delta_log`` after every commit (on a local lake that cost grows with the
table's history: ~28 ms vs ~13 ms per append at 2,000 versions), and housekeeping checkpoints
and cleans up every ``interval`` commits anyway.

Every step is best effort: a failure (e.g. two compactions raced, a transient storage error) is
logged and the user's write, already committed, stands. Data files that compaction removed stay
on storage for concurrent readers until ``lakenodes vacuum`` deletes them after the retention.

``LAKENODES_CATALOG_HOUSEKEEPING_INTERVAL`` sets the interval (default 20 commits; 0 disables).

Example:
    >>> HousekeepingPolicy(interval=20).due(40), HousekeepingPolicy(interval=20).due(41)
    (True, False)
    >>> HousekeepingPolicy(interval=0).due(40)
    False
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from deltalake import CommitProperties, DeltaTable, Transaction

from .._internal.deferred import pa, pafs
from ..errors import one_line, plain_message
from ._delta_log import read_last_checkpoint
from ._rewrite import RemovedFile, commit_rewrite, write_files
from ._scan import plain_schema
from .location import Lake, delete_file, lake_filesystem

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 20
COMPACT_BELOW = 32 * 1024 * 1024  # bytes: larger files are left alone (compaction cost stays bounded)
COMPACTION_APP_ID = "lakenodes.compaction"


def _interval_from_env() -> int:
    value = os.environ.get("LAKENODES_CATALOG_HOUSEKEEPING_INTERVAL", "")
    try:
        return max(0, int(value)) if value.strip() else DEFAULT_INTERVAL
    except ValueError:
        logger.warning("LAKENODES_CATALOG_HOUSEKEEPING_INTERVAL=%r is not an integer; using %d",
                       value, DEFAULT_INTERVAL)
        return DEFAULT_INTERVAL


@dataclass(frozen=True)
class HousekeepingPolicy:
    """When a catalog writer tidies the table it wrote to: every ``interval`` versions (0: never)."""

    interval: int = field(default_factory=_interval_from_env)

    def due(self, version: int) -> bool:
        """True when the commit that created ``version`` should be followed by housekeeping."""
        return self.interval > 0 and version > 0 and version % self.interval == 0


@dataclass
class HousekeepingResult:
    """What one housekeeping pass did (``errors`` names each step that failed, with its error)."""

    version: int
    files_removed: int = 0
    files_added: int = 0
    checkpoint_version: int | None = None
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveFile:
    """A live data file of the snapshot being tidied: its add-action path, size and rows."""

    path: str
    size: int
    rows: pa.Table


def housekeep(lake: Lake, table: DeltaTable, files: Sequence[LiveFile], what: str,
              keep_versions: int = DEFAULT_INTERVAL) -> HousekeepingResult:
    """Compact ``files`` (the live files of ``table``'s loaded version), checkpoint the table and
    trim the log to the ``keep_versions`` versions before the checkpoint; never raises. ``what``
    names the table in log messages."""
    result = HousekeepingResult(version=table.version())
    compacted = _step(result, "compaction", what, lambda: compact(lake, table, files))
    if compacted is not _FAILED:
        result.files_removed, result.files_added = compacted
    previous = _step(result, "log trim", what, lambda: read_last_checkpoint(*lake_filesystem(lake, table.table_uri)))
    if _step(result, "checkpoint", what, lambda: (table.update_incremental(), table.create_checkpoint())) \
            is not _FAILED:
        result.checkpoint_version = table.version()
    if result.checkpoint_version is not None and previous is not _FAILED:
        keep_from = result.checkpoint_version - keep_versions
        if previous is not None:  # a reader that read the previous _last_checkpoint may be opening it now
            keep_from = min(keep_from, previous)
        _step(result, "log trim", what, lambda: trim_log(lake, table.table_uri, keep_from))
    logger.debug("housekeeping of %s at version %d: %d files compacted into %d, checkpoint %s, errors %s",
                 what, result.version, result.files_removed, result.files_added, result.checkpoint_version,
                 result.errors or "none")
    return result


def compact(lake: Lake, table: DeltaTable, files: Sequence[LiveFile]) -> tuple[int, int]:
    """Rewrite the small ``files`` of an unpartitioned table as one file in one guarded
    ``dataChange=false`` commit against ``table``'s snapshot; returns (files removed, files added).

    Raises ``CommitFailedError`` when another compaction committed since the snapshot."""
    small = [file for file in files if file.size < COMPACT_BELOW]
    if len(small) < 2 or table.metadata().partition_columns:
        return 0, 0
    schema = plain_schema(pa.schema(table.schema().to_arrow()))
    rows = pa.concat_tables([file.rows.select(schema.names).cast(schema) for file in small])
    filesystem, root = lake_filesystem(lake, table.table_uri)
    adds = write_files(filesystem, root, rows, schema, None, data_change=False)
    write_id = f"lakenodes-compaction-{uuid.uuid4().hex}"
    now = int(time.time() * 1000)
    guard = (table.transaction_version(COMPACTION_APP_ID) or 0) + 1
    properties = CommitProperties(
        app_transactions=[Transaction(write_id, 1, last_updated=now), Transaction(COMPACTION_APP_ID, guard, last_updated=now)],
        custom_metadata={"lakenodes.operation": "catalog compaction"},
    )
    removes = [RemovedFile(file.path, file.size, None) for file in small]
    commit_rewrite(table, filesystem, root, adds, removes, properties, write_id, data_change=False)
    return len(removes), len(adds)


_LOG_ENTRY = re.compile(r"^(\d{20})\.(?:json|crc|checkpoint\.parquet|checkpoint\.\d+\.\d+\.parquet)$")


def trim_log(lake: Lake, table_uri: str, keep_from: int) -> int:
    """Delete the log entries (commits, checksums, checkpoints) of versions below ``keep_from``
    when a checkpoint at or after ``keep_from`` exists; returns how many were deleted.

    Example:
        >>> import pyarrow as pa, tempfile
        >>> from deltalake import DeltaTable, write_deltalake
        >>> uri = tempfile.mkdtemp()
        >>> for day in range(5):
        ...     write_deltalake(uri, pa.table({"day": [day]}), mode="append")
        >>> DeltaTable(uri).create_checkpoint()
        >>> trim_log(Lake(uri), uri, keep_from=3)
        3
        >>> DeltaTable(uri).to_pyarrow_table().num_rows
        5
    """
    if keep_from <= 0:
        return 0
    filesystem, root = lake_filesystem(lake, table_uri)
    checkpoint = read_last_checkpoint(filesystem, root)
    if checkpoint is None or checkpoint < keep_from:
        return 0
    doomed = []
    for info in filesystem.get_file_info(pafs.FileSelector(f"{root}/_delta_log")):
        match = _LOG_ENTRY.match(info.base_name)
        if match and int(match.group(1)) < keep_from:
            doomed.append(info.path)
    for path in doomed:
        delete_file(filesystem, path)
    return len(doomed)


_FAILED = object()


def _step(result: HousekeepingResult, step: str, what: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except Exception as error:  # best effort: the user's write has committed and must stand
        result.errors[step] = f"{type(error).__name__}: {plain_message(error)}"
        logger.warning("catalog housekeeping of %s: %s failed (the write itself succeeded): %s",
                       what, step, one_line(error))
        return _FAILED
