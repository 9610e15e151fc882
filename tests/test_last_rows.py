"""The latest row of each asset located from the add actions' time statistics
(``lakenodes.lake.last_rows``): the statistics hold milliseconds, so the rows are asked for from
1 ms before each asset's largest one, and the latest kept. Each read is checked against the rows
written (computed apart, in Python) and against the read located from the table's exact progress."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from faultproxy import FaultProxy
from test_frames import FrameConfig, FrameNode

from lakenodes import Lake, use_lake
from lakenodes.lake import last_rows
from lakenodes.nodes import reads

UTC = dt.UTC
DAY1 = dt.datetime(2024, 3, 1, tzinfo=UTC)


def frame(times: dict[str, list[dt.datetime]]) -> pl.DataFrame:
    keys = sorted((t, uid) for uid, moments in times.items() for t in moments)
    return pl.DataFrame({"time_index": [t for t, _ in keys], "unique_identifier": [uid for _, uid in keys],
                         "price": [float(i) for i in range(len(keys))]})


def latest_of(*written: pl.DataFrame) -> dict[str, dt.datetime]:
    latest: dict[str, dt.datetime] = {}
    for row in pl.concat(written).iter_rows(named=True):
        latest[row["unique_identifier"]] = max(row["time_index"], latest.get(row["unique_identifier"], row["time_index"]))
    return latest


def exact_read(monkeypatch: pytest.MonkeyPatch, read) -> pl.DataFrame:
    """``read()`` with the rows located from the table's exact progress, as before the statistics were used."""
    with monkeypatch.context() as patched:
        patched.setattr(reads, "last_row_ranges", lambda *args, **kwargs: None)
        return read()


def test_the_latest_row_inside_the_millisecond_its_statistic_truncates_is_found(local_lake, monkeypatch) -> None:
    """A's latest row sits 999 µs past the millisecond its file's statistic holds; C has two rows
    in its last millisecond (the later is its latest); B's latest is in the first run's file."""
    us = dt.timedelta(microseconds=1)
    first = frame({"A": [DAY1 + 999 * us], "B": [DAY1 + us], "C": [DAY1 + 500 * us, DAY1 + 900 * us]})
    second = frame({"A": [DAY1 + dt.timedelta(days=1) + us, DAY1 + dt.timedelta(days=1) + 999 * us],
                    "C": [DAY1 + dt.timedelta(days=1, microseconds=998)]})
    node = FrameNode(FrameConfig(name="edges"))
    node.run_with(first)
    node.run_with(second)
    last = node.get_last_observation()
    assert dict(zip(last["unique_identifier"], last["time_index"], strict=True)) == latest_of(first, second)
    assert last.height == 3 and last.equals(exact_read(monkeypatch, node.get_last_observation))


