"""The cheap steps of a read: choosing the files that can hold the rows (looked up by partition
value, then checked against the time windows on their statistics) and refreshing a local table
(two file stats when nothing was committed since, no log listing)."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from test_run import Step

from lakenodes import Lake
from lakenodes.lake._scan import SLACK, Pruning, Snapshot

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


def test_a_local_refresh_with_nothing_new_lists_no_log(local_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    node = Step("refreshed", [], days=2)
    node.run()
    store = node.store
    table = store.table()

    def listing(self):
        raise AssertionError("the log was listed")

    with monkeypatch.context() as patched:
        patched.setattr(DeltaTable, "update_incremental", listing)
        assert store.table() is table and table.version() == 1

    # another writer (not this process's cached object) commits: the next refresh sees it
    stored = table.to_pyarrow_table()
    write_deltalake(store.uri, stored.slice(0, 1), mode="append")
    assert store.table() is table and table.version() == 2
    assert node.get_df_between_dates().height == stored.num_rows + 1


def test_a_refresh_after_our_own_commit_lists_no_log(local_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run commits through the cached object (it moves past the version it was stamped at): the
    next run's refresh is still two stats, and still sees another writer's commit after ours."""
    node = Step("own_commit", [], days=2)
    node.run()
    table = node.store.table()
    node.days = 3
    node.run()  # a blind append through the cached object: version 2
    assert table.version() == 2

    def listing(self):
        raise AssertionError("the log was listed")

    with monkeypatch.context() as patched:
        patched.setattr(DeltaTable, "update_incremental", listing)
        assert node.store.table() is table and table.version() == 2
        assert node.store.table() is table and table.version() == 2  # stamped at 2 now: the plain shortcut

    node.days = 4
    node.run()
    write_deltalake(node.store.uri, table.to_pyarrow_table().slice(0, 1), mode="append")  # another writer: version 4
    assert node.store.table() is table and table.version() == 4


def test_a_table_rebuilt_after_our_own_commit_is_reopened(local_lake: Lake) -> None:
    """The stamp taken before our own commit still guards the cache: a table removed and written
    again past our version is not mistaken for the one we committed to."""
    import shutil

    node = Step("rebuilt", [], days=2)
    node.run()
    node.days = 3
    node.run()
    table = node.store.table(refresh=False)
    rows = table.to_pyarrow_table()
    shutil.rmtree(node.store.uri)
    for _ in range(4):  # another table at that URI, past our version, with other rows
        write_deltalake(node.store.uri, rows.slice(0, 1), mode="append")
    reopened = node.store.table()
    assert reopened is not table and reopened.version() == 3
    assert reopened.to_pyarrow_table().num_rows == 4
