"""A daily two-asset node whose runs write up to a given day (tests/test_restore.py; importable by spawned workers)."""

from __future__ import annotations

import datetime as dt

import polars as pl
from pydantic import Field

from lakenodes import DataNode, DataNodeConfiguration

DAY0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
ASSETS = ("A", "B")


def day(n: int) -> dt.datetime:
    """Day ``n`` (day 1 is DAY0)."""
    return DAY0 + dt.timedelta(days=n - 1)


class DailyConfig(DataNodeConfiguration):
    until: int = Field(1, json_schema_extra={"update_only": True})


class Daily(DataNode):
    """One row per asset and day after each asset's watermark, up to day ``config.until``."""

    OFFSET_START = DAY0

    def dependencies(self):
        return {}

    def get_asset_list(self):
        return list(ASSETS)

    def update(self) -> pl.DataFrame:
        stats, rows = self.update_statistics, []
        for uid in ASSETS:
            last = stats.get_last_update_index_2d(uid)
            first = DAY0 if stats.max_time_index_value is None or last < DAY0 or uid not in stats.asset_list else \
                last + dt.timedelta(days=1)
            when = first
            while when <= day(self.config.until):
                rows.append((when, uid, float(when.day)))
                when += dt.timedelta(days=1)
        return pl.DataFrame(rows, schema={"time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String,
                                          "close": pl.Float64}, orient="row")
