"""The post-commit work lakenodes asks delta-rs for on its data tables' commits.

delta-rs runs two hooks after every commit: a checkpoint of the new version when the version
after it is a multiple of ``delta.checkpointInterval`` (versions 9, 19, ... at an interval of 10),
and, by default, a clean-up of expired log files, which lists the whole ``_delta_log`` folder
every time (one more LIST request per commit on S3). Only log files older than the latest
checkpoint can be cleaned up, and that checkpoint only moves on the commits that write one:
asking for the clean-up on those commits alone removes the same files, with a listing per
checkpoint instead of one per commit.

On the commits that checkpoint, delta-rs decides as it always does (a table that sets
``delta.enableExpiredLogCleanup`` to false keeps its whole log).

After such a commit, :func:`warn_of_small_files` warns when the table holds so many files a
partition that every run pays for them (a node written every minute, never optimized): the log
line names ``lakenodes optimize``.

Example:
    >>> import pyarrow as pa, tempfile
    >>> table = DeltaTable.create(tempfile.mkdtemp(), pa.schema([("a", pa.int64())]),
    ...                           configuration={"delta.checkpointInterval": "2"})
    >>> commit_hooks(table).cleanup_expired_logs is None  # version 1 is checkpointed: delta-rs decides
    True
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from deltalake import DeltaTable, PostCommitHookProperties

DELTA_RS_CHECKPOINT_INTERVAL = 100  # delta-rs' default, for tables that do not set one
FILES_PER_PARTITION_WARNING = 500  # a partition's files beyond which a checkpointing commit warns

logger = logging.getLogger(__name__)


def commit_hooks(table: DeltaTable) -> PostCommitHookProperties:
    """The hooks of the next commit to ``table``: a checkpoint when one is due (as delta-rs
    decides), the log clean-up only along with it (as the table's ``delta.enableExpiredLogCleanup``
    says)."""
    return PostCommitHookProperties(
        cleanup_expired_logs=None if checkpoints(table.version() + 1, table.metadata().configuration) else False)


def checkpoints(version: int, configuration: Mapping[str, str]) -> bool:
    """Whether delta-rs checkpoints ``version`` of a table with ``configuration``.

    Example:
        >>> checkpoints(19, {"delta.checkpointInterval": "10"}), checkpoints(20, {"delta.checkpointInterval": "10"})
        (True, False)
        >>> checkpoints(99, {})  # delta-rs' default interval
        True
    """
    try:
        interval = int(configuration.get("delta.checkpointInterval") or DELTA_RS_CHECKPOINT_INTERVAL)
    except ValueError:
        interval = DELTA_RS_CHECKPOINT_INTERVAL
    return interval > 0 and (version + 1) % interval == 0


def warn_of_small_files(table: DeltaTable, name: str) -> None:
    """After a commit that wrote a checkpoint, warn when the table holds more than
    ``FILES_PER_PARTITION_WARNING`` files a partition on average: every append adds a file to each
    partition it writes, the checkpoint (written every 10 commits, read by every new process)
    holds each, and runs slow down with their number until ``lakenodes optimize`` compacts them (a
    table written every minute crosses the line within hours; see docs/scheduling.md).

    Example:
        >>> import pyarrow as pa, tempfile
        >>> table = DeltaTable.create(tempfile.mkdtemp(), pa.schema([("a", pa.int64())]))
        >>> warn_of_small_files(table, "prices")  # version 0 wrote no checkpoint: nothing to say
    """
    if not checkpoints(table.version(), table.metadata().configuration):
        return
    files = table.file_uris()
    if len(files) <= FILES_PER_PARTITION_WARNING:
        return
    partitions = len({uri.rsplit("/", 1)[0] for uri in files}) if table.metadata().partition_columns else 1
    if len(files) > FILES_PER_PARTITION_WARNING * partitions:
        logger.warning(
            "%s holds %d files in %d partition(s) (%d each on average): every run reads them all (its "
            "checkpoint lists each), and runs slow down as appends add more; schedule `lakenodes optimize %s` "
            "(hourly, every 15 minutes on S3, for a table written every minute: see docs/scheduling.md, 'A node every minute')",
            name, len(files), partitions, len(files) // partitions, name)
