"""Per-identity watermarks decide append vs upsert; Delta app transactions make writers of one
partition conflict instead of duplicating rows."""

from __future__ import annotations

import datetime
import hashlib
import time
from collections.abc import Mapping, Sequence

from deltalake import Transaction

from .._internal.deferred import pa, pc
from ..core.frames import TIME_INDEX, NormalizedFrame


def identity_transactions(
    frame: NormalizedFrame, watermarks: Mapping[tuple[str, ...], datetime.datetime]
) -> list[Transaction]:
    """One Delta app transaction per partition value (first identity dimension; one for a
    single-index table) for which ``frame`` has rows later than the stored watermark.

    delta-rs fails a commit whose app ids were set by a commit that landed after its read version
    ("Concurrent transaction failed"). Every commit that moves an identity's watermark carries its
    app id, so two writers that decided from the same snapshot to blind-append rows of one
    identity cannot both commit: the later one retries, re-reads the watermarks and upserts
    instead of duplicating. Appenders of disjoint identities never conflict. Restatements and
    tail deletes carry the app id of every partition they rewrite (``partition_transactions``),
    so they serialize with every other writer of those partitions.
    """
    dims = list(frame.identity_dimensions)
    times = frame.table.column(TIME_INDEX)
    if not dims:
        mark = watermarks.get(())
        later = mark is None or bool(pc.any(pc.greater(times, pa.scalar(mark, pa.timestamp("us", "UTC")))).as_py())
        values = [""] if later else []
    else:
        joined = _join_watermarks(frame, watermarks, "left outer")
        later = pc.or_kleene(pc.is_null(joined["watermark"]), pc.greater(joined["time_index"], joined["watermark"]))
        values = pc.unique(joined.filter(later)["k0"]).to_pylist()
    return partition_transactions(values)


def _join_watermarks(
    frame: NormalizedFrame, watermarks: Mapping[tuple[str, ...], datetime.datetime], join_type: str
) -> pa.Table:
    """The rows of ``frame`` (identity as ``k0, k1, ...`` and ``time_index``) joined with the stored
    ``watermark`` of their identity: the one watermark join of writes."""
    dims = list(frame.identity_dimensions)
    keys = pa.table({**{f"k{i}": frame.table.column(dim) for i, dim in enumerate(dims)},
                     "time_index": frame.table.column(TIME_INDEX)})
    marks = pa.table(
        {**{f"k{i}": pa.array([key[i] for key in watermarks], pa.string()) for i in range(len(dims))},
         "watermark": pa.array(list(watermarks.values()), pa.timestamp("us", "UTC"))}
    )
    return keys.join(marks, [f"k{i}" for i in range(len(dims))], join_type=join_type)


def partition_transactions(values: Sequence[str]) -> list[Transaction]:
    """The identity app transaction of each partition value (``""`` for a single-index table)."""
    return [app_transaction(f"lakenodes.identity.{hashlib.sha256(value.encode()).hexdigest()[:32]}") for value in values]


def now_ms() -> int:
    """The ``lastUpdated`` of the app transactions lakenodes writes now (ms since the epoch)."""
    return int(time.time() * 1000)


def app_transaction(app_id: str) -> Transaction:
    """A Delta app transaction (version 1) stamped with ``lastUpdated``.

    delta-rs drops app transactions whose ``lastUpdated`` is older than the table's
    ``delta.setTransactionRetentionDuration`` from snapshots and checkpoints; ones without it are
    kept forever (every write id ever written would stay in every checkpoint), and Spark's log
    replay drops them once a retention is set. Conflict detection looks at the actions of
    concurrent commits, so expiry never weakens it.
    """
    return Transaction(app_id, 1, last_updated=now_ms())


def rows_at_or_before_watermark(frame: NormalizedFrame, watermarks: Mapping[tuple[str, ...], datetime.datetime]) -> int:
    """How many rows of ``frame`` are at or before the stored watermark of their identity (restatements)."""
    if not watermarks:
        return 0
    dims = list(frame.identity_dimensions)
    times = frame.table.column(TIME_INDEX)
    if not dims:
        mark = watermarks.get(())
        return 0 if mark is None else int(pc.sum(pc.less_equal(times, pa.scalar(mark, pa.timestamp("us", "UTC")))).as_py() or 0)
    joined = _join_watermarks(frame, watermarks, "inner")
    if joined.num_rows == 0:
        return 0
    return int(pc.sum(pc.less_equal(joined["time_index"], joined["watermark"])).as_py() or 0)


def watermarks_moved_back(
    frame: NormalizedFrame, seen: Mapping[tuple[str, ...], datetime.datetime],
    stored: Mapping[tuple[str, ...], datetime.datetime],
) -> list[tuple[str, ...]]:
    """Identities of ``frame`` whose ``stored`` watermark is now earlier than (or gone since) the
    one ``update()`` saw (``seen``): a tail delete landed in between, so the rows update()
    produced start after a gap that no later run would fill."""
    dims = list(frame.identity_dimensions)
    if dims:
        keys = frame.table.select(dims).group_by(dims).aggregate([])
        identities = list(zip(*(keys.column(dim).to_pylist() for dim in dims), strict=True))
    else:
        identities = [()]
    return sorted(identity for identity in identities
                  if identity in seen and (stored.get(identity) is None or stored[identity] < seen[identity]))
