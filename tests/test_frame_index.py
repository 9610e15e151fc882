"""The index rules on large frames in every row order: a repeated index tuple is refused wherever
it is, and ``identity_bounds`` are exact, whether uniqueness is proven from neighbouring rows
(sorted by time, or one time-ordered block per identity) or by counting distinct times."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from lakenodes import FrameValidationError
from lakenodes.core import frame_index
from lakenodes.core.frames import normalize_frame


@pytest.fixture(autouse=True, params=["polars grouping", "Arrow grouping"])
def grouping(request, monkeypatch) -> None:
    """Every rule once with each grouping (Arrow's is used from ARROW_GROUPING_ROWS rows)."""
    if request.param == "Arrow grouping":
        monkeypatch.setattr(frame_index, "ARROW_GROUPING_ROWS", 0)

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
ASSETS, DAYS = 7, 40


def panel(venues: bool = False) -> pl.DataFrame:
    """ASSETS x DAYS rows sorted by (time_index, unique_identifier[, venue])."""
    times = pl.datetime_range(T0, T0 + dt.timedelta(days=DAYS - 1), "1d", eager=True, time_zone="UTC")
    frame = pl.DataFrame({"time_index": times}).join(
        pl.DataFrame({"unique_identifier": [f"U{i}" for i in range(ASSETS)]}), how="cross")
    if venues:
        frame = frame.join(pl.DataFrame({"venue": ["X", "Y"]}), how="cross")
    return frame.with_columns(value=pl.int_range(pl.len()).cast(pl.Float64))


def in_order(frame: pl.DataFrame, order: str) -> pl.DataFrame:
    dims = [name for name in ("unique_identifier", "venue") if name in frame.columns]
    if order == "time then identity":
        return frame.sort(["time_index", *dims])
    if order == "identity blocks":  # per-asset frames concatenated, assets in no particular order
        blocks = frame.sort([*dims, "time_index"]).partition_by(dims, maintain_order=True)
        return pl.concat([blocks[i] for i in np.random.default_rng(3).permutation(len(blocks))])
    if order == "identity blocks, one split":  # an asset's rows in two blocks: not provable by neighbours
        blocks = frame.sort([*dims, "time_index"]).partition_by(dims, maintain_order=True)
        first = blocks[0]
        return pl.concat([first.head(5), *blocks[1:], first.tail(first.height - 5)])
    if order == "time, identities unsorted":
        return frame.sort("time_index", descending=False).with_columns(key=pl.col("unique_identifier").hash(7)) \
            .sort(["time_index", "key"]).drop("key")
    return frame.sample(fraction=1.0, shuffle=True, seed=5)  # shuffled


ORDERS = ["time then identity", "identity blocks", "identity blocks, one split", "time, identities unsorted",
          "shuffled"]


def reference_bounds(frame: pl.DataFrame, dims: list[str]) -> list[tuple]:
    bounds = frame.group_by(dims).agg(pl.len().alias("n"), pl.col("time_index").min().alias("lo"),
                                      pl.col("time_index").max().alias("hi"))
    return sorted(bounds.select(*dims, "n", "lo", "hi").rows())


@pytest.mark.parametrize("venues", [False, True], ids=["2 levels", "3 levels"])
@pytest.mark.parametrize("order", ORDERS)
def test_unique_frames_are_accepted_with_exact_bounds(order, venues):
    frame = in_order(panel(venues), order)
    dims = ["unique_identifier", "venue"] if venues else ["unique_identifier"]
    normalized = normalize_frame(frame, dims[1:])
    assert normalized.num_rows == frame.height
    assert sorted(normalized.identity_bounds.select(*dims, "n", "lo", "hi").rows()) == reference_bounds(frame, dims)


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("venues", [False, True], ids=["2 levels", "3 levels"])
@pytest.mark.parametrize("order", ORDERS)
def test_one_repeated_index_tuple_is_refused_in_any_order(order, venues, where):
    frame = panel(venues)
    row = {"first": 0, "middle": frame.height // 2, "last": frame.height - 1}[where]
    with_repeat = in_order(pl.concat([frame, frame.slice(row, 1)]), order)
    dims = ["unique_identifier", "venue"] if venues else ["unique_identifier"]
    repeated = frame.row(row, named=True)
    with pytest.raises(FrameValidationError, match=f"duplicate index .*unique_identifier='{repeated['unique_identifier']}'"):
        normalize_frame(with_repeat, dims[1:])


def test_a_time_repeated_in_a_single_level_index_is_refused_in_any_position():
    times = pl.datetime_range(T0, T0 + dt.timedelta(days=99), "1d", eager=True, time_zone="UTC")
    for position in (0, 50, 99):
        repeated = pl.concat([times, times.slice(position, 1)])
        for frame in (pl.DataFrame({"time_index": repeated.sort()}), pl.DataFrame({"time_index": repeated.reverse()})):
            with pytest.raises(FrameValidationError, match="duplicate index"):
                normalize_frame(frame.with_columns(value=pl.lit(1.0)))
    assert normalize_frame(pl.DataFrame({"time_index": times.reverse(), "value": 1.0})).identity_bounds["n"].to_list() \
        == [100]


def test_identities_repeating_date_after_date_with_uneven_dates():
    """Every k rows repeat the identities of the first date, but dates do not come in k-row blocks."""
    days = [T0 + dt.timedelta(days=n) for n in range(3)]
    uneven = pl.DataFrame({"time_index": [days[0], days[0], days[1], days[2]], "unique_identifier": ["A", "B"] * 2,
                           "value": [1.0, 2.0, 3.0, 4.0]})
    bounds = normalize_frame(uneven).identity_bounds.sort("unique_identifier")
    assert bounds.select("unique_identifier", "n", "lo", "hi").rows() == [("A", 2, days[0], days[1]),
                                                                          ("B", 2, days[0], days[2])]
    repeated = pl.DataFrame({"time_index": [days[0]] * 2 + [days[1]] * 4, "unique_identifier": ["A", "B"] * 3,
                             "value": [1.0] * 6})
    with pytest.raises(FrameValidationError, match=r"duplicate index \(time_index=2024-01-02"):
        normalize_frame(repeated)


@pytest.mark.parametrize("venues", [False, True], ids=["2 levels", "3 levels"])
def test_a_one_date_frame_is_read_off_as_a_panel(venues):
    """A daily update (one date, every identity once) needs no grouping: its bounds are its rows.
    (The check that later dates repeat the first date's identities found no later date and took
    that as a mismatch, so every daily update paid a grouping.)"""
    frame = panel(venues).filter(pl.col("time_index") == T0).reverse()  # identities in no particular order
    dims = ["unique_identifier", "venue"] if venues else ["unique_identifier"]
    read_off = frame_index._panel_bounds(frame.to_arrow(), dims)
    assert read_off is not None and read_off[1]  # one date, every identity once: unique without a check
    assert sorted(read_off[0].select(*dims, "n", "lo", "hi").rows()) == reference_bounds(frame, dims)
    twice = pl.concat([frame, frame.head(1)])
    assert frame_index._panel_bounds(twice.to_arrow(), dims) is None
    with pytest.raises(FrameValidationError, match="duplicate index"):
        normalize_frame(twice, dims[1:])


def test_a_date_repeated_across_blocks_of_a_panel_is_refused():
    """Blocks of the same identities in the same order, times ascending, but one date spans two
    blocks: the panel's bounds hold, its uniqueness is not proven, and the repeat is found."""
    days = [T0 + dt.timedelta(days=n) for n in range(2)]
    frame = pl.DataFrame({"time_index": [days[0]] * 2 + [days[1]] * 4, "unique_identifier": ["A", "B"] * 3,
                          "value": [1.0] * 6})
    read_off = frame_index._panel_bounds(frame.to_arrow(), ["unique_identifier"])
    assert read_off is not None and not read_off[1]
    with pytest.raises(FrameValidationError, match=r"duplicate index \(time_index=2024-01-02.*unique_identifier='A'"):
        normalize_frame(frame)
    dated = frame.with_columns(time_index=pl.Series([days[0]] * 2 + [days[1]] * 2 + [days[1] + dt.timedelta(days=1)] * 2))
    assert frame_index._panel_bounds(dated.to_arrow(), ["unique_identifier"])[1]
    assert normalize_frame(dated).identity_bounds["n"].to_list() == [3, 3]
