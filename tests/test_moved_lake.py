"""A lake used at another location than where it was written: a local folder moved (``mv``) or
uploaded to an S3 prefix as it is (``aws s3 sync``). Reads, the catalog and the next run work there
as they did at the old one; nothing in the lake keeps pointing at the old location."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable
from lake_copies import upload
from pydantic import Field

from lakenodes import (
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    Lake,
    TimeIndexMetaTable,
    clear_caches,
)

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
ASSETS = ("AAPL", "MSFT")


class DailyConfig(DataNodeConfiguration):
    name: str
    days: int = Field(2, json_schema_extra={"runtime_only": True})


class DailyPrices(DataNode):
    """``days`` daily rows of each asset after the table's watermark."""

    IDENTITY_DIMENSIONS = ("unique_identifier",)

    def dependencies(self) -> dict[str, DataNode]:
        return {}

    def update(self) -> pl.DataFrame:
        last = self.update_statistics.max_time_index_value
        first = 0 if last is None else (last - START).days + 1
        days = [first + day for day in range(self.config.days) for _ in ASSETS]
        return pl.DataFrame({"time_index": [START + dt.timedelta(days=day) for day in days],
                             "unique_identifier": list(ASSETS) * self.config.days,
                             "value": [float(day) for day in days]})


def prices(lake: Lake) -> DailyPrices:
    metadata = DataNodeMetaData(identifier="daily_prices", description="daily prices of two assets")
    return DailyPrices(DailyConfig(name="p", node_metadata=metadata), lake=lake)


@pytest.fixture(params=["moved", pytest.param("uploaded", marks=pytest.mark.s3)])
def relocated(request, tmp_path: Path) -> tuple[Lake, Lake]:
    """(the lake where it was written, the same lake at its new location), two runs written."""
    original = Lake(tmp_path / "original")
    prices(original).run()
    prices(original).run()
    if request.param == "moved":
        shutil.move(tmp_path / "original", tmp_path / "moved")
        moved = Lake(tmp_path / "moved")
    else:
        moved = request.getfixturevalue("s3_server").new_lake()
        upload(tmp_path / "original", moved)
    clear_caches()  # a new process at the new location
    return original, moved


def _catalog_rows(lake: Lake) -> pl.DataFrame:
    """``_catalog/tables`` as another engine reads it (DuckDB, Spark): its latest row per table."""
    table = DeltaTable(lake.catalog_uri("tables"), storage_options=lake.storage_options or None)
    rows = pl.from_arrow(table.to_pyarrow_table())
    return rows.sort("recorded_at").group_by("storage_hash", maintain_order=True).last()


def test_the_next_run_at_the_new_location_appends_to_the_same_table(relocated: tuple[Lake, Lake]) -> None:
    """Regression: the catalog kept the table's old URI (``/old/lake/tables/<hash>``) after runs at the
    new location, so an engine reading ``_catalog/tables`` (docs/interop.md) found no table there."""
    original, moved = relocated
    node = prices(moved)
    assert node.storage_hash == prices(original).storage_hash
    assert node.get_df_between_dates().height == 8 and node.store.table().version() == 1

    node.run()

    rows = node.get_df_between_dates()
    assert rows.height == 12 and not rows.select("time_index", "unique_identifier").is_duplicated().any()
    assert node.store.table().version() == 2  # the same table: appended to, not created again
    assert TimeIndexMetaTable.get(identifier="daily_prices", lake=moved).table_uri == moved.table_uri(node.storage_hash)
    [uri] = _catalog_rows(moved)["table_uri"].to_list()
    assert uri == moved.table_uri(node.storage_hash)
    assert DeltaTable(uri, storage_options=moved.storage_options or None).version() == 2
