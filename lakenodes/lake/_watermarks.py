"""Per-identity watermarks decide append vs upsert; Delta app transactions make writers of one
partition conflict instead of duplicating rows."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import Transaction

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
        keys = pa.table({**{f"k{i}": frame.table.column(dim) for i, dim in enumerate(dims)}, "time_index": times})
        marks = pa.table(
            {**{f"k{i}": pa.array([key[i] for key in watermarks], pa.string()) for i in range(len(dims))},
             "watermark": pa.array(list(watermarks.values()), pa.timestamp("us", "UTC"))}
        )
        joined = keys.join(marks, [f"k{i}" for i in range(len(dims))], join_type="left outer")
        later = pc.or_kleene(pc.is_null(joined["watermark"]), pc.greater(joined["time_index"], joined["watermark"]))
        values = pc.unique(joined.filter(later)["k0"]).to_pylist()
    return partition_transactions(values)


def partition_transactions(values: Sequence[str]) -> list[Transaction]:
    """The identity app transaction of each partition value (``""`` for a single-index table)."""
    return [Transaction(f"lakenodes.identity.{hashlib.sha256(value.encode()).hexdigest()[:32]}", 1) for value in values]


def rows_at_or_before_watermark(frame: NormalizedFrame, watermarks: Mapping[tuple[str, ...], datetime.datetime]) -> int:
    """How many rows of ``frame`` are at or before the stored watermark of their identity (restatements)."""
    if not watermarks:
        return 0
    dims = list(frame.identity_dimensions)
    times = frame.table.column(TIME_INDEX)
    if not dims:
        mark = watermarks.get(())
        return 0 if mark is None else int(pc.sum(pc.less_equal(times, pa.scalar(mark, pa.timestamp("us", "UTC")))).as_py() or 0)
    keys = pa.table({f"k{i}": frame.table.column(dim) for i, dim in enumerate(dims)})
    marks = pa.table(
        {**{f"k{i}": [key[i] for key in watermarks] for i in range(len(dims))},
         "watermark": pa.array(list(watermarks.values()), pa.timestamp("us", "UTC"))}
    )
    joined = keys.append_column("time_index", times).join(marks, [f"k{i}" for i in range(len(dims))], join_type="inner")
    if joined.num_rows == 0:
        return 0
    return int(pc.sum(pc.less_equal(joined["time_index"], joined["watermark"])).as_py() or 0)
