"""Streamed ``update()`` output: an Arrow ``RecordBatchReader`` or a polars ``LazyFrame``, validated
batch by batch with the rules of :mod:`lakenodes.core.frames`, in bounded memory.

Memory holds one batch plus the first/last time of each identity seen so far. Duplicates across
batches are ruled out by order: each identity's rows must arrive in time order from one batch
to the next (within a batch, any order). A time-ordered backfill, or one sorted by identity,
satisfies this; anything else is a clear error before a row is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import polars as pl

from .._internal.deferred import pa
from .._internal.event_loops import outside_event_loop
from ..errors import FrameValidationError
from .config import RecordDefinition
from .frames import NormalizedFrame, conform_to_schema, normalize_frame

STREAM_CHUNK_ROWS = 500_000  # rows per batch taken from a LazyFrame
_END = object()  # the stream has no more batches
_SEEN = "__lakenodes_hi_seen"  # the last time of each identity in earlier batches, beside a batch's bounds


def is_stream(output: Any) -> bool:
    """True for the streamed kinds of ``update()`` output (``RecordBatchReader``, ``LazyFrame``)."""
    return isinstance(output, pa.RecordBatchReader | pl.LazyFrame)


def _empty_of(source: Any) -> Any:
    """An empty frame of the columns a stream declares (its batches have them)."""
    if isinstance(source, pl.LazyFrame):
        return pl.DataFrame(schema=source.collect_schema())
    return source.schema.empty_table()


class FrameStream:
    """The validated batches of a streamed ``update()`` output (iterate once).

    After iteration, ``identity_bounds`` holds ``n``/``lo``/``hi`` per identity over every batch
    (the shape of ``NormalizedFrame.identity_bounds``), so writes decide from it as from a frame.

    Example:
        >>> import datetime as dt
        >>> rows = pl.DataFrame({"time_index": [dt.datetime(2024, 1, d, tzinfo=dt.timezone.utc) for d in (1, 2)],
        ...                      "x": [1.0, 2.0]})
        >>> stream = FrameStream(rows.lazy())
        >>> sum(frame.num_rows for frame in stream), stream.identity_bounds["n"].to_list()
        (2, [2])
    """

    def __init__(
        self,
        source: Any,
        declared_dimensions: Sequence[str] = (),
        records: Sequence[RecordDefinition] | None = None,
        stored: tuple[pa.Schema, Sequence[str]] | None = None,
        log: logging.Logger | logging.LoggerAdapter | None = None,
    ):
        self._source = source
        self._log = log or logging.getLogger(__name__)
        self._dimensions = tuple(declared_dimensions)
        self._records = records
        self._schema, self._index = (stored[0], tuple(stored[1])) if stored is not None else (None, None)
        self._bounds: pl.DataFrame | None = None
        self.batches = 0
        self.num_rows = 0

    @property
    def index_names(self) -> tuple[str, ...]:
        if self._index is None:
            raise FrameValidationError("the streamed update has not produced a row yet")
        return self._index

    @property
    def identity_dimensions(self) -> tuple[str, ...]:
        return self.index_names[1:]

    @property
    def identity_bounds(self) -> pl.DataFrame:
        if self._bounds is None:
            raise FrameValidationError("the streamed update has not produced a row yet")
        return self._bounds

    def __iter__(self) -> Iterator[NormalizedFrame]:
        source = self._source
        if isinstance(source, pl.LazyFrame):  # polars' streaming engine, one chunk at a time
            source = source.collect_batches(chunk_size=STREAM_CHUNK_ROWS, lazy=True)
        batches = iter(source)
        # a batch made where update() runs: outside an event loop running here (a notebook cell's generator
        # calling asyncio.run, see lakenodes._internal.event_loops); a plain next() when none runs
        while (raw := outside_event_loop(lambda: next(batches, _END))) is not _END:
            self.batches += 1
            frame = self._validated(raw)
            if frame is not None:
                self.num_rows += frame.num_rows
                yield frame
        if not self.num_rows and self._schema is not None:  # no row: its declared schema must still fit the table
            self._validated(_empty_of(self._source), "the streamed update (no row)")

    def _validated(self, raw: Any, where: str | None = None) -> NormalizedFrame | None:
        """The batch validated and typed as the table; None for an empty one (checked all the same
        against the stored schema or an earlier batch's, so a quiet day's wrong schema fails now)."""
        try:
            # the stored table's schema (or the first batch's) types later batches' columns of only nulls
            known = self._schema is not None
            frame = normalize_frame(raw, self._dimensions, self._records, keep_untyped_nulls=known, keep_empty=known,
                                    log=self._log)
            if frame is None:
                return None
            if self._schema is None:
                self._schema, self._index = frame.table.schema, frame.index_names
            frame = conform_to_schema(frame, self._schema, self._index)
        except FrameValidationError as error:
            raise type(error)(f"{where or f'batch {self.batches} of the streamed update'}: {error}") from error
        if not frame.num_rows:
            return None
        self._check_order(frame)
        return frame

    def _check_order(self, frame: NormalizedFrame) -> None:
        """Each identity's rows arrive in time order across batches (so none repeats an earlier one)."""
        dims = list(frame.identity_dimensions)
        bounds = frame.identity_bounds
        if self._bounds is not None:
            seen = pl.col("hi").alias(_SEEN)  # a "__" name (reserved): any other may be a dimension's
            if dims:
                earlier = bounds.join(self._bounds.select(*dims, seen), on=dims, how="inner")
            else:
                earlier = bounds.with_columns(self._bounds.select(seen).to_series())
            late = earlier.filter(pl.col("lo") <= pl.col(_SEEN))
            if late.height:
                row = late.row(0, named=True)
                who = ", ".join(f"{dim}={row[dim]!r}" for dim in dims) or "the series"
                raise FrameValidationError(
                    f"batch {self.batches} of the streamed update has rows of {who} from {row['lo'].isoformat()}, "
                    f"not after the {row[_SEEN].isoformat()} of an earlier batch: a streamed update must "
                    "deliver each identity's rows in time order across batches (sort it by time or by identity)")
            bounds = pl.concat([self._bounds, bounds]).group_by(dims).agg(
                pl.col("n").sum(), pl.col("lo").min(), pl.col("hi").max()) if dims else pl.concat(
                [self._bounds, bounds]).select(pl.col("n").sum(), pl.col("lo").min(), pl.col("hi").max())
        self._bounds = bounds

