"""The index rules of a frame: each identity's row count and first/last time (``identity_bounds``),
and no repeated index tuple, both computed without hashing every full index tuple.

The bounds of a panel (every date the same identities in the same order, dates ascending: the
usual backfill) are read off its first and last date; any other frame pays one grouping by the
(few) identities. Uniqueness is then proven, when it can be,
by comparing neighbouring rows in the orders backfills arrive in: sorted by time then identity
(a generator of dates), or one block of rows per identity in time order (per-asset frames
concatenated, in any asset order). Only a frame in neither order pays the distinct count of
times per identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from .._internal.deferred import pa, pc
from .._internal.plain_arrow import polars_series
from ..errors import FrameValidationError

TIME_INDEX = "time_index"
# Frames from this many rows are grouped by Arrow (about twice as fast as polars on a backfill,
# which converts the identity strings first); smaller ones by polars: Arrow's grouping imports
# pyarrow.acero, which imports pandas when installed (~0.15 s of a cron job's daily run).
ARROW_GROUPING_ROWS = 100_000


def index_bounds(table: pa.Table, index_names: Sequence[str]) -> pl.DataFrame:
    """One row per identity tuple (its dimensions as columns; one row when there are none): row
    count ``n`` (UInt32) and first/last time ``lo``/``hi``.

    Example:
        >>> import datetime as dt
        >>> day = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        >>> rows = pa.table({"time_index": [day, day], "unique_identifier": ["A", "B"]})
        >>> index_bounds(rows, ["time_index", "unique_identifier"]).sort("unique_identifier")["n"].to_list()
        [1, 1]
    """
    return bounds_and_uniqueness(table, index_names)[0]


def bounds_and_uniqueness(table: pa.Table, index_names: Sequence[str]) -> tuple[pl.DataFrame, bool]:
    """``index_bounds``, and whether they prove every index tuple unique (a panel of one date per
    block, dates increasing: ``check_unique_index`` is then not needed)."""
    dims = list(index_names[1:])
    if not dims:
        times = pl.from_arrow(table.select([TIME_INDEX]))
        return times.select(pl.len().alias("n"), pl.col(TIME_INDEX).min().alias("lo"),
                            pl.col(TIME_INDEX).max().alias("hi")), False
    panel = _panel_bounds(table, dims)
    if panel is not None:
        return panel
    return _grouped_bounds(table, dims), False


def _grouped_bounds(table: pa.Table, dims: list[str]) -> pl.DataFrame:
    """The bounds of any frame: one grouping by its identities."""
    if table.num_rows < ARROW_GROUPING_ROWS:  # a daily update: see ARROW_GROUPING_ROWS
        return pl.from_arrow(table.select([*dims, TIME_INDEX])).group_by(dims, maintain_order=True).agg(
            pl.len().cast(pl.UInt32).alias("n"), pl.col(TIME_INDEX).min().alias("lo"),
            pl.col(TIME_INDEX).max().alias("hi"))
    # Arrow's grouping needs no conversion of the (string) identity columns to polars first
    grouped = table.select([*dims, TIME_INDEX]).group_by(dims, use_threads=False).aggregate(
        [(TIME_INDEX, "count"), (TIME_INDEX, "min"), (TIME_INDEX, "max")])
    return pl.from_arrow(grouped).select(
        *dims, pl.col(f"{TIME_INDEX}_count").cast(pl.UInt32).alias("n"),
        pl.col(f"{TIME_INDEX}_min").alias("lo"), pl.col(f"{TIME_INDEX}_max").alias("hi"))


def _panel_bounds(table: pa.Table, dims: Sequence[str]) -> tuple[pl.DataFrame, bool] | None:
    """The bounds of a panel (the usual backfill: every date holds the same identities in the same
    order, dates ascending) read off its first and last date, without grouping; None otherwise.
    With them, whether every block of rows holds one date, each later than the last: then no
    index tuple repeats (each block's identities are the first's, which are distinct)."""
    times = one_array(table.column(TIME_INDEX))
    if not len(times):
        return None
    rows = len(times)
    series = polars_series(times)  # polars, not pyarrow.compute (see _internal/plain_arrow.py)
    counts = series.to_physical()
    first_change = (counts != counts[0]).arg_max()  # the first True; 0 when there is none (row 0 equals itself)
    period = first_change if first_change else rows  # rows of the first date
    if rows % period or not (counts.slice(0, rows - 1) <= counts.slice(1)).all():  # dates ascending
        return None
    first = pl.from_arrow(table.select(dims).slice(0, period))
    if first.n_unique() != period:  # an identity twice on one date
        return None
    for dim in dims if period < rows else ():  # the identities of every later date repeat the first's
        column = one_array(table.column(dim))
        if not pc.all(pc.equal(column.slice(0, rows - period), column.slice(period))).as_py():
            return None
    bounds = pl.DataFrame({**{dim: first[dim] for dim in dims},  # a dict: not a list, which polars < 2
                           "n": pl.Series("n", [rows // period], pl.UInt32).new_from_index(0, period),  # dispatches
                           "lo": series.slice(0, period),  # unsafely in threads (_internal/arrow_rows.py)
                           "hi": series.slice(rows - period)})
    if period == rows:  # one date (a daily update)
        return bounds, True
    starts, ends = (counts.gather_every(period, offset) for offset in (0, period - 1))
    return bounds, bool((starts == ends).all() and (starts.diff().drop_nulls() > 0).all())


def check_unique_index(table: pa.Table, index_names: Sequence[str], bounds: pl.DataFrame) -> None:
    """Raise FrameValidationError naming the first repeated index tuple of ``table``, if any
    (``bounds``: its ``index_bounds``).

    Example:
        >>> import datetime as dt
        >>> day = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        >>> rows = pa.table({"time_index": [day, day]})
        >>> check_unique_index(rows, ["time_index"], index_bounds(rows, ["time_index"]))
        Traceback (most recent call last):
        ...
        lakenodes.errors.FrameValidationError: duplicate index (time_index=2024-01-01T00:00:00+00:00): the 1-level index must be unique
    """
    if table.num_rows < 2 or bounds.height == table.num_rows:  # one row per identity: nothing can repeat
        return
    columns = [one_array(table.column(name)) for name in index_names]
    if rows_increase(columns) or (len(columns) > 1 and _time_ordered_blocks(columns, bounds.height)):
        return
    if not _repeats(table, index_names):
        return
    raise FrameValidationError(
        f"duplicate index ({_first_repeat(table, index_names)}): the {len(index_names)}-level index must be unique")


def one_array(column: pa.ChunkedArray) -> pa.Array:
    """``column`` as one array: its only chunk as it is (``combine_chunks`` copies even that one).

    Example:
        >>> one_array(pa.chunked_array([[1, 2], [3]])).to_pylist()
        [1, 2, 3]
    """
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _pairs(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Each row and the next one: (rows 0..n-2, rows 1..n-1)."""
    return column.slice(0, len(column) - 1), column.slice(1)


