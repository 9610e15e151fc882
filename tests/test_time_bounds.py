"""Time bounds between two stored microseconds: a pandas Timestamp with nanoseconds, or text with
more than six fractional digits, bounds reads and tail deletes exactly (Delta stores microseconds)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from test_frames import FrameConfig, FrameNode
from typer.testing import CliRunner

from lakenodes import Lake, LakenodesUserError, TimeIndexMetaTable
from lakenodes.cli import app

UTC = dt.UTC
LAST = dt.datetime(2024, 3, 2, 12, tzinfo=UTC)
NEXT = LAST + dt.timedelta(microseconds=1)


def two_rows(lake: Lake) -> FrameNode:
    node = FrameNode(FrameConfig(name="bounds"), lake=lake)
    node.run_with(pl.DataFrame({"time_index": [LAST, NEXT], "unique_identifier": ["A", "A"], "v": [1.0, 2.0]}))
    return node


def times(frame: pl.DataFrame) -> list[dt.datetime]:
    return frame["time_index"].to_list()


@pytest.mark.parametrize("after_last", [pd.Timestamp(LAST) + pd.Timedelta(1, "ns"), "2024-03-02T12:00:00.0000001Z",
                                        np.datetime64("2024-03-02T12:00:00.000000001")],
                         ids=["timestamp", "text", "numpy"])
def test_a_start_between_two_microseconds_leaves_out_the_row_before_it(local_lake: Lake, after_last) -> None:
    node = two_rows(local_lake)
    assert times(node.get_df_between_dates(after_last)) == [NEXT]
    assert times(node.get_df_between_dates(after_last, great_or_equal=False)) == [NEXT]
    assert times(node.scan(after_last).collect()) == [NEXT]
    assert times(node.get_ranged_data_per_asset({"A": {"start_date": after_last, "start_date_operand": ">"}})) == [NEXT]
    assert times(node.get_df_between_dates(None, after_last)) == [LAST]
    assert times(node.get_df_between_dates(None, after_last, less_or_equal=False)) == [LAST]
    assert times(node.get_df_between_dates(None, "2024-03-02T12:00:00.000000999Z", less_or_equal=False)) == [LAST]


def test_a_tail_delete_between_two_microseconds_keeps_the_row_before_it(local_lake: Lake) -> None:
    node = two_rows(local_lake)
    table = TimeIndexMetaTable.get(storage_hash=node.storage_hash, lake=local_lake)
    assert table.delete_after_date(pd.Timestamp(LAST) + pd.Timedelta(1, "ns"), dry_run=True)["deleted_count"] == 1
    result = CliRunner().invoke(app, ["--lake", local_lake.uri, "data-node", "delete-after-date", node.storage_hash,
                                      "2024-03-02T12:00:00.0000001Z", "--yes"])
    assert result.exit_code == 0, result.output
    assert "time_index >= 2024-03-02T12:00:00.000001Z" in result.output  # as every command writes a moment
    assert times(node.get_df_between_dates()) == [LAST]


def test_numpy_datetimes_bound_reads_and_deletes_as_naive_utc(local_lake: Lake) -> None:
    """A numpy ``datetime64`` (what ``frame.index.values`` holds) is a moment as a naive datetime is:
    UTC, in any unit; ``NaT`` is refused by name."""
    node = two_rows(local_lake)
    assert times(node.get_df_between_dates(np.datetime64("2024-03-02T12:00:00.000001", "us"))) == [NEXT]
    assert times(node.get_df_between_dates(np.datetime64("2024-03-02"), np.datetime64("2024-03-02T12", "h"))) == [LAST]
    table = TimeIndexMetaTable.get(storage_hash=node.storage_hash, lake=local_lake)
    assert table.delete_after_date(np.datetime64("2024-03-02T12:00:00.000000001"), dry_run=True)["deleted_count"] == 1
    with pytest.raises(LakenodesUserError, match="^start_date is NaT, not a moment: pass None for no bound$"):
        node.get_df_between_dates(np.datetime64("NaT"))
    assert times(node.get_df_between_dates()) == [LAST, NEXT]
