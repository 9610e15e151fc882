"""Per-identity watermarks decide append vs upsert; Delta app transactions make writers of one
partition conflict instead of duplicating rows.

Two app ids per partition value:

- the **identity** id (``partition_transactions``): set by every commit that moves an identity's
  watermark (appends, restatements, tail deletes), so writers that decided from one snapshot
  serialize;
- the **rewrite** id (``rewrite_transactions``): set by every commit that removes files of the
  partition (restatements, tail deletes, compaction, legacy-file repair). delta-rs 1.6.6 does not
  fail a commit that removes a file a concurrent commit already removed (checked in
  ``tests/test_maintenance_contention.py``), so two rewrites from one snapshot would both keep the rows:
  this id makes the later one fail and retry instead. Compaction carries only this id: it
  changes no row and no watermark, so it must not conflict with blind appends (it did when it
  carried the identity id, and lost every race against ~20 appends a second).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import time
from collections.abc import Mapping, Sequence

import polars as pl
from deltalake import Transaction

from .._internal.datetimes import epoch_micros
from ..core.frame_stream import FrameStream
from ..core.frames import TIME_DTYPE, TIME_INDEX, NormalizedFrame
from ..errors import WatermarkMovedError


def identity_transactions(frame: NormalizedFrame | FrameStream, compared: pl.DataFrame) -> list[Transaction]:
    """One Delta app transaction per partition value (first identity dimension; one for a
    single-index table) for which ``frame`` has rows later than the stored watermark
    (``compared``: ``compare_watermarks(frame, watermarks)``).

    delta-rs fails a commit whose app ids were set by a commit that landed after its read version
    ("Concurrent transaction failed"). Every commit that moves an identity's watermark carries its
    app id, so two writers that decided from the same snapshot to blind-append rows of one
    identity cannot both commit: the later one retries, re-reads the watermarks and upserts
    instead of duplicating. Appenders of disjoint identities never conflict. Restatements and
    tail deletes carry the app id of every partition they rewrite (``partition_transactions``),
    so they serialize with every other writer of those partitions.
    """
    # Series operations and Python lists: a DataFrame filter costs ~0.1 ms of polars' planning
    later = compared["watermark"].is_null() | (compared["hi"] > compared["watermark"])
    dims = list(frame.identity_dimensions)
    if not dims:
        return partition_transactions([""] if later.any() else [])
    values = compared[dims[0]].filter(later).to_list()
    return partition_transactions(values if len(dims) == 1 else list(dict.fromkeys(values)))


def compare_watermarks(frame: NormalizedFrame | FrameStream,
                       watermarks: Mapping[tuple[str, ...], datetime.datetime]) -> pl.DataFrame:
    """The frame's identities (``identity_bounds``: ``n``, ``lo``, ``hi``) with the stored
    ``watermark`` of each (null when it has none): what a write attempt decides from.

    Example:
        >>> import datetime as dt
        >>> from lakenodes.core.frames import normalize_frame
        >>> day = dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)
        >>> frame = normalize_frame(pl.DataFrame({"time_index": [day, day], "unique_identifier": ["A", "B"], "x": 1.0}))
        >>> compared = compare_watermarks(frame, {("A",): day - dt.timedelta(days=1)}).sort("unique_identifier")
        >>> [None if mark is None else mark.day for mark in compared["watermark"]]
        [1, None]
    """
    dims = list(frame.identity_dimensions)
    bounds = frame.identity_bounds
    if not dims:
        return bounds.with_columns(watermark=pl.lit(watermarks.get(()), TIME_DTYPE))
    # a lookup per identity of the frame, not a join with every stored identity (polars converts
    # integers far faster than aware datetimes)
    marks = [watermarks.get(key) for key in zip(*(bounds[dim].to_list() for dim in dims), strict=True)]
    micros = pl.Series("watermark", [None if mark is None else epoch_micros(mark) for mark in marks], pl.Int64)
    return bounds.hstack([micros.cast(TIME_DTYPE)])


def partition_transactions(values: Sequence[str]) -> list[Transaction]:
    """The identity app transaction of each partition value (``""`` for a single-index table).

    Example:
        >>> [transaction.app_id for transaction in partition_transactions(["AAPL"])]
        ['lakenodes.identity.1eb44d625271a4eb75016f276d137836']
    """
    return _transactions("identity", values)


def rewrite_transactions(values: Sequence[str]) -> list[Transaction]:
    """The rewrite app transaction of each partition value (``""`` for a single-index table): every
    commit that removes files of a partition carries it (see the module doc)."""
    return _transactions("rewrite", values)


def _transactions(kind: str, values: Sequence[str]) -> list[Transaction]:
    updated = now_ms()
    return [app_transaction(_app_id(kind, value), updated) for value in values]


@functools.lru_cache(maxsize=100_000)  # a daily run asks for the same few thousand every time
def _app_id(kind: str, value: str) -> str:
    return f"lakenodes.{kind}.{hashlib.sha256(value.encode()).hexdigest()[:32]}"


def now_ms() -> int:
    """The ``lastUpdated`` of the app transactions lakenodes writes now (ms since the epoch)."""
    return int(time.time() * 1000)


def app_transaction(app_id: str, updated: int | None = None) -> Transaction:
    """A Delta app transaction (version 1) stamped with ``lastUpdated`` (``updated``, else now).

    delta-rs drops app transactions whose ``lastUpdated`` is older than the table's
    ``delta.setTransactionRetentionDuration`` from snapshots and checkpoints; ones without it are
    kept forever (every write id ever written would stay in every checkpoint), and Spark's log
    replay drops them once a retention is set. Conflict detection looks at the actions of
    concurrent commits, so expiry never weakens it.
    """
    return Transaction(app_id, 1, last_updated=now_ms() if updated is None else updated)


def overlapping_identities(compared: pl.DataFrame) -> pl.DataFrame:
    """The identities of ``compared`` (``compare_watermarks``) whose first row is at or before
    their stored watermark."""
    overlapping = compared["lo"] <= compared["watermark"]
    return compared.filter(overlapping) if overlapping.any() else compared.clear()


def rows_at_or_before_watermark(frame: NormalizedFrame, compared: pl.DataFrame) -> int:
    """How many rows of ``frame`` are at or before the stored watermark of their identity
    (restatements; ``compared``: ``compare_watermarks(frame, watermarks)``)."""
    overlapping = overlapping_identities(compared)
    if overlapping.height == 0:  # every identity starts after its watermark: a blind append
        return 0
    dims = list(frame.identity_dimensions)
    rows = pl.from_arrow(frame.table.select([*dims, TIME_INDEX]))
    rows = rows.join(overlapping.select(*dims, "watermark"), on=dims, how="inner") if dims else \
        rows.with_columns(watermark=overlapping["watermark"][0])
    return rows.filter(pl.col(TIME_INDEX) <= pl.col("watermark")).height


def refuse_moved_back(
    uri: str, frame: NormalizedFrame | FrameStream, seen: Mapping[tuple[str, ...], datetime.datetime] | None,
    stored: Mapping[tuple[str, ...], datetime.datetime],
) -> None:
    """Raise ``WatermarkMovedError`` naming the identities of ``frame`` whose ``stored`` watermark is
    now earlier than (or gone since) the one ``update()`` saw (``seen``; None: not known): a tail
    delete, restore or drop landed in between, so the rows update() produced start after a gap
    that no later run would fill. A write finding the table missing checks with ``stored`` empty:
    every identity with a watermark seen moved back (the table was dropped).

    Example:
        >>> import datetime as dt
        >>> from lakenodes.core.frames import normalize_frame
        >>> day = dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)
        >>> frame = normalize_frame(pl.DataFrame({"time_index": [day, day], "unique_identifier": ["A", "B"], "x": 1.0}))
        >>> refuse_moved_back("/lake/t", frame, {("A",): day}, {("A",): day})  # where update() left it: written
        >>> refuse_moved_back("/lake/t", frame, {("A",): day}, {})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lakenodes.errors.WatermarkMovedError: the stored watermark of A in table /lake/t moved backward ...
    """
    if not seen:
        return
    dims = list(frame.identity_dimensions)
    bounds = frame.identity_bounds
    identities = list(zip(*(bounds[dim].to_list() for dim in dims), strict=True)) if dims else [()]
    moved = sorted(identity for identity in identities
                   if identity in seen and (stored.get(identity) is None or stored[identity] < seen[identity]))
    if moved:
        raise WatermarkMovedError(uri, moved)


def compare_since_seen(
    uri: str, frame: NormalizedFrame | FrameStream, seen: Mapping[tuple[str, ...], datetime.datetime] | None,
    stored: Mapping[tuple[str, ...], datetime.datetime],
) -> pl.DataFrame:
    """What a write attempt decides from: ``compare_watermarks(frame, stored)``, once
    ``refuse_moved_back`` found no watermark of ``frame``'s identities earlier than ``update()``
    saw (every write path, creating the table or writing to it, checks through here)."""
    refuse_moved_back(uri, frame, seen, stored)
    return compare_watermarks(frame, stored)
