"""The cheap steps of a read: choosing the files that can hold the rows (looked up by partition
value, then checked against the time windows on their statistics) and refreshing a local table
(two file stats when nothing was committed since, no log listing)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from test_run import Step
from typer.testing import CliRunner

from lakenodes import Lake, clear_caches
from lakenodes.cli import app
from lakenodes.errors import StoragePermissionError
from lakenodes.lake import _tables
from lakenodes.lake._scan import SLACK, Pruning, Snapshot
from lakenodes.lake.location import lake_filesystem
from lakenodes.lake.progress import read_progress
from lakenodes.lake.store import TableStore

UTC = dt.UTC
BASE = dt.datetime(2024, 1, 1, tzinfo=UTC)


def synthetic_snapshot(seed: int) -> Snapshot:
    """60 files over 6 partitions (one null), bounds scattered over 60 days, some without statistics."""
    rng = random.Random(seed)
    rows = []
    for index in range(60):
        low = BASE + dt.timedelta(hours=rng.randrange(0, 60 * 24))
        high = low + dt.timedelta(hours=rng.randrange(0, 72))
        rows.append({"path": f"f{index}.parquet", "size": 1,
                     "partition": rng.choice(["A", "B", "C", "D", "E", None]),
                     "min": None if rng.random() < 0.1 else low, "max": None if rng.random() < 0.1 else high})
    files = pl.DataFrame(rows, schema={"path": pl.String, "size": pl.Int64, "partition": pl.String,
                                       "min": pl.Datetime("us", "UTC"), "max": pl.Datetime("us", "UTC")})
    return Snapshot(files, "unique_identifier", pa.schema([]))


def expected_paths(snapshot: Snapshot, pruning: Pruning) -> list[str]:
    """The rule, file by file: a partition value the read allows (when it names any), and for every
    window, statistics that do not rule the file out (1 ms of slack; no statistics rule nothing out)."""
    allowed = [values for dim, values in pruning.values if dim == snapshot.partition]
    kept = []
    for row in snapshot.files.iter_rows(named=True):
        if any(row["partition"] not in values for values in allowed):
            continue
        if all((low is None or row["max"] is None or row["max"] >= low - SLACK)
               and (high is None or row["min"] is None or row["min"] <= high + SLACK)
               for low, high in pruning.windows):
            kept.append(row["path"])
    return kept


WINDOWS = [(None, None), (BASE + dt.timedelta(days=10), None), (None, BASE + dt.timedelta(days=5)),
           (BASE + dt.timedelta(days=20), BASE + dt.timedelta(days=20)),
           (BASE + dt.timedelta(days=30, milliseconds=1), BASE + dt.timedelta(days=31))]
VALUES = [(), (("unique_identifier", frozenset({"B"})),), (("unique_identifier", frozenset({"A", "E", "ZZ"})),),
          (("unique_identifier", frozenset({"ZZ"})),), (("portfolio", frozenset({"A"})),),
          (("unique_identifier", frozenset({"A", "B"})), ("unique_identifier", frozenset({"B", "C"})))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_candidates_follow_the_rule(seed: int) -> None:
    snapshot = synthetic_snapshot(seed)
    for values, window, second in itertools.product(VALUES, WINDOWS, [None, WINDOWS[2]]):
        pruning = Pruning(values, (window,) if second is None else (window, second))
        assert snapshot.candidates(pruning)["path"].to_list() == expected_paths(snapshot, pruning), pruning


def no_listing(self):
    raise AssertionError("the log was listed")


def append_elsewhere(lake: Lake, uri: str, rows: pa.Table) -> None:
    """Another writer's append (not through this process's cached object)."""
    write_deltalake(uri, rows, mode="append", storage_options=lake.storage_options or None)


def test_a_refresh_with_nothing_new_lists_no_log(any_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two probes (no commit after ours, ours unchanged) instead of delta-rs's listing: two stats
    locally, two requests at once on S3."""
    node = Step("refreshed", [], days=2)
    node.run()
    store = node.store
    table = store.table()

    with monkeypatch.context() as patched:
        patched.setattr(DeltaTable, "update_incremental", no_listing)
        assert store.table() is table and table.version() == 0

    stored = table.to_pyarrow_table()
    append_elsewhere(any_lake, store.uri, stored.slice(0, 1))
    assert store.table() is table and table.version() == 1
    assert node.get_df_between_dates().height == stored.num_rows + 1


