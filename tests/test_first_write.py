"""The first write of a table creates it in its own commit (version 0: the table's definition and
its rows together), and first writers racing in processes still make one table (one
``metaData.id``) holding every row once: the losers append to (or restate into) the winner's table."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from test_concurrency import DailyBatch, appender, assert_table_exact, assets, in_processes
from test_concurrency_threads import assert_one_table, log_actions

import lakenodes.lake.store as store_module
import lakenodes.lake.stream_write as stream_module
from lakenodes import Lake, use_lake
from lakenodes.lake.progress import read_progress


class StreamedBatch(DailyBatch):
    """The same rows as ``DailyBatch``, returned as a polars LazyFrame (a streamed update)."""

    def update(self) -> Any:
        return super().update().lazy()


def node_of(kind: str, batch: list[str], **config: Any) -> DailyBatch:
    node = appender(batch, **config)
    return StreamedBatch(node.config) if kind == "stream" else node


@pytest.mark.parametrize("kind", ["frame", "stream"])
def test_the_first_write_creates_the_table_in_its_own_commit(tmp_path, kind):
    lake = Lake(tmp_path / "lake")
    with use_lake(lake):
        node = node_of(kind, ["A", "B"], days_per_run=3, last_day=3)
        node.run()
        actions = log_actions(lake, node.table_uri)
        assert {version for version, _ in actions} == {0}
        kinds = [next(iter(action)) for _, action in actions]
        assert kinds.count("metaData") == 1 and kinds.count("protocol") == 1 and kinds.count("add") == 2
        metadata = next(action["metaData"] for _, action in actions if "metaData" in action)
        assert metadata["name"] == node.storage_hash
        assert json.loads(metadata["description"])["index_names"] == ["time_index", "unique_identifier"]
        assert metadata["partitionColumns"] == ["unique_identifier"]
        assert metadata["configuration"] == {"delta.setTransactionRetentionDuration": "interval 14 days"}
        assert len([action for _, action in actions if "txn" in action]) == 3  # the write id, one per partition
        assert_table_exact(lake, node, ["A", "B"], 3)
        assert read_progress(node.store.table(), lake).row_count == 6
        node_of(kind, ["A", "B"], days_per_run=3, last_day=5).run()  # later writes append to it
        assert_table_exact(lake, node, ["A", "B"], 5)
        assert_one_table(lake, node.table_uri)


DELAY = 0.3  # seconds between a first write's decision (no table yet) and its commit


def first_writers(uri: str, kind: str, batch: list[str], trials: int, start, results) -> None:
    """Child process: the first run of ``batch`` on a fresh table per trial, at the same moment as
    the other children; reports how many of its commits lost the race to create the table."""
    lost = []

    def delayed(real):
        def write(*args: Any, **kwargs: Any) -> Any:
            time.sleep(DELAY)  # every child decides before any commits: all but one lose version 0
            try:
                return real(*args, **kwargs)
            except Exception:
                lost.append(1)
                raise
        return write

    store_module.write_deltalake = delayed(store_module.write_deltalake)
    stream_module.create_table_with_add_actions = delayed(stream_module.create_table_with_add_actions)
    try:
        for trial in range(trials):
            start.wait(timeout=120)
            with use_lake(Lake(f"{uri}/trial-{trial}")):
                node_of(kind, batch, days_per_run=3, last_day=3).run()
        results.put(("", len(lost)))
    except Exception as error:  # reported to the parent
        results.put((repr(error), len(lost)))


@pytest.mark.parametrize("kind", ["frame", "stream"])
def test_first_writes_racing_in_processes_make_one_table_with_every_row_once(tmp_path, kind):
    universe = assets(4)
    if kind == "frame":  # each asset written by two of them: a loser restates the winner's rows
        batches = [[universe[i], universe[(i + 1) % 3]] for i in range(3)]
    else:  # a stream only appends (rows already stored fail it): disjoint batches
        batches = [universe[0:2], universe[2:3], universe[3:4]]
    trials = 2
    outcomes = in_processes(first_writers, [(str(tmp_path / "lake"), kind, batch, trials) for batch in batches],
                            timeout=300)
    assert [error for error, _ in outcomes] == [""] * len(batches)
    assert sum(lost for _, lost in outcomes) >= trials  # the race to create the table happened
    written = sorted({uid for batch in batches for uid in batch})
    for trial in range(trials):
        lake = Lake(tmp_path / "lake" / f"trial-{trial}")
        with use_lake(lake):
            node = node_of(kind, batches[0])
            assert_one_table(lake, node.table_uri)
            assert_table_exact(lake, node, written, 3)