def rows_increase(columns: Sequence[pa.Array], strictly: bool = True) -> bool:
    """Whether the rows of ``columns`` (arrays without nulls) increase, compared as tuples
    (``strictly=False``: or stay equal).

    Example:
        >>> rows_increase([pa.array([1, 1, 2]), pa.array(["b", "c", "a"])])
        True
    """
    if not columns or len(columns[0]) < 2:
        return True
    first, second = _pairs(columns[0])
    if not pc.all(pc.less_equal(first, second)).as_py():  # cheap: most unordered rows stop here
        return False
    increasing = None
    for column in reversed(columns):  # a < b on (c0, c1, ...): c0 < c0' or (c0 == c0' and rest < rest')
        first, second = _pairs(column)
        less = (pc.less if strictly or increasing is not None else pc.less_equal)(first, second)
        increasing = less if increasing is None else pc.or_(less, pc.and_(pc.equal(first, second), increasing))
    return bool(pc.all(increasing).as_py())


def _time_ordered_blocks(columns: Sequence[pa.Array], identities: int) -> bool:
    """Whether each identity's rows form one block of strictly increasing times (blocks in any order)."""
    same = None
    for column in columns[1:]:
        equal = pc.equal(*_pairs(column))
        same = equal if same is None else pc.and_(same, equal)
    changes = len(same) - pc.sum(same).as_py()
    if changes + 1 != identities:  # an identity's rows are split over several blocks
        return False
    first, second = _pairs(columns[0])
    return bool(pc.all(pc.or_(pc.invert(same), pc.less(first, second))).as_py())


def _repeats(table: pa.Table, index_names: Sequence[str]) -> bool:
    """Whether some index tuple repeats: distinct times per identity (fewer than its rows)."""
    if len(index_names) == 1:
        return pc.count_distinct(table.column(TIME_INDEX)).as_py() != table.num_rows
    frame = pl.from_arrow(table.select(list(index_names)))
    # "__" names (reserved) beside the identities: any other ("d", "n_times") may be a dimension's
    counts = frame.group_by(list(index_names[1:])).agg(
        pl.len().alias("__lakenodes_rows"), pl.col(TIME_INDEX).n_unique().alias("__lakenodes_times"))
    return counts.filter(pl.col("__lakenodes_times") != pl.col("__lakenodes_rows")).height > 0


def _first_repeat(table: pa.Table, index_names: Sequence[str]) -> str:
    keys = pl.from_arrow(table.select(list(index_names)))
    repeated = keys.filter(keys.is_duplicated()).row(0, named=True)
    return ", ".join(
        f"{name}={value.isoformat() if name == TIME_INDEX else repr(value)}" for name, value in repeated.items())
