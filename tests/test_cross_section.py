"""The time-ordered copy for cross-sectional reads (lakenodes.lake.cross_section): written by
``optimize_table(..., cross_section=True)``, used only for a time window with no identity filter
and only while the table is at exactly the version it was written for."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from lakenodes import DataNode, DataNodeConfiguration, Lake, clear_caches
from lakenodes.lake import cross_section
from lakenodes.lake import store as store_module
from lakenodes.lake.maintenance import optimize_table

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
ASSETS = ["A", "BRK/B", "é=1%"]


class CrossConfig(DataNodeConfiguration):
    name: str = "cross"


class CrossNode(DataNode):
    def __init__(self, days: int = 0, first: int = 0, **kwargs):
        super().__init__(CrossConfig(), **kwargs)
        self.days, self.first = days, first

    def dependencies(self) -> dict:
        return {}

    def update(self) -> pl.DataFrame:
        times = [T0 + dt.timedelta(days=self.first + d, microseconds=7) for d in range(self.days) for _ in ASSETS]
        return pl.DataFrame({"time_index": pl.Series(times, dtype=pl.Datetime("us", "UTC")),
                             "unique_identifier": ASSETS * self.days,
                             "close": [float(i) for i in range(self.days * len(ASSETS))]})


def day(n: int) -> dt.datetime:
    return T0 + dt.timedelta(days=n, microseconds=7)


@pytest.fixture
def per_asset_files_refused(monkeypatch):
    """Make a read fail if it opens the per-identity files (so it must have used the copy)."""
    def refuse(*args, **kwargs):
        raise AssertionError("read the per-identity files")

    def arm() -> None:
        monkeypatch.setattr(store_module, "fragments_of", refuse)

    return arm


def test_a_cross_sectional_read_uses_the_copy_and_returns_the_same_rows(any_lake: Lake, per_asset_files_refused):
    node = CrossNode(days=30)
    node.run()
    expected = node.get_df_between_dates(day(10), day(12))
    result = optimize_table(any_lake, node.storage_hash, cross_section=True)
    assert result["cross_section_rows"] == 90
    clear_caches()
    per_asset_files_refused()
    assert node.get_df_between_dates(day(10), day(12)).equals(expected)
    assert node.get_df_between_dates(day(11), day(11))["unique_identifier"].to_list() == sorted(ASSETS)


def test_an_asset_scoped_read_does_not_use_the_copy(local_lake: Lake, monkeypatch):
    node = CrossNode(days=5)
    node.run()
    optimize_table(local_lake, node.storage_hash, cross_section=True)
    monkeypatch.setattr(store_module, "cross_section_of",
                        lambda *a: (_ for _ in ()).throw(AssertionError("used the copy")))
    rows = node.get_df_between_dates(day(1), day(3), unique_identifier_list=["BRK/B"])
    assert rows["unique_identifier"].to_list() == ["BRK/B"] * 3
    assert cross_section.is_cross_sectional((), ((day(1), None),))


def test_a_commit_after_optimize_retires_the_copy(local_lake: Lake):
    node = CrossNode(days=5)
    node.run()
    optimize_table(local_lake, node.storage_hash, cross_section=True)
    CrossNode(days=2, first=5).run()  # an append through lakenodes
    assert node.get_df_between_dates(day(5), day(6)).height == 6
    foreign = pa.table({"time_index": pa.array([day(9)], pa.timestamp("us", "UTC")), "unique_identifier": ["A"],
                        "close": [1.0]})
    write_deltalake(node.table_uri, foreign, mode="append")  # and one by another writer
    clear_caches()
    assert node.get_df_between_dates(day(9), day(9))["close"].to_list() == [1.0]
    node.store.delete_after(day(4))  # a tail delete
    assert node.get_df_between_dates(day(4), day(9)).is_empty()
    assert node.get_df_between_dates(day(0), day(3)).height == 12


def test_a_read_as_of_an_older_version_does_not_use_the_copy(local_lake: Lake):
    node = CrossNode(days=3)
    node.run()
    version = node.store.table().version()
    CrossNode(days=1, first=1).run()  # a restatement of day 1 (close values change)
    optimize_table(local_lake, node.storage_hash, cross_section=True)
    old = node.get_df_between_dates(day(1), day(1), as_of=version)
    new = node.get_df_between_dates(day(1), day(1))
    assert old["close"].to_list() == [3.0, 4.0, 5.0]
    assert new["close"].to_list() == [0.0, 1.0, 2.0]
