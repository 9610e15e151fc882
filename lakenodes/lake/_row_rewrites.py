"""The two writes that rewrite stored rows: a restatement (upsert on the full index; rows equal
to the stored ones are skipped, see ``restate``) and a tail delete. Each rewrites only the files
holding affected rows and commits in ONE Delta commit (see ``lakenodes.lake._rewrite``) carrying
the identity and the rewrite app transaction of every partition it touches (see
``lakenodes.lake._watermarks``), so it conflicts with (and retries after) any concurrent append,
restatement, delete or compaction of them.
"""

from __future__ import annotations

from collections.abc import Callable

from deltalake import CommitProperties, DeltaTable

from .._internal.deferred import pa, pc, pds
from ..core.frames import NormalizedFrame
from ._rewrite import commit_rewrite, files_overlapping, removed_files, write_files
from ._same_rows import unchanged_rows
from ._scan import Pruning, index_names_of, read_whole, snapshot_of, to_plain
from ._watermarks import app_transaction, partition_transactions, rewrite_transactions
from .location import Lake, lake_filesystem
from .versions import row_counts


def restate(lake: Lake, table: DeltaTable, frame: NormalizedFrame, write_id: str, metadata: dict[str, str],
            committing: Callable[[pa.BooleanArray], None] | None = None) -> pa.BooleanArray:
    """Upsert ``frame`` on its full index in one commit against ``table``'s snapshot: the files
    holding rows it restates are rewritten without those rows, and the frame's rows are added.

    Rows equal to the stored row of their index (``lakenodes.lake._same_rows``) are left alone:
    only the others are written, only the files holding a row they replace are rewritten, and when
    no row changes nothing is committed (a re-run of an idempotent job adds no version). Returns
    which of the frame's rows were unchanged (a mask over them); ``committing(that mask)`` is
    called just before a commit."""
    index = list(frame.index_names)
    snapshot = snapshot_of(table, index)
    filesystem, root = lake_filesystem(lake, table.table_uri)
    candidates = files_overlapping(snapshot.files, snapshot.partition, frame)
    old = read_whole(filesystem, root, snapshot.partition, candidates, snapshot.schema)
    new = to_plain(frame.table).select(snapshot.schema.names).cast(snapshot.schema)
    same = unchanged_rows(new, old.drop_columns(["_file"]), index)
    if same.true_count == new.num_rows:
        return same
    new = new.filter(pc.invert(same))
    keys = new.select(index)
    hit = old.select([*index, "_file"]).join(keys, keys=index, join_type="left semi")
    changed = pa.array(sorted(set(hit.column("_file").to_pylist())), pa.int32())
    kept = old.filter(pc.is_in(old.column("_file"), value_set=changed)).join(keys, keys=index, join_type="left anti")
    rows = pa.concat_tables([kept.drop_columns(["_file"]).cast(snapshot.schema), new])
    adds = write_files(filesystem, root, rows, snapshot.schema, snapshot.partition, sort_by=index)
    values = [""] if snapshot.partition is None else pc.unique(new.column(index[1])).to_pylist()
    counts = row_counts(keys.num_rows - hit.num_rows, hit.num_rows, 0)
    properties = CommitProperties(
        app_transactions=[app_transaction(write_id), *partition_transactions(values), *rewrite_transactions(values)],
        custom_metadata={**metadata, **counts})
    if committing is not None:
        committing(same)
    commit_rewrite(table, filesystem, root, adds, removed_files(candidates, changed), properties, write_id)
    return same


def delete_rows(lake: Lake, table: DeltaTable, pruning: Pruning, predicate: pds.Expression, write_id: str,
                committing: Callable[[int], None] | None = None) -> int:
    """Delete the rows matching ``predicate`` (in the files ``pruning`` keeps) in one commit against
    ``table``'s snapshot; return how many. ``committing(rows)`` is called just before the commit;
    without it nothing is written (a dry run: how many rows the delete would remove)."""
    index = list(index_names_of(table))
    snapshot = snapshot_of(table, index)
    filesystem, root = lake_filesystem(lake, table.table_uri)
    candidates = snapshot.candidates(pruning)
    old = read_whole(filesystem, root, snapshot.partition, candidates, snapshot.schema)
    hit = old.filter(predicate)
    if hit.num_rows == 0 or committing is None:
        return hit.num_rows
    changed = pa.array(sorted(set(hit.column("_file").to_pylist())), pa.int32())
    kept = old.filter(pc.is_in(old.column("_file"), value_set=changed)).filter(~predicate)
    adds = write_files(filesystem, root, kept.drop_columns(["_file"]), snapshot.schema, snapshot.partition,
                       sort_by=index)
    removed = removed_files(candidates, changed)
    values = [""] if snapshot.partition is None else sorted({file.partition_value or "" for file in removed})
    properties = CommitProperties(
        app_transactions=[app_transaction(write_id), *partition_transactions(values), *rewrite_transactions(values)],
        custom_metadata={"lakenodes.write_id": write_id, "lakenodes.operation": "DELETE",
                         **row_counts(0, 0, hit.num_rows)},
    )
    committing(hit.num_rows)
    commit_rewrite(table, filesystem, root, adds, removed, properties, write_id)
    return hit.num_rows
