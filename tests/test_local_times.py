"""Intraday data from exchanges in other zones: local-time bounds across daylight-saving changes
(New York 2026-03-08 and 2026-11-01), and local times no clock of their zone showed."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import polars as pl
import pytest
import pytz
from pydantic import ValidationError
from test_frames import FrameConfig, FrameNode

from lakenodes import ConfigurationError, Lake, LakenodesUserError, NodeRunError, TimeIndexMetaTable

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")
# 30-minute bars through the night New York's clocks go back: 01:00-02:00 local happens twice
FALL_BACK_NIGHT = [dt.datetime(2026, 11, 1, 4, 0, tzinfo=UTC) + dt.timedelta(minutes=30 * k) for k in range(9)]


def fall_back_night(lake: Lake) -> FrameNode:
    node = FrameNode(FrameConfig(name="new_york_bars"), lake=lake)
    node.run_with(pl.DataFrame({"time_index": FALL_BACK_NIGHT, "unique_identifier": "SPY", "v": range(9)},
                               schema_overrides={"v": pl.Float64}))
    return node


def local(frame: pl.DataFrame) -> list[str]:
    """The rows' times on New York's clocks, with the offset in force."""
    return [moment.astimezone(NEW_YORK).strftime("%H:%M%z") for moment in frame["time_index"].to_list()]


def test_local_bounds_in_the_repeated_hour_name_the_instants_their_fold_or_offset_says(local_lake: Lake) -> None:
    node = fall_back_night(local_lake)
    first, second = (dt.datetime(2026, 11, 1, 1, 30, fold=fold, tzinfo=NEW_YORK) for fold in (0, 1))
    assert local(node.get_df_between_dates(first, second)) == ["01:30-0400", "01:00-0500", "01:30-0500"]
    assert local(node.get_df_between_dates("2026-11-01T01:30:00-05:00", less_or_equal=False)) == [
        "01:30-0500", "02:00-0500", "02:30-0500", "03:00-0500"]
    in_london = pd.Timestamp("2026-11-01 06:00", tz="Europe/London")  # GMT by then: 01:00 EST
    assert local(node.get_df_between_dates(None, in_london)) == ["00:00-0400", "00:30-0400", "01:00-0400",
                                                                  "01:30-0400", "01:00-0500"]
    table = TimeIndexMetaTable.get(storage_hash=node.storage_hash, lake=local_lake)
    assert table.delete_after_date(second, dry_run=True)["deleted_count"] == 4


@pytest.mark.parametrize("moment, says", [
    (dt.datetime(2026, 3, 8, 2, 30, tzinfo=NEW_YORK), "the clocks of America/New_York skipped 02:30 on 2026-03-08"),
    (dt.datetime(2026, 11, 1, 1, 30, tzinfo=pytz.timezone("America/New_York")), "pytz zone America/New_York was attached"),
    (pytz.timezone("America/New_York").localize(dt.datetime(2026, 3, 8, 2, 30)), "America/New_York skipped 02:30"),
    (dt.datetime(2026, 7, 1, 12, tzinfo=pytz.timezone("EST5EDT")), r"pytz zone EST5EDT was attached .*-05:00"),
], ids=["spring_forward_gap", "pytz_tzinfo", "pytz_localized_gap", "pytz_tzinfo_not_lmt"])
def test_a_local_time_its_zone_never_showed_is_refused_and_deletes_nothing(local_lake: Lake, moment, says) -> None:
    """Python converts both without complaint: the skipped 02:30 as 03:30 EDT, the pytz zone with
    its 1800s offset (-04:56), so a read or a tail delete would start an hour or 4 minutes off."""
    node = fall_back_night(local_lake)
    table = TimeIndexMetaTable.get(storage_hash=node.storage_hash, lake=local_lake)
    for call in (lambda: node.get_df_between_dates(moment), lambda: node.get_df_between_dates(None, moment),
                 lambda: node.get_df_between_dates(as_of=moment), lambda: table.delete_after_date(moment)):
        with pytest.raises(LakenodesUserError, match=says) as refused:
            call()
        assert "\n" not in str(refused.value)
    with pytest.raises(ValidationError, match=says):
        FrameConfig(name="new_york_bars", offset_start=moment)
    starts_then = type("StartsThen", (FrameNode,), {"OFFSET_START": moment})(FrameConfig(name="then"), lake=local_lake)
    with pytest.raises(ConfigurationError, match=says):
        starts_then.compute_update_statistics()
    assert node.get_df_between_dates()["time_index"].to_list() == FALL_BACK_NIGHT
    assert [entry["version"] for entry in table.history()] == [0]


def test_naive_or_zoned_bars_are_refused_with_the_conversion_that_keeps_their_instants(local_lake: Lake) -> None:
    """A vendor's naive New York times are local times: localizing them to UTC (all the old message
    said) would store them 4-5 hours off. The message says both ways, and following it for local
    times stores the instants the bars name, through the repeated hour too."""
    node = FrameNode(FrameConfig(name="vendor_bars"), lake=local_lake)
    on_the_clock = [moment.astimezone(NEW_YORK).replace(tzinfo=None) for moment in FALL_BACK_NIGHT]
    naive = pd.DataFrame({"v": range(9)}, index=pd.DatetimeIndex(on_the_clock, name="time_index"), dtype=float)
    with pytest.raises(NodeRunError, match="if they are local times, localize them in their zone, then convert") as refused:
        node.run_with(naive)
    assert "tz_convert('UTC', level='time_index')" in str(refused.value)
    in_new_york = naive.tz_localize("America/New_York", level="time_index", ambiguous=[True] * 4 + [False] * 5)
    with pytest.raises(NodeRunError, match=r"convert it to UTC first \(pandas: frame.tz_convert\('UTC', level="):
        node.run_with(in_new_york)
    assert node.get_df_between_dates().is_empty()
    node.run_with(in_new_york.tz_convert("UTC", level="time_index"))
    assert node.get_df_between_dates()["time_index"].to_list() == FALL_BACK_NIGHT


def test_a_naive_local_time_column_is_refused_with_the_conversion_that_keeps_its_instants(local_lake: Lake) -> None:
    """A value column of the exchange's naive times (when each trade was printed): the message used
    to offer only localizing to UTC, which stores New York times 4-5 hours off."""
    node = FrameNode(FrameConfig(name="printed_at"), lake=local_lake)
    printed = [moment.astimezone(NEW_YORK).replace(tzinfo=None) for moment in FALL_BACK_NIGHT[:4]]  # up to 01:30 EDT
    frame = pl.DataFrame({"time_index": FALL_BACK_NIGHT[:4], "unique_identifier": "SPY", "printed_at": printed})
    with pytest.raises(NodeRunError, match=r"in their zone, then convert, if they are local times") as refused:
        node.run_with(frame)
    assert "dt.replace_time_zone('America/New_York').dt.convert_time_zone('UTC')" in str(refused.value)
    node.run_with(frame.with_columns(
        pl.col("printed_at").dt.replace_time_zone("America/New_York", ambiguous="earliest").dt.convert_time_zone("UTC")))
    assert node.get_df_between_dates()["printed_at"].to_list() == FALL_BACK_NIGHT[:4]


def test_every_refusal_of_a_time_its_zone_never_showed_says_it_in_one_phrase(local_lake: Lake) -> None:
    """Reads, tail deletes, a configuration's offset_start and a class's OFFSET_START refuse the
    skipped 02:30 in the same words, the name first (reads said ``start_date=...``, the others
    ``offset_start ...``)."""
    moment = dt.datetime(2026, 3, 8, 2, 30, tzinfo=NEW_YORK)
    node = fall_back_night(local_lake)
    table = TimeIndexMetaTable.get(storage_hash=node.storage_hash, lake=local_lake)
    starts_then = type("StartsThen", (FrameNode,), {"OFFSET_START": moment})(FrameConfig(name="then"), lake=local_lake)
    for name, call, error in [
        ("start_date", lambda: node.get_df_between_dates(moment), LakenodesUserError),
        ("as_of", lambda: node.get_df_between_dates(as_of=moment), LakenodesUserError),
        ("after_date", lambda: table.delete_after_date(moment), LakenodesUserError),
        ("offset_start", lambda: FrameConfig(name="new_york_bars", offset_start=moment), ValidationError),
        ("StartsThen.OFFSET_START", starts_then.compute_update_statistics, ConfigurationError),
    ]:
        with pytest.raises(error) as refused:
            call()
        assert f"{name} 2026-03-08T02:30:00 is refused: the clocks of America/New_York skipped 02:30 on 2026-03-08 " \
               "(they went forward): it would be read as 2026-03-08T03:30:00-04:00" in str(refused.value), name