def test_a_refresh_after_our_own_commit_lists_no_log(any_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run commits through the cached object (it moves past the version it was stamped at): the
    next run's refresh still lists no log, and still sees another writer's commit after ours."""
    node = Step("own_commit", [], days=2)
    node.run()
    table = node.store.table()
    node.days = 3
    node.run()  # a blind append through the cached object: version 1
    assert table.version() == 1

    with monkeypatch.context() as patched:
        patched.setattr(DeltaTable, "update_incremental", no_listing)
        assert node.store.table() is table and table.version() == 1
        assert node.store.table() is table and table.version() == 1  # stamped at 1 now: the plain shortcut

    node.days = 4
    node.run()
    append_elsewhere(any_lake, node.store.uri, table.to_pyarrow_table().slice(0, 1))  # version 3
    assert node.store.table() is table and table.version() == 3
    assert node.get_df_between_dates().height == 4  # one row a run, and the other writer's


def test_a_table_rebuilt_after_our_own_commit_is_reopened(any_lake: Lake) -> None:
    """The stamp taken before our own commit still guards the cache: a table removed and written
    again past our version is not mistaken for the one we committed to."""
    node = Step("rebuilt", [], days=2)
    node.run()
    node.days = 3
    node.run()
    table = node.store.table(refresh=False)
    rows = table.to_pyarrow_table()
    filesystem, root = lake_filesystem(any_lake, node.store.uri)
    filesystem.delete_dir(root)
    for _ in range(4):  # another table at that URI, past our version, with other rows
        append_elsewhere(any_lake, node.store.uri, rows.slice(0, 1))
    reopened = node.store.table()
    assert reopened is not table and reopened.version() == 3
    assert reopened.to_pyarrow_table().num_rows == 4


def test_a_refresh_that_cannot_reach_the_store_names_the_table(s3_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probes fail as the listing did: a one-line storage error naming the table, not a raw OSError
    (the fault injected where pyarrow raises it: the keys were revoked after the table was opened)."""
    node = Step("unreachable", [], days=1)
    node.run()

    def unreachable(*args):
        raise OSError("When reading information for key '_delta_log/00000000000000000002.json': AWS Error "
                      "ACCESS_DENIED during HeadObject operation: AccessDenied")

    monkeypatch.setattr(_tables, "_commit_exists", unreachable)
    with pytest.raises(StoragePermissionError, match=node.store.storage_hash):
        node.store.table()


def test_reading_a_table_does_not_look_through_every_open_table(local_lake: Lake,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``data-node list`` over 1,000 tables read each one's statistics in one process: every read
    compared the table with each table the process held open (a table key built for each), so the
    listing grew with the square of the tables. A read now finds its table's open objects by key:
    the last of 40 tables (at an older version than the 39 others) costs what the first did."""
    stores = [TableStore(local_lake, f"prices_{k:02d}") for k in range(40)]
    for k, store in enumerate(stores):
        for day in range(k if store is stores[-1] else k - 1, k + 1):  # the last at version 0, the others at 1
            write_deltalake(store.uri, pa.table({
                "time_index": pa.array([BASE + dt.timedelta(days=day)], pa.timestamp("us", "UTC")),
                "unique_identifier": ["A"], "value": [float(day)]}), mode="append")
    keys_built = []
    table_key = _tables.table_key
    monkeypatch.setattr(_tables, "table_key", lambda *args: keys_built.append(1) or table_key(*args))

    def keys_to_read(store: TableStore) -> int:
        keys_built.clear()
        assert read_progress(store.table(), local_lake).max_time == BASE + dt.timedelta(days=stores.index(store))
        return len(keys_built)

    first = keys_to_read(stores[0])
    for store in stores[1:-1]:
        keys_to_read(store)
    assert keys_to_read(stores[-1]) == first


def test_data_node_list_reads_no_delta_log_of_a_table(aws_env: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """``data-node list`` (each table's last index value and row count) opened every table, replaying
    its Delta log and resolving each identity's first and last times: 9.4 s for a lake of 1,000
    tables. It now reads each table's persisted progress (a log listing and one small file): no
    table is opened, and the listing is the same."""
    nodes = [Step(f"listed_{k}", [], days=k + 1) for k in range(4)]
    for node in nodes:
        for _ in range(node.days):  # one row a run
            node.run()
    clear_caches()  # a fresh process: no table open
    opened: list[str] = []
    open_table = _tables._open
    monkeypatch.setattr(_tables, "_open", lambda uri, options: opened.append(uri) or open_table(uri, options))

    result = CliRunner().invoke(app, ["--lake", aws_env.uri, "--json", "data-node", "list"])
    assert result.exit_code == 0, result.output
    listed = {row["storage_hash"]: row for row in json.loads(result.stdout)["results"]}
    assert [(listed[node.storage_hash]["row_count"], listed[node.storage_hash]["last_index_value"])
            for node in nodes] == [(k + 1, f"2024-01-0{k + 1}T00:00:00Z") for k in range(4)]
    assert [uri for uri in opened if uri in {node.store.uri for node in nodes}] == []
