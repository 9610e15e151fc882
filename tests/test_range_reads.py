"""Reads scoped by many ranges (each identity within its own window): the latest row of every
asset and the seeds' range maps at thousands of identities. One pyarrow filter term per range
took 80 s at 1,000 assets and crashed the process at 10,000; past a few ranges the rows are
matched to their range by a join, and both ways must return the same rows."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl
import pytest
from faultproxy import FaultProxy
from test_frames import FrameConfig, FrameNode
from test_polars_scan import rows
from test_read_edges import Venue2, at, ms_edge_rows

from lakenodes import Lake, use_lake
from lakenodes.lake import _polars_scan, _ranges

ASSETS = [f"A{i:02d}" for i in range(40)]


@pytest.fixture
def venues(local_lake: Lake) -> Venue2:
    node = Venue2()
    node.run_with(ms_edge_rows(range(1, 4), ASSETS))
    node.run_with(ms_edge_rows(range(4, 6), ASSETS))
    return node


def expected(written: pl.DataFrame, specs: list[dict]) -> pl.DataFrame:
    """The rows each spec selects, computed apart from lakenodes: row by row, in Python."""
    def selected(row: dict) -> bool:
        for spec in specs:
            if any(row[dim] != value for dim, value in spec["coordinate"].items()):
                continue
            t, start, end = row["time_index"], spec.get("start_date"), spec.get("end_date")
            inclusive_start, inclusive_end = spec.get("start_date_operand", ">=") == ">=", spec.get("end_date_operand", "<=") == "<="
            if start is not None and not (t >= start if inclusive_start else t > start):
                continue
            if end is not None and not (t <= end if inclusive_end else t < end):
                continue
            return True
        return False
    return pl.DataFrame([row for row in written.iter_rows(named=True) if selected(row)], schema=written.schema)


def random_specs(count: int, seed: int) -> list[dict]:
    """Coordinates by uid alone and by (uid, venue), some repeated with another window, with
    bounds on and 1 µs either side of stored times (which sit 999 µs past the day)."""
    pick = random.Random(seed)
    specs = []
    for _ in range(count):
        coordinate = {"unique_identifier": pick.choice([*ASSETS, "NOT_STORED"])}
        if pick.random() < 0.5:
            coordinate["venue"] = pick.choice(["X", "Y"])
        spec: dict = {"coordinate": coordinate}
        if pick.random() < 0.8:
            spec["start_date"] = at(pick.randint(1, 5), 999 + pick.choice([-1, 0, 1]))
            spec["start_date_operand"] = pick.choice([">=", ">"])
        if pick.random() < 0.6:
            spec["end_date"] = at(pick.randint(1, 5), 999 + pick.choice([-1, 0, 1]))
            spec["end_date_operand"] = pick.choice(["<=", "<"])
        specs.append(spec)
    return specs


@pytest.mark.parametrize("reader", ["polars", "pyarrow"])
@pytest.mark.parametrize("seed", range(4))
def test_many_ranges_match_one_filter_per_range_and_the_rows_they_name(venues: Venue2, monkeypatch, seed: int,
                                                                      reader: str) -> None:
    written = pl.concat([ms_edge_rows(range(1, 4), ASSETS), ms_edge_rows(range(4, 6), ASSETS)]).sort(
        "time_index", "unique_identifier", "venue")
    specs = random_specs(60, seed)
    monkeypatch.setattr(_polars_scan, "MANY_FILES", 0 if reader == "polars" else 10**9)  # who reads the files
    joined = venues.get_df_between_dates(dimension_range_map=specs)
    monkeypatch.setattr(_ranges, "MANY_RANGES", 10**9)  # one filter term per range
    per_term = venues.get_df_between_dates(dimension_range_map=specs)
    assert joined.equals(per_term)
    assert joined.select(written.columns).equals(expected(written, specs))
    assert 0 < joined.height < written.height  # the specs select some rows, not all, not none
    bounded = venues.get_df_between_dates(at(2, 999), None, dimension_range_map=specs)  # and a window of its own
    assert bounded.equals(joined.filter(pl.col("time_index") >= at(2, 999)))


SHARED_WINDOWS = [{"start_date": at(5, 999)},  # the latest day of every asset
                  {"start_date": at(2, 998), "start_date_operand": ">", "end_date": at(4, 999), "end_date_operand": "<"},
                  {"end_date": at(3, 1000)}]


@pytest.mark.parametrize("window", SHARED_WINDOWS)
def test_many_ranges_sharing_one_window_are_filtered_without_the_join(venues: Venue2, monkeypatch, window: dict) -> None:
    """Ranges that all share one window (the latest row of assets updated together) take a plain
    filter instead of the join: the same rows as one filter term per range and as named."""
    written = pl.concat([ms_edge_rows(range(1, 4), ASSETS), ms_edge_rows(range(4, 6), ASSETS)]).sort(
        "time_index", "unique_identifier", "venue")
    specs = [{**window, "coordinate": spec["coordinate"]} for spec in random_specs(60, 7)]
    monkeypatch.setattr(_ranges, "pl", None)  # the join is made in polars: this read must not reach it
    shared = venues.get_df_between_dates(dimension_range_map=specs)
    monkeypatch.undo()
    monkeypatch.setattr(_ranges, "MANY_RANGES", 10**9)  # one filter term per range
    assert shared.equals(venues.get_df_between_dates(dimension_range_map=specs))
    assert shared.select(written.columns).equals(expected(written, specs))
    assert 0 < shared.height < written.height


def test_range_map_of_ten_thousand_identities(venues: Venue2) -> None:
    """A range map naming 10,000 identities, 40 of them stored (a universe larger than the table)."""
    universe = [f"A{i:02d}" for i in range(10_000)]
    range_map = {uid: {"start_date": at(4, 999), "start_date_operand": ">" if uid == "A07" else ">="} for uid in universe}
    read = venues.get_df_between_dates(unique_identifier_range_map=range_map)
    assert read.height == (2 * 40 - 1) * 2  # days 4 and 5 of 40 assets in 2 venues, less A07's day 4
    assert read.filter(pl.col("unique_identifier") == "A07")["time_index"].unique().to_list() == [at(5, 999)]


def test_the_latest_row_of_two_thousand_assets(local_lake: Lake) -> None:
    assets = [f"S{i:04d}" for i in range(2_000)]
    node = Venue2()
    node.run_with(ms_edge_rows(range(1, 3), assets, venues=("X",)))
    node.run_with(ms_edge_rows(range(3, 4), assets[::2], venues=("X",)))  # half the assets move on a day
    last = node.get_last_observation()
    assert last.height == 2_000
    by_asset = dict(zip(last["unique_identifier"], last["time_index"], strict=True))
    assert {by_asset[a] for a in assets[::2]} == {at(3, 999)} and {by_asset[a] for a in assets[1::2]} == {at(2, 999)}
    assert sorted(node.get_last_observation(asset_list=assets[:30])["unique_identifier"]) == assets[:30]
    before = node.get_last_observation(as_of=0)  # version 0: the first run's two days
    assert before.height == 2_000 and set(before["time_index"]) == {at(2, 999)}


def test_naive_and_offset_bounds_mean_utc_on_both_paths(venues: Venue2, monkeypatch) -> None:
    eastern = dt.timezone(dt.timedelta(hours=-5))
    specs = [{"coordinate": {"unique_identifier": uid}, "start_date": at(5, 999).replace(tzinfo=None)} for uid in ASSETS[:20]]
    specs += [{"coordinate": {"unique_identifier": uid}, "end_date": at(1, 999).astimezone(eastern)} for uid in ASSETS[20:]]
    joined = venues.get_df_between_dates(dimension_range_map=specs)
    monkeypatch.setattr(_ranges, "MANY_RANGES", 10**9)
    assert joined.equals(venues.get_df_between_dates(dimension_range_map=specs))
    assert joined.height == 40 * 2 and set(joined["time_index"]) == {at(5, 999), at(1, 999)}


@pytest.mark.s3
def test_the_latest_rows_are_read_at_the_version_their_times_come_from(s3_server) -> None:
    """``get_last_observation`` took each asset's latest time from the table's current version, then
    read the rows asking S3 again whether a newer version had appeared: one more round trip to the
    log in every call, and the rows of a version other than the one their times came from. It now
    reads that version: it asks the log what a read of the table asks, no more."""
    lake = s3_server.new_lake()
    with use_lake(lake):
        FrameNode(FrameConfig(name="many_files")).run_with(rows(range(1, 4)))
    with FaultProxy(s3_server.endpoint_url) as proxy:
        through = Lake(lake.uri, storage_options={**lake.storage_options, "AWS_ENDPOINT_URL": proxy.endpoint_url})
        node = FrameNode(FrameConfig(name="many_files"), lake=through)
        asked = {}
        for name, read in (("latest", node.get_last_observation), ("read", node.get_df_between_dates)) * 2:
            before = len(proxy.requests)
            assert read().height  # the second time round: the table open, its footers kept
            asked[name] = [request for request in proxy.requests[before:] if "/_delta_log/" in request[1]]
    assert asked["latest"] and len(asked["latest"]) == len(asked["read"]), asked
