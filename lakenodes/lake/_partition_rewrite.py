"""Rewriting chosen files of many partitions (compaction, legacy-file repair): several partitions
per commit, a bounded amount of data each.

Why: every commit replays and checks a snapshot of every live file, so one commit per partition
made compacting P partitions cost P commits over ~P files each: quadratic in the assets (1,000
assets x 3 daily files took 43 s, 3,000 x 5 took 488 s). A batch takes partitions in order until
their files reach ``BATCH_BYTES`` or ``BATCH_PARTITIONS``, so memory stays bounded by one batch
(a partition larger than that alone is a batch of its own, as before).

Safety is unchanged (see ``lakenodes.lake.maintenance``): a batch commit removes only files it read,
adds their rows rewritten with ``dataChange=false`` and carries the *rewrite* app transaction of
every partition it rewrites, so a concurrent rewriter of any of them conflicts and the batch is
retried from a fresh snapshot, while blind appends never conflict with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

import polars as pl
from deltalake import CommitProperties

from ._rewrite import RemovedFile, commit_rewrite, write_files
from ._scan import read_whole, snapshot_of
from ._watermarks import app_transaction, rewrite_transactions
from .location import lake_filesystem
from .store import TableStore, index_names_of

BATCH_BYTES = 64 * 1024 * 1024  # stored (compressed) bytes read, rewritten and committed at once
BATCH_PARTITIONS = 1_000  # partitions a commit rewrites at most: a conflict retries no more than these

Choose = Callable[[pl.DataFrame], list[bool]]
"""``choose(files)``: which of these files (snapshot rows: path, size, partition...) to rewrite."""


def rewrite_partitions(store: TableStore, name: str, values: Sequence[str | None], choose: Choose, *,
                       operation: str, progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Rewrite the chosen live files of the partitions ``values`` (None: an unpartitioned table),
    each partition's into one new plain-typed file, batch by batch; ``progress(done)`` is called
    for each partition (``done``: how many so far) once its batch is committed. OPTIMIZE leaves a partition with fewer than
    two chosen files alone. Returns (partitions rewritten, files replaced)."""
    table = store.table()
    sizes = dict(snapshot_of(table, index_names_of(table)).files.group_by("partition").agg(pl.col("size").sum())
                 .iter_rows())
    partitions = replaced = done = 0
    for batch in _batches(values, sizes):
        rewritten, files = _rewrite_batch(store, name, batch, choose, operation)
        partitions, replaced = partitions + rewritten, replaced + files
        for _ in batch:
            done += 1
            if progress:
                progress(done)
    return partitions, replaced


def _batches(values: Sequence[str | None], sizes: dict[str | None, int]) -> list[list[str | None]]:
    batches: list[list[str | None]] = []
    total = 0
    for value in values:
        size = sizes.get(value) or 0
        if not batches or total + size > BATCH_BYTES or len(batches[-1]) >= BATCH_PARTITIONS:
            batches.append([])
            total = 0
        batches[-1].append(value)
        total += size
    return batches


def _in_partitions(values: Sequence[str | None]) -> pl.Expr:
    named = pl.col("partition").is_in([value for value in values if value is not None])
    return named | pl.col("partition").is_null() if None in values else named


def _rewrite_batch(store: TableStore, name: str, values: Sequence[str | None], choose: Choose,
                   operation: str) -> tuple[int, int]:
    minimum = 2 if operation == "OPTIMIZE" else 1  # one file is already compact

    def rewrite() -> tuple[int, int]:
        table = store.table()
        index_names = index_names_of(table)
        filesystem, root = lake_filesystem(store.lake, table.table_uri)
        snapshot = snapshot_of(table, index_names)
        files = snapshot.files.filter(_in_partitions(values))
        chosen = files.filter(pl.Series(choose(files), dtype=pl.Boolean))
        kept = chosen.group_by("partition").len().filter(pl.col("len") >= minimum)["partition"].to_list()
        chosen = chosen.filter(_in_partitions(kept))
        if not chosen.height:
            return 0, 0
        rows = read_whole(filesystem, root, snapshot.partition, chosen, snapshot.schema).drop_columns(["_file"])
        adds = write_files(filesystem, root, rows, snapshot.schema, snapshot.partition, sort_by=index_names,
                           data_change=False)
        removes = [RemovedFile(path, size, part) for path, size, part in
                   chosen.select("path", "size", "partition").iter_rows()]
        write_id = f"lakenodes-{operation.lower()}-{uuid.uuid4().hex}"
        guards = rewrite_transactions(["" if value is None else value for value in kept])  # not the identity id
        properties = CommitProperties(app_transactions=[app_transaction(write_id), *guards],
                                      custom_metadata={"lakenodes.operation": operation})
        commit_rewrite(table, filesystem, root, adds, removes, properties, write_id, data_change=False)
        return len(kept), chosen.height

    what = f"{operation.lower()} rewrite of {name} partition {values[0]!r}"
    return store.with_retries(rewrite, what=what if len(values) == 1 else f"{what} and {len(values) - 1} more")
