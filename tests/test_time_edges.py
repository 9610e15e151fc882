"""Statistics at the edges of time: an ``offset_start`` of year 1 moved back by ``extra_time_delta``,
and offsets given in another zone than UTC."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from pydantic import ValidationError
from test_frames import FrameConfig, FrameNode

from lakenodes import Asset, ConfigurationError, DataNodeConfiguration, Lake

UTC = dt.UTC
YEAR_ONE = dt.datetime(1, 1, 1, tzinfo=UTC)
KOLKATA = ZoneInfo("Asia/Kolkata")


class AllHistory(FrameNode):
    """Starts at the first moment Python holds, for assets A (written) and Z (never written)."""

    OFFSET_START: ClassVar[dt.datetime] = YEAR_ONE

    def get_asset_list(self):
        return [Asset(unique_identifier="A"), Asset(unique_identifier="Z")]


class KolkataStart(FrameNode):
    OFFSET_START: ClassVar[dt.datetime] = dt.datetime(2020, 1, 1, tzinfo=KOLKATA)


class KolkataYearOne(FrameNode):
    OFFSET_START: ClassVar[dt.datetime] = dt.datetime(1, 1, 1, tzinfo=KOLKATA)


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


def test_a_class_offset_start_in_another_zone_is_given_back_in_utc(local_lake: Lake) -> None:
    stats = KolkataStart(FrameConfig(name="kolkata"), lake=local_lake).update_statistics
    start = stats.get_last_update_index_2d("NEVER_WRITTEN")
    assert start == dt.datetime(2019, 12, 31, 18, 30, tzinfo=UTC) and start.utcoffset() == dt.timedelta(0)
    assert start.date() == dt.date(2019, 12, 31)  # the UTC day, as the config's offset_start gives it


def test_an_offset_start_that_is_no_utc_time_is_refused_naming_it(local_lake: Lake) -> None:
    with pytest.raises(ValidationError, match=r"offset_start 0001-01-01T00:00:00\+05:30 is outside 0001-01-01"):
        DataNodeConfiguration(offset_start="0001-01-01T00:00:00+05:30")
    node = KolkataYearOne(FrameConfig(name="kolkata_year_one"), lake=local_lake)
    with pytest.raises(ConfigurationError, match=r"KolkataYearOne.OFFSET_START 0001-01-01T00:00:00\+05:[0-9:]+ is outside"):
        node.compute_update_statistics()
