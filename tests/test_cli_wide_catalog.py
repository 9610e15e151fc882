"""On a lake of many tables, ``data-node detail`` builds only the record it shows and ``updates
list`` builds none (it needs each table's identifier, read from the catalog's columns), while
both show what they showed before: the same table, each updater's identifier, the same hints."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest
from typer.testing import CliRunner

from lakenodes import (
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    Lake,
    clear_caches,
    run_many,
    use_lake,
)
from lakenodes.catalog.records import TableRecord
from lakenodes.cli import app

UTC = dt.timezone.utc
TABLES = 8


class FeedConfig(DataNodeConfiguration):
    feed: str


class Feed(DataNode):
    """One row a feed."""

    def dependencies(self):
        return {}

    def update(self) -> pl.DataFrame:
        if self.update_statistics.max_time_index_value is not None:
            return pl.DataFrame()
        return pl.DataFrame({"time_index": [dt.datetime(2024, 1, 2, tzinfo=UTC)], "value": [1.0]})


def feed(index: int, namespace: str | None = None) -> Feed:
    config = FeedConfig(feed=f"f{index}", node_metadata=DataNodeMetaData(identifier=f"feed_{index}"))
    return Feed(config, hash_namespace=namespace)


@pytest.fixture
def wide_lake(local_lake: Lake) -> Lake:
    with use_lake(local_lake):
        run_many([feed(index) for index in range(TABLES)] + [feed(0, namespace="ci")])
    clear_caches()
    return local_lake


@pytest.fixture
def records_built(monkeypatch) -> list[str]:
    """The storage hash of every catalog record built from a stored row."""
    built: list[str] = []
    from_row = TableRecord.from_row.__func__

    def counted(cls, row):
        built.append(row["storage_hash"])
        return from_row(cls, row)

    monkeypatch.setattr(TableRecord, "from_row", classmethod(counted))
    return built


def cli_json(lake: Lake, *args: str):
    result = CliRunner().invoke(app, ["--lake", lake.uri, *args, "--json"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def test_detail_builds_only_the_record_it_shows(wide_lake: Lake, records_built: list[str]) -> None:
    with use_lake(wide_lake):
        production, namespaced = feed(3).storage_hash, feed(0, namespace="ci").storage_hash

    by_identifier = cli_json(wide_lake, "data-node", "detail", "feed_3")
    assert by_identifier["table"]["storage_hash"] == production
    assert records_built == [production]

    records_built.clear()
    by_hash = cli_json(wide_lake, "data-node", "detail", production)
    by_uid = cli_json(wide_lake, "data-node", "detail", by_hash["table"]["uid"])
    assert by_hash["table"]["storage_hash"] == by_uid["table"]["storage_hash"] == production
    assert records_built == [production, production]

    records_built.clear()
    in_namespace = cli_json(wide_lake, "data-node", "detail", "feed_0", "--namespace", "ci")
    assert in_namespace["table"]["storage_hash"] == namespaced
    assert records_built == [namespaced]


def test_a_table_not_found_still_names_the_close_match(wide_lake: Lake) -> None:
    result = CliRunner().invoke(app, ["--lake", wide_lake.uri, "data-node", "detail", "feed_33"])
    assert result.exit_code != 0
    assert "no table with uid, identifier or storage hash 'feed_33'" in result.stderr
    assert "did you mean 'feed_3'?" in result.stderr


def test_updates_list_builds_no_record(wide_lake: Lake, records_built: list[str]) -> None:
    listed = cli_json(wide_lake, "updates", "list")

    assert records_built == []
    assert listed["count"] == TABLES + 1
    with use_lake(wide_lake):
        expected = {feed(i).storage_hash: f"feed_{i}" for i in range(TABLES)}
        expected[feed(0, namespace="ci").storage_hash] = "feed_0"
    assert {p["storage_hash"]: p["identifier"] for p in listed["results"]} == expected
