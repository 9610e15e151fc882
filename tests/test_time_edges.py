"""Statistics at the edges of time: an ``offset_start`` of year 1 moved back by ``extra_time_delta``."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import polars as pl
from test_frames import FrameConfig, FrameNode

from lakenodes import Asset, Lake

UTC = dt.UTC
YEAR_ONE = dt.datetime(1, 1, 1, tzinfo=UTC)


class AllHistory(FrameNode):
    """Starts at the first moment Python holds, for assets A (written) and Z (never written)."""

    OFFSET_START: ClassVar[dt.datetime] = YEAR_ONE

    def get_asset_list(self):
        return [Asset(unique_identifier="A"), Asset(unique_identifier="Z")]


def test_a_year_one_offset_start_moved_back_by_extra_time_delta_starts_at_year_one(local_lake: Lake) -> None:
    node = AllHistory(FrameConfig(name="all_history"), lake=local_lake)
    last = dt.datetime(2024, 3, 1, tzinfo=UTC)
    node.run_with(pl.DataFrame({"time_index": [YEAR_ONE, last], "unique_identifier": ["A", "A"], "v": [1.0, 2.0]}))
    stats, week = node.update_statistics, dt.timedelta(days=7)
    assert stats.get_update_range_map_great_or_equal(extra_time_delta=week) == {
        "A": {"start_date": last - week, "start_date_operand": ">="},
        "Z": {"start_date": YEAR_ONE, "start_date_operand": ">="},
    }
    starts = stats.get_dimension_range_map_great_or_equal(extra_time_delta=week)
    assert [entry["start_date"] for entry in starts] == [last - week, YEAR_ONE]
    assert node.get_ranged_data_per_asset(starts)["v"].to_list() == [2.0]

