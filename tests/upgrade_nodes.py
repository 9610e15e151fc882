"""Tutorial-shaped DataNodes that wrote the fixture lakes under tests/data/ (see its README.md).

Every lakenodes version since the first release runs this module unchanged, so its class paths
(``upgrade_nodes.Numbers`` ...) and configurations hash the same way they did when the fixtures
were written. The clock is ``UPGRADE_TODAY`` (an ISO date), so "a day's run" is reproducible;
values are a function of the date, so a duplicated or lost row shows in the data.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import pandas as pd
from pydantic import Field

from lakenodes import (
    APIDataNode,
    Asset,
    DataFrequency,
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    RecordDefinition,
)

UTC = datetime.timezone.utc
START = datetime.datetime(2026, 1, 1, tzinfo=UTC)
ASSETS = [
    {"unique_identifier": uid, "snapshot": {"ticker": ticker, "name": name}}
    for uid, ticker, name in [
        ("NVDA", "NVDA", "NVIDIA"), ("AAPL", "AAPL", "Apple"), ("BRK/B", "BRK.B", "Berkshire Hathaway B"),
    ]
]


def today() -> pd.Timestamp:
    """The scenario's day (``UPGRADE_TODAY``), midnight UTC."""
    return pd.Timestamp(os.environ.get("UPGRADE_TODAY", "2026-01-05"), tz="UTC")


def value_of(day: pd.Timestamp, salt: float = 0.0) -> float:
    """The value a node writes for ``day``: a pure function of the date."""
    return float(day.toordinal() % 1000) + salt


def days_after(last: datetime.datetime | None) -> pd.DatetimeIndex:
    """The days after ``last`` (or from START) up to today, as a UTC index named time_index."""
    first = START if last is None else pd.Timestamp(last).normalize() + pd.Timedelta(days=1)
    return pd.date_range(first, today(), freq="D", tz="UTC", name="time_index")


def published(identifier: str, description: str) -> Any:
    """The runtime-only ``node_metadata`` field of a daily table published as ``identifier``."""
    return Field(default_factory=lambda: DataNodeMetaData(identifier=identifier, description=description,
                                                          data_frequency_id=DataFrequency.one_d),
                 json_schema_extra={"runtime_only": True})


class NumbersConfig(DataNodeConfiguration):
    salt: float = 0.0
    records: list[RecordDefinition] = Field(
        default_factory=lambda: [RecordDefinition(column_name="value", dtype="float64", label="Value",
                                                  description="Daily number of the upgrade scenario.")]
    )
    node_metadata: DataNodeMetaData = published("upgrade_numbers", "Daily numbers")


class Numbers(DataNode):
    """One number a day (single index)."""

    def dependencies(self) -> dict[str, DataNode | APIDataNode]:
        return {}

    def update(self) -> pd.DataFrame:
        if os.environ.get("UPGRADE_FAIL") == "numbers":
            raise RuntimeError("upgrade scenario: the numbers source is down")
        days = days_after(self.update_statistics.max_time_index_value)
        return pd.DataFrame({"value": [value_of(d, self.config.salt) for d in days]}, index=days)


class SumsConfig(DataNodeConfiguration):
    node_metadata: DataNodeMetaData = published("upgrade_sums", "Numbers plus one")


class Sums(DataNode):
    """Numbers plus one, read from the dependency."""

    def __init__(self, config: SumsConfig, **kwargs: object) -> None:
        self.numbers = Numbers(NumbersConfig())
        super().__init__(config, **kwargs)

    def dependencies(self) -> dict[str, DataNode | APIDataNode]:
        return {"numbers": self.numbers}

    def update(self) -> pd.DataFrame:
        last = self.update_statistics.max_time_index_value
        start = START if last is None else last + datetime.timedelta(days=1)
        df = self.numbers.get_df_between_dates(start_date=start, frame="pandas")
        return pd.DataFrame({"total": df["value"].to_numpy() + 1.0}, index=df.index)


class PricesConfig(DataNodeConfiguration):
    offset_start: datetime.datetime | None = Field(default=START - datetime.timedelta(days=1), json_schema_extra={"update_only": True})
    asset_list: list[Asset] = Field(..., json_schema_extra={"update_only": True})
    node_metadata: DataNodeMetaData = published("upgrade_prices", "Daily close prices")


class Prices(DataNode):
    """Daily close per asset; two updaters (asset batches) write one table."""

    def dependencies(self) -> dict[str, DataNode | APIDataNode]:
        return {}

    def get_asset_list(self) -> list[Asset]:
        return self.config.asset_list

    def update(self) -> pd.DataFrame:
        frames = []
        for asset in self.config.asset_list:
            last = self.update_statistics.get_asset_earliest_multiindex_update(asset=asset)
            days = days_after(last)
            salt = len(asset.unique_identifier)
            frames.append(pd.DataFrame({"close": [value_of(d, salt) for d in days],
                                        "unique_identifier": asset.unique_identifier}, index=days))
        data = pd.concat(frames)
        return data.set_index("unique_identifier", append=True).sort_index()


if os.environ.get("UPGRADE_HASH_NAMES"):  # a lake the first release wrote (tests/data/README.md)
    for _cls in (Numbers, Sums, Prices):
        _cls.HASH_NAME = f"upgrade_nodes.{_cls.__name__}"


def batches() -> list[list[Asset]]:
    """The two updaters' asset batches (registers the assets first; idempotent)."""
    Asset.batch_get_or_register_custom_assets(ASSETS)
    return [Asset.filter(ticker__in=["NVDA", "AAPL"]), Asset.filter(ticker__in=["BRK.B"])]


def run_day(day: str) -> None:
    """One day's job: Sums (and Numbers through it), then both Prices updaters."""
    os.environ["UPGRADE_TODAY"] = day
    Sums(SumsConfig()).run()
    for assets in batches():
        Prices(PricesConfig(asset_list=assets)).run()


if __name__ == "__main__":
    import sys

    run_day(sys.argv[1])