def test_before_1970_where_statistics_round_towards_zero_the_latest_row_is_found(local_lake, monkeypatch) -> None:
    """Before the epoch, truncating to milliseconds rounds a time up, past the row: the statistic
    of a row 1.5 ms before 1970 can read -1 ms."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    written = frame({"A": [epoch - dt.timedelta(days=1), epoch - dt.timedelta(microseconds=1500)],
                     "B": [epoch - dt.timedelta(microseconds=200)],
                     "C": [epoch - dt.timedelta(days=3, microseconds=999), epoch - dt.timedelta(days=3, microseconds=1)]})
    node = FrameNode(FrameConfig(name="before-1970"))
    node.run_with(written)
    last = node.get_last_observation()
    assert dict(zip(last["unique_identifier"], last["time_index"], strict=True)) == latest_of(written)
    assert last.equals(exact_read(monkeypatch, node.get_last_observation))


def test_a_file_whose_statistics_round_up_still_gives_its_latest_row(local_lake, monkeypatch) -> None:
    """Another engine's writer whose statistics round a time up to the next millisecond: A's file
    claims 00:00:00.001 for a row at 00:00:00.000400 (1 ms of slack below the statistic finds it)."""
    import json
    import os
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    node = FrameNode(FrameConfig(name="round-up"))
    node.run_with(frame({"A": [DAY1], "B": [DAY1]}))
    moment = DAY1 + dt.timedelta(days=1, microseconds=400)
    table = node.store.table()
    relative = "unique_identifier=A/part-00000-round-up-c000.snappy.parquet"
    data = pa.table({"time_index": pa.array([moment], pa.timestamp("us", "UTC")), "price": [7.0]})
    pq.write_table(data, f"{node.table_uri}/{relative}")
    claimed = {"time_index": "2024-03-02T00:00:00.001Z", "price": 7.0}
    stats = {"numRecords": 1, "minValues": claimed, "maxValues": claimed, "nullCount": {"time_index": 0, "price": 0}}
    size = os.path.getsize(f"{node.table_uri}/{relative}")
    table.create_write_transaction([AddAction(relative, size, {"unique_identifier": "A"}, int(time.time() * 1000), True,
                                              json.dumps(stats))], mode="append", schema=table.schema(),
                                   partition_by=["unique_identifier"])
    fresh = FrameNode(FrameConfig(name="round-up"))
    last = fresh.get_last_observation()
    assert dict(zip(last["unique_identifier"], last["time_index"], strict=True)) == {"A": moment, "B": DAY1}
    assert last["price"].to_list() == [1.0, 7.0] and last.equals(exact_read(monkeypatch, fresh.get_last_observation))


def test_assets_columns_and_past_versions_read_as_from_the_exact_progress(any_lake, monkeypatch) -> None:
    node = FrameNode(FrameConfig(name="options"))
    first = frame({uid: [DAY1, DAY1 + dt.timedelta(hours=1, microseconds=999)] for uid in ("A", "B", "C")})
    node.run_with(first)
    node.run_with(frame({"A": [DAY1 + dt.timedelta(days=2)], "D": [DAY1 + dt.timedelta(days=1)]}))
    calls = [
        lambda: node.get_last_observation(asset_list=["A", "C", "NOT_STORED"]),
        lambda: node.get_last_observation(columns=["price"]),
        lambda: node.get_last_observation(as_of=0),
        lambda: node.get_last_observation(asset_list=[], frame="arrow"),
    ]
    for call in calls:
        assert call().equals(exact_read(monkeypatch, call))
    assert sorted(calls[0]()["unique_identifier"]) == ["A", "C"]
    assert calls[2]()["time_index"].to_list() == [DAY1 + dt.timedelta(hours=1, microseconds=999)] * 3
    assert calls[3]().num_rows == 0


def test_one_series_without_identities_reads_its_latest_row(local_lake, monkeypatch) -> None:
    node = FrameNode(FrameConfig(name="one-series"))
    times = [DAY1, DAY1 + dt.timedelta(microseconds=400), DAY1 + dt.timedelta(microseconds=700)]
    node.run_with(pl.DataFrame({"time_index": times, "price": [1.0, 2.0, 3.0]}))
    assert last_rows.last_row_ranges(node.store.table()) is not None  # the statistics located it
    last = node.get_last_observation()
    assert last["time_index"].to_list() == [times[-1]] and last["price"].to_list() == [3.0]
    assert last.equals(exact_read(monkeypatch, node.get_last_observation))
    named = node.get_last_observation(asset_list=["A"])  # a series of no asset: none of its rows
    assert named.height == 0 and named.equals(exact_read(monkeypatch, lambda: node.get_last_observation(asset_list=["A"])))


def test_identities_of_two_columns_are_located_from_the_exact_progress(local_lake) -> None:
    from test_frames import VenueNode

    node = VenueNode(FrameConfig(name="venues"))
    node.run_with(pl.DataFrame({"time_index": [DAY1, DAY1], "unique_identifier": ["A", "A"], "venue": ["X", "Y"],
                                "price": [1.0, 2.0]}))
    assert last_rows.last_row_ranges(node.store.table()) is None
    assert node.get_last_observation().height == 2


@pytest.mark.s3
def test_a_new_process_reads_the_latest_rows_without_the_facts_file(s3_server) -> None:
    """A new process (caches keyed by another endpoint: nothing of the table known) asks the log,
    then for the one file holding each asset's latest row, in one request each: nothing of the
    table's exact progress (``_lakenodes/``: the facts file), no footer first."""
    lake = s3_server.new_lake()
    assets = [f"A{i:02d}" for i in range(40)]
    with use_lake(lake):
        node = FrameNode(FrameConfig(name="latest"))
        node.run_with(frame({uid: [DAY1, DAY1 + dt.timedelta(days=1)] for uid in assets}))
        node.run_with(frame({uid: [DAY1 + dt.timedelta(days=2, microseconds=999)] for uid in assets}))
    with FaultProxy(s3_server.endpoint_url) as proxy:
        through = Lake(lake.uri, storage_options={**lake.storage_options, "AWS_ENDPOINT_URL": proxy.endpoint_url})
        last = FrameNode(FrameConfig(name="latest"), lake=through).get_last_observation()
        asked = list(proxy.requests)
    assert set(last["time_index"]) == {DAY1 + dt.timedelta(days=2, microseconds=999)} and last.height == len(assets)
    assert not [path for _, path in asked if "/_lakenodes/" in path], asked
    data = [path for method, path in asked if method == "GET" and path.split("?")[0].endswith(".parquet")
            and "/_delta_log/" not in path]
    assert len(data) == len(assets), data
