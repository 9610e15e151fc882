"""Storage on a real Delta lake (local folder and moto S3): layout, protocol, append vs upsert."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import ClassVar

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from pydantic import Field

from lakenodes import DataNode, DataNodeConfiguration, Lake

UTC = dt.UTC
TS_US_UTC = pa.timestamp("us", tz="UTC")
ODD_UIDS = ["BRK/B", "A B", "é=1%", "x'y", "a=b/c", "50%", "a%2Fb", "日本"]
DIMS = {1: (), 2: ("unique_identifier",), 3: ("portfolio_uid", "entity_uid")}


def lake_and_levels(s3_fast: int):
    """Every index depth on a local lake; on S3 one depth by default and the others marked slow."""
    params = [pytest.param("local", n, id=f"local-{n}") for n in (1, 2, 3)]
    params += [
        pytest.param("s3", n, id=f"s3-{n}", marks=[pytest.mark.s3] + ([] if n == s3_fast else [pytest.mark.slow]))
        for n in (1, 2, 3)
    ]
    return pytest.mark.parametrize(("any_lake", "levels"), params, indirect=["any_lake"])


class QueueConfig(DataNodeConfiguration):
    name: str = "prices"
    window: int = Field(1, json_schema_extra={"update_only": True})


class QueueNode(DataNode):
    """Returns one queued frame per run (an empty frame once the queue is exhausted)."""

    def __init__(self, config: QueueConfig, frames=(), **kwargs):
        super().__init__(config, **kwargs)
        self.frames = list(frames)

    def dependencies(self):
        return {}

    def update(self):
        return self.frames.pop(0) if self.frames else pl.DataFrame()


class PortfolioNode(QueueNode):
    IDENTITY_DIMENSIONS: ClassVar[tuple[str, ...]] = ("portfolio_uid", "entity_uid")


def ts(day: int, hour: int = 0, us: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, day, hour, 0, 0, us, tzinfo=UTC)


def frame(levels: int, rows) -> pl.DataFrame:
    """rows: (time, identity tuple, value); the identity has ``levels - 1`` parts."""
    data = {"time_index": pl.Series([r[0] for r in rows], dtype=pl.Datetime("us", "UTC"))}
    for i, dim in enumerate(DIMS[levels]):
        data[dim] = [r[1][i] for r in rows]
    data["value"] = [float(r[2]) for r in rows]
    return pl.DataFrame(data)


def node_for(levels: int, *frames, name: str = "prices", window: int = 1) -> QueueNode:
    cls = PortfolioNode if levels == 3 else QueueNode
    return cls(QueueConfig(name=f"{name}{levels}", window=window), frames)


def delta(lake: Lake, node: DataNode) -> DeltaTable:
    return DeltaTable(node.table_uri, storage_options=lake.storage_options or None)


def stored(lake: Lake, node: DataNode) -> pl.DataFrame:
    """The table as any Delta reader sees it (through the log, not through lakenodes)."""
    data = pl.from_arrow(pa.table(delta(lake, node).to_pyarrow_table()))
    return data.sort(["time_index", *index_dims(node)])


def index_dims(node: DataNode) -> list[str]:
    return list(node.store.index_names()[1:])


def _s3_client(lake: Lake):
    import boto3

    options = lake.storage_options
    return boto3.client(
        "s3", endpoint_url=options["AWS_ENDPOINT_URL"], aws_access_key_id=options["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=options["AWS_SECRET_ACCESS_KEY"], region_name=options["AWS_REGION"],
    )


def table_dirs(lake: Lake) -> set[str]:
    """Names of the folders directly under ``<root>/tables/``."""
    if lake.is_local:
        return {p.name for p in (Path(lake.uri) / "tables").iterdir()}
    bucket, _, prefix = lake.uri[len("s3://"):].partition("/")
    listing = _s3_client(lake).list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/tables/", Delimiter="/")
    return {entry["Prefix"].rstrip("/").rsplit("/", 1)[-1] for entry in listing.get("CommonPrefixes", [])}


def last_operation(lake: Lake, node: DataNode) -> dict:
    """commitInfo of the table's latest commit, read from the Delta log file itself.

    (``DeltaTable.history()`` holds the GIL while it waits on the network, so it deadlocks
    against the in-process moto server.)
    """
    name = f"_delta_log/{delta(lake, node).version():020d}.json"
    if lake.is_local:
        text = (Path(node.table_uri) / name).read_text()
    else:
        bucket, _, key = f"{node.table_uri}/{name}"[len("s3://"):].partition("/")
        text = _s3_client(lake).get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    actions = [json.loads(line) for line in text.splitlines() if line.strip()]
    return next(action["commitInfo"] for action in actions if "commitInfo" in action)


# -- layout and protocol -----------------------------------------------------------------------
def test_one_delta_table_per_storage_hash(any_lake: Lake) -> None:
    rows_a = [(ts(1), ("AAPL",), 1)]
    first = node_for(2, frame(2, rows_a), window=1)
    second = node_for(2, frame(2, [(ts(1), ("MSFT",), 2)]), window=5)  # update_only differs
    other = node_for(2, frame(2, rows_a), name="other")
    assert first.storage_hash == second.storage_hash != other.storage_hash
    assert first.update_hash != second.update_hash
    for node in (first, second, other):
        node.run()

    assert first.table_uri == f"{any_lake.uri}/tables/{first.storage_hash}"
    assert table_dirs(any_lake) == {first.storage_hash, other.storage_hash}
    assert stored(any_lake, first)["unique_identifier"].to_list() == ["AAPL", "MSFT"]
    assert stored(any_lake, other).height == 1


@pytest.mark.s3
def test_runs_leave_no_folder_marker_objects_on_s3(s3_lake: Lake, monkeypatch) -> None:
    """An object store has no folders: a run, its catalog records and marks, and a search refresh
    write only real files (a "folder/" marker object is noise in every listing, and some readers
    take it for a file)."""
    from lakenodes.lake.pending import fold_pending

    monkeypatch.setenv("LAKENODES_CATALOG_FOLD_EVERY", "0")  # no fold by chance: this test folds itself
    from lakenodes.search.embedders import HashingEmbedder
    from lakenodes.search.sync import catch_up

    for node in (node_for(2, frame(2, [(ts(1), ("AAPL",), 1)])), node_for(2, frame(2, [(ts(1), ("AAPL",), 1)]))):
        node.run()
    catch_up(s3_lake, embedding_model=HashingEmbedder())
    # regression: folding the pending run records deleted the folder's last files with pyarrow,
    # which PUTs a "pending/" marker in their place (the CI failure that found it was a fold by chance)
    assert fold_pending(s3_lake, "runs") == 2
    bucket, _, prefix = s3_lake.uri[len("s3://"):].partition("/")
    pages = _s3_client(s3_lake).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="")
    keys = [entry["Key"] for page in pages for entry in page.get("Contents", [])]
    assert any(key.startswith(f"{prefix}/_catalog/") and "/marks/" in key for key in keys), keys
    assert [key for key in keys if key.endswith("/")] == []


@lake_and_levels(s3_fast=2)
def test_plain_delta_protocol_schema_and_partitioning(any_lake: Lake, levels: int) -> None:
    identities = {1: [()], 2: [("AAPL",), ("BRK/B",)], 3: [("p1", "e1"), ("p1", "e2"), ("p2", "e1")]}[levels]
    node = node_for(levels, frame(levels, [(ts(d), ident, d) for d in (1, 2) for ident in identities]))
    node.run()

    table = delta(any_lake, node)
    protocol = table.protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)
    assert not protocol.reader_features and not protocol.writer_features
    schema = pa.schema(table.schema().to_arrow())
    assert schema.names == ["time_index", *DIMS[levels], "value"]
    assert schema.field("time_index").type == TS_US_UTC
    assert all(schema.field(dim).type == pa.string() for dim in DIMS[levels])
    delta_types = {f["name"]: f["type"] for f in json.loads(table.schema().to_json())["fields"]}
    assert delta_types["time_index"] == "timestamp"  # never timestamp_ntz
    assert table.metadata().partition_columns == list(DIMS[levels][:1])
    assert "delta.enableDeletionVectors" not in table.metadata().configuration
    assert stored(any_lake, node).height == 2 * len(identities)


def test_pandas_nanosecond_index_is_stored_as_microseconds_utc(any_lake: Lake) -> None:
    index = pd.MultiIndex.from_arrays(
        [pd.DatetimeIndex([ts(1, us=7), ts(2)]).as_unit("ns"), ["AAPL", "AAPL"]],
        names=["time_index", "unique_identifier"],
    )
    node = node_for(2, pd.DataFrame({"value": [1.0, 2.0]}, index=index))
    node.run()
    data = pa.table(delta(any_lake, node).to_pyarrow_table())
    assert data.schema.field("time_index").type == TS_US_UTC
    assert sorted(data.column("time_index").to_pylist()) == [ts(1, us=7), ts(2)]


# -- append vs upsert --------------------------------------------------------------------------
@lake_and_levels(s3_fast=1)
def test_new_rows_are_a_blind_append(any_lake: Lake, levels: int) -> None:
    ident = {1: (), 2: ("AAPL",), 3: ("p1", "e1")}[levels]
    node = node_for(levels, frame(levels, [(ts(1), ident, 1)]), frame(levels, [(ts(2), ident, 2), (ts(3), ident, 3)]))
    node.run()
    before = delta(any_lake, node).version()
    node.run()

    table = delta(any_lake, node)
    assert table.version() == before + 1
    operation = last_operation(any_lake, node)
    assert operation["operation"] == "WRITE"
    assert operation["operationParameters"]["mode"] == "Append"
    assert stored(any_lake, node)["value"].to_list() == [1.0, 2.0, 3.0]


@lake_and_levels(s3_fast=3)
def test_restatements_replace_and_never_duplicate(any_lake: Lake, levels: int) -> None:
    idents = {1: [()], 2: [("AAPL",), ("MSFT",)], 3: [("p1", "e1"), ("p1", "e2")]}[levels]
    history = [(ts(d), ident, 10 * d) for d in (1, 2, 3) for ident in idents]
    restated = [(ts(2), idents[0], -2), (ts(3), idents[-1], -3)]  # at and before the watermark
    node = node_for(levels, frame(levels, history), frame(levels, restated))
    node.run()
    before = delta(any_lake, node).version()
    _, written = node.run()

    assert delta(any_lake, node).version() == before + 1
    assert last_operation(any_lake, node)["lakenodes.operation"] == "MERGE"
    assert written.height == 2
    data = stored(any_lake, node)
    assert data.height == len(history)
    index = ["time_index", *DIMS[levels]]
    assert data.select(index).is_duplicated().sum() == 0
    expected = {(r[0], *r[1]): float(r[2]) for r in history + restated}
    assert {tuple(row[:-1]): row[-1] for row in data.iter_rows()} == expected


@lake_and_levels(s3_fast=2)
def test_mixed_new_and_restated_rows_are_one_commit(any_lake: Lake, levels: int) -> None:
    ident = {1: (), 2: ("AAPL",), 3: ("p1", "e1")}[levels]
    other = {1: (), 2: ("MSFT",), 3: ("p2", "e9")}[levels]
    first = [(ts(1), ident, 1), (ts(2), ident, 2)]
    mixed = [(ts(2), ident, 20), (ts(3), ident, 3)] + ([(ts(1), other, 7)] if levels > 1 else [])
    node = node_for(levels, frame(levels, first), frame(levels, mixed))
    node.run()
    before = delta(any_lake, node).version()
    _, written = node.run()

    assert delta(any_lake, node).version() == before + 1
    assert last_operation(any_lake, node)["lakenodes.operation"] == "MERGE"
    assert written.height == len(mixed)
    data = stored(any_lake, node)
    expected = {(r[0], *r[1]): float(r[2]) for r in [first[0], *mixed]}
    assert {tuple(row[:-1]): row[-1] for row in data.iter_rows()} == expected


def test_watermark_is_per_identity_so_a_late_new_asset_is_appended(any_lake: Lake) -> None:
    """Two updaters of one table: the second asset's rows are older than the first's watermark,
    yet they are new for their own identity, so they are a blind append."""
    ahead = node_for(2, frame(2, [(ts(9), ("AAPL",), 1)]), window=1)
    behind = node_for(2, frame(2, [(ts(1), ("MSFT",), 1), (ts(2), ("MSFT",), 2)]), window=2)
    ahead.run()
    behind.run()
    assert last_operation(any_lake, behind)["operation"] == "WRITE"
    assert stored(any_lake, ahead).height == 3


def test_second_run_without_new_data_commits_nothing(any_lake: Lake) -> None:
    node = node_for(2, frame(2, [(ts(1), ("AAPL",), 1)]))
    node.run()
    version = delta(any_lake, node).version()

    error, written = node.run()

    assert error is False
    assert isinstance(written, pl.DataFrame) and written.height == 0
    assert delta(any_lake, node).version() == version
    assert stored(any_lake, node).height == 1


def test_odd_unique_identifiers_round_trip_write_statistics_upsert_read(any_lake: Lake) -> None:
    node = node_for(
        2,
        frame(2, [(ts(1), (uid,), 1) for uid in ODD_UIDS]),
        frame(2, [(ts(1), (uid,), 10) for uid in ODD_UIDS] + [(ts(2, us=999999), (uid,), 2) for uid in ODD_UIDS]),
    )
    node.run()
    assert node.update_statistics.index_progress == {uid: ts(1) for uid in ODD_UIDS}

    node.run()  # restates day 1 of every asset and appends day 2
    assert last_operation(any_lake, node)["lakenodes.operation"] == "MERGE"
    assert node.update_statistics.index_progress == {uid: ts(2, us=999999) for uid in ODD_UIDS}

    data = stored(any_lake, node)
    assert data.height == 2 * len(ODD_UIDS)
    assert sorted(set(data["unique_identifier"])) == sorted(ODD_UIDS)
    assert set(data.filter(pl.col("time_index") == ts(1))["value"]) == {10.0}
    partitions = pa.table(delta(any_lake, node).get_add_actions(flatten=True)).column("partition.unique_identifier")
    assert set(partitions.to_pylist()) == set(ODD_UIDS)
    for uid in ODD_UIDS:
        rows = node.get_df_between_dates(unique_identifier_list=[uid])
        assert rows["unique_identifier"].to_list() == [uid, uid]
        assert rows["value"].to_list() == [10.0, 2.0]
