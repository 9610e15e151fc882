"""The search index follows the catalog: registration, metadata changes, rebuilds, broken indexes."""

from __future__ import annotations

import datetime as dt
import pathlib
import shutil

import polars as pl
import pytest

from lakenodes import (
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    LakenodesUserError,
    RecordDefinition,
    TimeIndexMetaTable,
    hash_namespace,
)
from lakenodes.search import search_index

UTC = dt.timezone.utc


class TableConfig(DataNodeConfiguration):
    name: str
    records: list[RecordDefinition]
    node_metadata: DataNodeMetaData


class Described(DataNode):
    """A table whose rows are described only by its configuration."""

    def dependencies(self):
        return {}

    def update(self) -> pl.DataFrame:
        if self.update_statistics.max_time_index_value is not None:
            return pl.DataFrame()
        row = {"time_index": [dt.datetime(2024, 1, 2, tzinfo=UTC)]}
        row.update({record.column_name: [1.0] for record in self.config.records})
        return pl.DataFrame(row)


def described(name: str, description: str, columns: dict[str, str], labels=(), frequency="1d") -> Described:
    return Described(TableConfig(
        name=name,
        records=[RecordDefinition(column_name=c, dtype="float64", description=d) for c, d in columns.items()],
        node_metadata=DataNodeMetaData(identifier=name, description=description, labels=list(labels),
                                       data_frequency_id=frequency),
    ))


@pytest.fixture
def catalog_with_tables(any_lake):
    described("equity_close_daily", "Daily closing prices of listed equities",
              {"close": "official close price", "volume": "shares traded"}, labels=["prices"]).run()
    described("fx_spot_rates", "Foreign exchange spot rates against the US dollar",
              {"rate": "mid spot rate"}, labels=["fx"]).run()
    described("crypto_funding_rates", "Perpetual futures funding rates on crypto exchanges",
              {"funding_rate": "8-hour funding rate", "open_interest": "open interest in USD"},
              labels=["crypto"], frequency="1h").run()
    return any_lake


def identifiers(page: dict) -> list[str]:
    return [result["identifier"] for result in page["results"]]


def test_registered_tables_are_searchable(catalog_with_tables):
    page = TimeIndexMetaTable.description_search("daily close price of stocks")
    assert identifiers(page)[0] == "equity_close_daily"
    assert set(page) == {"count", "next", "previous", "results"}
    first = page["results"][0]
    assert first["orm_class"] == "TimeIndexMetaTable" and first["table_uri"].endswith(first["storage_hash"])
    assert {column["column_name"] for column in first["columns"]} >= {"close", "volume"}
    assert "rows" not in first  # metadata, never rows
    assert identifiers(TimeIndexMetaTable.column_search("funding_rate"))[0] == "crypto_funding_rates"


def test_filters_and_pagination(catalog_with_tables):
    assert identifiers(TimeIndexMetaTable.description_search("rates", labels__contains="fx")) == ["fx_spot_rates"]
    assert identifiers(TimeIndexMetaTable.description_search("rates", data_frequency_id="1h")) == ["crypto_funding_rates"]
    assert identifiers(TimeIndexMetaTable.description_search("rates", identifier__contains="crypto")) == [
        "crypto_funding_rates"]
    assert TimeIndexMetaTable.description_search("rates", namespace="nobody")["count"] == 0
    first = TimeIndexMetaTable.description_search("rates", limit=1)
    second = TimeIndexMetaTable.description_search("rates", limit=1, offset=first["next"])
    assert first["previous"] is None and second["previous"] == 0
    assert identifiers(first) != identifiers(second)
    with pytest.raises(LakenodesUserError, match="unknown search filter"):
        TimeIndexMetaTable.description_search("rates", colour="red")
    with pytest.raises(LakenodesUserError, match="empty"):
        TimeIndexMetaTable.description_search("   ")


def test_metadata_changes_follow_into_the_index(catalog_with_tables):
    assert TimeIndexMetaTable.description_search("rates", labels__contains="macro")["count"] == 0
    TimeIndexMetaTable.get(identifier="fx_spot_rates").add_label("macro")
    assert identifiers(TimeIndexMetaTable.description_search("rates", labels__contains="macro")) == ["fx_spot_rates"]


def test_index_rebuilt_after_deletion(catalog_with_tables):
    index_dir = catalog_with_tables.catalog_uri("search")
    assert TimeIndexMetaTable.description_search("close")["count"] == 3  # builds the index
    if catalog_with_tables.is_local:
        shutil.rmtree(index_dir)
    else:
        search_index(catalog_with_tables).rebuild([])  # an emptied index on S3
    assert search_index(catalog_with_tables).count() == 0
    # a search on an empty index over a non-empty catalog rebuilds it from the catalog
    assert identifiers(TimeIndexMetaTable.description_search("funding rates crypto"))[0] == "crypto_funding_rates"
    assert search_index(catalog_with_tables).count() == 3
    assert TimeIndexMetaTable.rebuild_search_index() == 3


def test_broken_index_never_breaks_a_run_and_search_repairs_it(local_lake):
    index_dir = pathlib.Path(local_lake.catalog_uri("search"))
    index_dir.mkdir(parents=True)
    (index_dir / "tables.lance").mkdir()
    (index_dir / "tables.lance" / "garbage").write_text("not a lance dataset")
    node = described("equity_close_daily", "Daily closing prices", {"close": "close"})
    err, written = node.run()
    assert err is False and written.height == 1
    assert TimeIndexMetaTable.get(identifier="equity_close_daily").storage_hash == node.storage_hash
    assert identifiers(TimeIndexMetaTable.description_search("closing prices")) == ["equity_close_daily"]


def test_runs_never_touch_the_index_but_search_sees_new_tables(local_lake):
    described("equity_close_daily", "Daily closing prices", {"close": "close"}).run()
    assert not pathlib.Path(local_lake.catalog_uri("search")).exists()  # the write path stays LanceDB-free
    assert identifiers(TimeIndexMetaTable.description_search("closing prices")) == ["equity_close_daily"]
    described("fx_spot_rates", "Foreign exchange spot rates", {"rate": "mid rate"}).run()
    assert identifiers(TimeIndexMetaTable.description_search("foreign exchange"))[0] == "fx_spot_rates"


def test_namespaced_tables_filtered_by_namespace(local_lake):
    described("equity_close_daily", "Daily closing prices", {"close": "close"}).run()
    with hash_namespace("pytest_search"):
        described("equity_close_daily", "Daily closing prices", {"close": "close"}).run()
    page = TimeIndexMetaTable.description_search("closing prices", namespace="pytest_search")
    assert [result["namespace"] for result in page["results"]] == ["pytest_search"]
