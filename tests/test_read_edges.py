"""Edges of the read path: file choice by partition lookup and integer bounds, the local refresh
by two stats, and the polars read path against pyarrow's, on the table shapes lakenodes writes
(a second identity dimension, no identity, times a fraction of a millisecond from day boundaries)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from typing import ClassVar

import polars as pl
import pytest
from test_frames import FrameConfig, FrameNode
from test_polars_scan import read_both

from lakenodes import Lake

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
ASSETS = [f"A{i:02d}" for i in range(40)]


class Venue2(FrameNode):
    IDENTITY_DIMENSIONS: ClassVar[tuple[str, ...]] = ("unique_identifier", "venue")


class Series(FrameNode):
    IDENTITY_DIMENSIONS: ClassVar[tuple[str, ...]] = ()


def ms_edge_rows(days: range, assets=ASSETS, venues=("X", "Y")) -> pl.DataFrame:
    """Times 0.999 ms past each day (Delta stats truncate them to the day's ms)."""
    keys = [(d, a, v) for d in days for a in assets for v in venues]
    return pl.DataFrame({
        "time_index": [T0 + dt.timedelta(days=d, microseconds=999) for d, _, _ in keys],
        "unique_identifier": [a for _, a, _ in keys], "venue": [v for _, _, v in keys],
        "price": [float(d) for d, _, _ in keys], "note": [None if d == 2 else f"n{d}" for d, _, _ in keys],
    })


def at(d: int, micros: int = 0) -> dt.datetime:
    return T0 + dt.timedelta(days=d, microseconds=micros)


WINDOWS = [
    {"start_date": at(2, 999), "end_date": at(2, 999)},
    {"start_date": at(2, 999), "end_date": at(3, 999), "great_or_equal": False},
    {"start_date": at(2, 999), "end_date": at(3, 999), "less_or_equal": False},
    {"start_date": at(2, 1000)},
    {"end_date": at(2, 998)},
    {"start_date": at(2, 999).replace(tzinfo=None), "end_date": at(2, 999).replace(tzinfo=None)},  # naive
    {"start_date": at(2, 999).astimezone(dt.timezone(dt.timedelta(hours=-5)))},
    {"start_date": at(2, 999), "end_date": at(2, 999), "columns": ["note"]},
    {"start_date": at(2, 999), "end_date": at(2, 999), "columns": ["unique_identifier", "price"]},
    {"start_date": at(2, 1000), "end_date": at(2, 1500)},  # empty
]


@pytest.mark.parametrize("window", WINDOWS, ids=[str(i) for i in range(len(WINDOWS))])
def test_multi_dimension_ms_edges_polars_vs_pyarrow(local_lake: Lake, monkeypatch, window: dict) -> None:
    node = Venue2(FrameConfig(name="venues"))
    node.run_with(ms_edge_rows(range(1, 3)))
    node.run_with(ms_edge_rows(range(3, 5)))
    fast, plain, _ = read_both(node, monkeypatch, **window)
    assert fast.schema == plain.schema and fast.equals(plain)
    expected = ms_edge_rows(range(1, 5))
    start, end = window.get("start_date"), window.get("end_date")
    if start is not None:
        s = start if start.tzinfo else start.replace(tzinfo=UTC)
        expected = expected.filter(pl.col("time_index") >= s if window.get("great_or_equal", True) else pl.col("time_index") > s)
    if end is not None:
        e = end if end.tzinfo else end.replace(tzinfo=UTC)
        expected = expected.filter(pl.col("time_index") <= e if window.get("less_or_equal", True) else pl.col("time_index") < e)
    assert fast.height == expected.height


def test_unpartitioned_many_files_ms_edges(local_lake: Lake, monkeypatch) -> None:
    node = Series(FrameConfig(name="series"))
    for d in range(1, 36):
        node.run_with(pl.DataFrame({"time_index": [at(d, 999)], "price": [float(d)]}))
    for window in ({"start_date": at(10, 999), "end_date": at(20, 999)}, {"start_date": at(10, 1000)},
                   {"end_date": at(10, 998)}):
        fast, plain, answered = read_both(node, monkeypatch, **window)
        assert fast.equals(plain)
    assert node.get_df_between_dates(at(10, 999), at(20, 999)).height == 11
    assert node.get_df_between_dates(at(10, 1000)).height == 25


def test_other_process_commit_between_reads(local_lake: Lake) -> None:
    node = Venue2(FrameConfig(name="shared"))
    node.run_with(ms_edge_rows(range(1, 2), assets=["A"]))
    assert node.get_df_between_dates().height == 2
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
        from lakenodes import Lake, use_lake
        from test_frames import FrameConfig
        from test_read_edges import Venue2, ms_edge_rows
        with use_lake(Lake({local_lake.uri!r})):
            Venue2(FrameConfig(name="shared")).run_with(ms_edge_rows(range(2, 3), assets=["A"]))
    """)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    assert node.get_df_between_dates().height == 4
    assert node.get_df_between_dates(unique_identifier_list=["A"]).height == 4
    node.run_with(ms_edge_rows(range(3, 4), assets=["A"]))  # our own commit through the cached object
    assert node.get_df_between_dates().height == 6
    subprocess.run([sys.executable, "-c", script.replace("range(2, 3)", "range(4, 5)")], check=True, capture_output=True)
    assert node.get_df_between_dates().height == 8
    assert node.compute_update_statistics().max_time_index_value == at(4, 999)


def test_table_removed_and_rebuilt_by_another_process(local_lake: Lake) -> None:
    node = Venue2(FrameConfig(name="rebuilt"))
    node.run_with(ms_edge_rows(range(1, 2), assets=["A"]))
    node.run_with(ms_edge_rows(range(2, 3), assets=["A"]))
    assert node.get_df_between_dates().height == 4
    script = textwrap.dedent(f"""
        import shutil, sys; sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
        from lakenodes import Lake, use_lake
        from test_frames import FrameConfig
        from test_read_edges import Venue2, ms_edge_rows
        with use_lake(Lake({local_lake.uri!r})):
            node = Venue2(FrameConfig(name="rebuilt"))
            shutil.rmtree(node.table_uri)
            node.run_with(ms_edge_rows(range(5, 6), assets=["B"]))
            node.run_with(ms_edge_rows(range(6, 7), assets=["B"]))
    """)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    read = node.get_df_between_dates()
    assert sorted(set(read["unique_identifier"])) == ["B"] and read.height == 4


# -- bounds between two microseconds (pandas Timestamps hold nanoseconds, ISO strings any digits) ---
def _between(day: int, nanos: int, form: str) -> object:
    """Day ``day`` plus ``nanos`` nanoseconds as a pandas Timestamp or as ISO text with 9 digits."""
    import pandas as pd

    moment = pd.Timestamp(at(day)) + pd.Timedelta(nanos, "ns")
    return moment if form == "timestamp" else f"{moment.strftime('%Y-%m-%dT%H:%M:%S')}.{nanos:09d}Z"


@pytest.mark.parametrize("form", ["timestamp", "iso"])
@pytest.mark.parametrize("great_or_equal", [True, False])
@pytest.mark.parametrize("less_or_equal", [True, False])
def test_a_bound_between_two_microseconds_keeps_its_meaning(local_lake, form, great_or_equal, less_or_equal):
    """Regression: a bound's nanoseconds were dropped, so ``>= day 1 + 500 ns`` also read day 1's row
    (and ``< day 3 + 500 ns`` lost day 3's)."""
    node = FrameNode(FrameConfig(name="ns-bounds"))
    node.run_with(pl.DataFrame({"time_index": [at(d) for d in range(5)], "unique_identifier": ["A"] * 5,
                                "value": [float(d) for d in range(5)]}))
    rows = node.get_df_between_dates(_between(1, 500, form), _between(3, 500, form), great_or_equal=great_or_equal,
                                     less_or_equal=less_or_equal)
    assert rows["value"].to_list() == [2.0, 3.0]  # day 1 is before the start, day 3 before the end
    window = {"start_date": _between(1, 500, form), "start_date_operand": ">=" if great_or_equal else ">",
              "end_date": _between(3, 500, form), "end_date_operand": "<=" if less_or_equal else "<"}
    assert node.get_df_between_dates(unique_identifier_range_map={"A": window})["value"].to_list() == [2.0, 3.0]
    assert node.get_df_between_dates(dimension_range_map=[{"coordinate": {"unique_identifier": "A"}, **window}]
                                     )["value"].to_list() == [2.0, 3.0]


@pytest.mark.parametrize("form", ["timestamp", "iso"])
def test_a_tail_delete_after_a_moment_between_two_microseconds_keeps_the_rows_before_it(local_lake, form):
    """Regression: ``delete_after_date(day 2 + 500 ns)`` also deleted day 2's row, which is before it."""
    from lakenodes import TimeIndexMetaTable

    node = FrameNode(FrameConfig(name="ns-delete"))
    node.run_with(pl.DataFrame({"time_index": [at(d) for d in range(4)], "value": [float(d) for d in range(4)]}))
    result = TimeIndexMetaTable.get(storage_hash=node.storage_hash).delete_after_date(_between(2, 500, form))
    assert result["deleted_count"] == 1
    assert node.get_df_between_dates()["value"].to_list() == [0.0, 1.0, 2.0]
