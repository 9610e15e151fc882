"""Maintenance: per-partition compaction, checkpoints and vacuum keep data and statistics intact."""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing
import os
from typing import ClassVar

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lakenodes import (
    DataNode,
    DataNodeConfiguration,
    Lake,
    LakenodesUserError,
    NotFoundError,
    TimeIndexMetaTable,
    use_lake,
)
from lakenodes.facade.table_refs import maintenance_targets
from lakenodes.lake.maintenance import (
    CATALOG_TABLES,
    last_checkpoint_version,
    optimize_table,
    vacuum_table,
)
from lakenodes.lake.store import TableStore

UTC = datetime.UTC
START = datetime.datetime(2024, 1, 1, tzinfo=UTC)
ASSETS = ["AAPL", "BRK/B", "é=1%"]


class DailyCloseConfig(DataNodeConfiguration):
    assets: list[str]


class DailyClose(DataNode):
    """Appends the next day (one row per asset, at a microsecond-precise time) on every run."""

    OFFSET_START: ClassVar[datetime.datetime] = START

    def __init__(self, config: DailyCloseConfig, **kwargs):
        super().__init__(config, **kwargs)

    def dependencies(self) -> dict:
        return {}

    def update(self) -> pl.DataFrame:
        last = self.update_statistics.max_time_index_value
        day = START if last is None else (last + datetime.timedelta(days=1)).replace(microsecond=0)
        stamp = day.replace(microsecond=(day - START).days * 1_001 + 7)
        return pl.DataFrame({
            "time_index": [stamp] * len(self.config.assets),
            "unique_identifier": list(self.config.assets),
            "close": [100.0 + (day - START).days + i for i in range(len(self.config.assets))],
        }).with_columns(pl.col("time_index").cast(pl.Datetime("us", "UTC")))


def _files_per_partition(table: DeltaTable) -> dict[str, int]:
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    counts: dict[str, int] = {}
    for action in actions:
        counts[action["partition.unique_identifier"]] = counts.get(action["partition.unique_identifier"], 0) + 1
    return counts


def _everything(node: DataNode) -> pl.DataFrame:
    return node.get_df_between_dates().sort(["time_index", "unique_identifier"])


def _snapshot(node: DataNode) -> tuple:
    stats = node.compute_update_statistics()
    return (
        {key: value for key, value in TimeIndexMetaTable.get(storage_hash=node.storage_hash).stats().items()
         if key != "version"},  # optimize commits: a new version, the same statistics
        stats.index_progress,
        stats.max_time_index_value,
        stats.min_time_index_value,
        stats.get_update_range_map_great_or_equal(),
    )


@pytest.fixture
def daily_node(local_lake: Lake) -> DailyClose:
    node = DailyClose(DailyCloseConfig(assets=ASSETS))
    for _ in range(50):
        node.run()
    return node


def test_optimize_compacts_each_partition_to_one_file_and_keeps_data_and_statistics(daily_node: DailyClose, local_lake: Lake):
    table = daily_node.store.table()
    assert _files_per_partition(table) == dict.fromkeys(ASSETS, 50)
    data_before, stats_before = _everything(daily_node), _snapshot(daily_node)
    assert data_before.height == 150

    progress: list[tuple[int, int]] = []
    result = optimize_table(local_lake, daily_node.storage_hash, progress=lambda done, total: progress.append((done, total)))

    assert _files_per_partition(daily_node.store.table()) == dict.fromkeys(ASSETS, 1)
    assert (result["files_before"], result["files_after"], result["partitions"]) == (150, 3, 3)
    assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert result["checkpoint_version"] == result["version_after"] == daily_node.store.table().version()
    assert _everything(daily_node).equals(data_before)
    assert _snapshot(daily_node) == stats_before
    again = optimize_table(local_lake, daily_node.storage_hash)  # nothing left: it reports no compaction
    assert (again["partitions"], again["files_removed"]) == (0, 0)
    protocol = daily_node.store.table().protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)

    again = optimize_table(local_lake, daily_node.storage_hash)
    assert (again["partitions"], again["version_after"]) == (0, result["version_after"])

    daily_node.run()  # appends keep working on the compacted table
    assert _everything(daily_node).height == 153


def test_vacuum_dry_run_lists_nothing_inside_retention(daily_node: DailyClose, local_lake: Lake):
    data_before = _everything(daily_node)
    optimize_table(local_lake, daily_node.storage_hash)

    dry = vacuum_table(local_lake, daily_node.storage_hash, dry_run=True)
    assert (dry["files"], dry["retention_hours"], dry["dry_run"]) == ([], 168, True)
    assert vacuum_table(local_lake, daily_node.storage_hash)["file_count"] == 0

    with pytest.raises(LakenodesUserError, match="below the 168 h minimum"):
        vacuum_table(local_lake, daily_node.storage_hash, retention_hours=1)

    unsafe_dry = vacuum_table(local_lake, daily_node.storage_hash, retention_hours=0, dry_run=True)
    assert unsafe_dry["file_count"] == 150  # the compacted-away small files, listed but kept (no force: dry)
    assert all(os.path.exists(os.path.join(daily_node.table_uri, path)) for path in unsafe_dry["files"])

    unsafe = vacuum_table(local_lake, daily_node.storage_hash, retention_hours=0, force_unsafe_retention=True)
    assert sorted(unsafe["files"]) == sorted(unsafe_dry["files"])
    assert not any(os.path.exists(os.path.join(daily_node.table_uri, path)) for path in unsafe["files"])
    assert _everything(daily_node).equals(data_before)


def test_a_dry_run_vacuum_writes_nothing_not_even_the_pending_catalog_rows(local_lake: Lake, monkeypatch):
    """Regression: vacuum --dry-run of _catalog/runs folded its pending rows (a commit; on a
    read-only lake, a permission error)."""
    monkeypatch.setenv("LAKENODES_CATALOG_FOLD_EVERY", "0")  # no chance fold (1 put in 20) empties them first
    daily_node = DailyClose(DailyCloseConfig(assets=ASSETS))
    daily_node.run()
    daily_node.run()
    runs = os.path.join(local_lake.uri, "_catalog", "runs")
    log = os.path.join(runs, "_delta_log")
    before = sorted(os.listdir(log)) if os.path.exists(log) else None
    pending = sorted(os.listdir(os.path.join(runs, "_lakenodes", "pending")))
    assert pending, "the runs are pending (not folded yet)"
    with contextlib.suppress(NotFoundError):  # no runs table yet: nothing to list
        vacuum_table(local_lake, "_catalog/runs", dry_run=True)
    assert (sorted(os.listdir(log)) if os.path.exists(log) else None) == before
    assert sorted(os.listdir(os.path.join(runs, "_lakenodes", "pending"))) == pending


def test_catalog_tables_are_maintained_too(local_lake: Lake, monkeypatch):
    monkeypatch.setenv("LAKENODES_CATALOG_FOLD_EVERY", "1")  # each run a file of _catalog/runs
    daily_node = DailyClose(DailyCloseConfig(assets=ASSETS))
    for _ in range(5):
        daily_node.run()
    targets = maintenance_targets(local_lake)
    assert targets[0] == daily_node.storage_hash
    assert targets[1:] == [name for name in CATALOG_TABLES if name != "_catalog/assets"]  # no asset registered
    runs_before = len(TableStore(local_lake, "runs", uri=local_lake.catalog_uri("runs")).read() or [])
    result = optimize_table(local_lake, "_catalog/runs")
    assert result["files_after"] == 1 and result["files_before"] > 1
    assert len(TableStore(local_lake, "runs", uri=local_lake.catalog_uri("runs")).read() or []) == runs_before
    assert TimeIndexMetaTable.get(storage_hash=daily_node.storage_hash).storage_hash == daily_node.storage_hash


def test_a_catalog_table_holding_only_pending_rows_is_a_maintenance_target(local_lake: Lake,
                                                                           monkeypatch: pytest.MonkeyPatch):
    """Regression: with no table named, optimize skipped _catalog/runs while its rows were all pending."""
    monkeypatch.setenv("LAKENODES_CATALOG_FOLD_EVERY", "0")  # no chance fold (1 put in 20) makes the table early
    daily_node = DailyClose(DailyCloseConfig(assets=ASSETS))
    daily_node.run()
    runs = TableStore(local_lake, "runs", uri=local_lake.catalog_uri("runs"))
    assert runs.table() is None  # one run: its record is a pending file, no Delta table yet
    assert "_catalog/runs" not in maintenance_targets(local_lake, pending=False)  # a dry run folds nothing
    assert "_catalog/runs" in maintenance_targets(local_lake)  # folds it (its first fold writes it)
    optimize_table(local_lake, "_catalog/runs")
    assert runs.table() is not None and runs.read().num_rows == 1


def test_unknown_table_and_bad_target_size_are_user_errors(local_lake: Lake):
    with pytest.raises(NotFoundError, match="no Delta table 'nope'"):
        optimize_table(local_lake, "nope")
    with pytest.raises(LakenodesUserError, match="target_size"):
        optimize_table(local_lake, "nope", target_size=0)


def test_checkpoints_are_written_automatically(local_lake: Lake):
    """delta-rs's post-commit hook checkpoints every delta.checkpointInterval commits: 10 for the
    tables lakenodes creates (delta-rs' default of 100 left a daily table's fresh opens replaying
    up to 99 commits)."""
    store = TableStore(local_lake, "plain_0001")
    schema = pa.schema([("time_index", pa.timestamp("us", tz="UTC")), ("v", pa.int64())])
    table = store.ensure_created(schema, ("time_index",))
    assert table.metadata().configuration["delta.checkpointInterval"] == "10"
    row = pa.table({"time_index": pa.array([START], schema.field("time_index").type), "v": [1]})
    for _ in range(8):
        write_deltalake(table, row, mode="append")
    assert last_checkpoint_version(local_lake, "plain_0001") is None
    for _ in range(13):
        write_deltalake(table, row, mode="append")
    assert last_checkpoint_version(local_lake, "plain_0001") == 19  # written by the 20th commit
    assert store.table().version() == 21


def _append_days(uri: str, assets: list[str], first: int, days: int, ready, proceed) -> None:
    """Child process: append ``days`` days, signalling after ``first`` and then waiting for the parent."""
    with use_lake(Lake(uri)):
        node = DailyClose(DailyCloseConfig(assets=assets))
        for day in range(days):
            if day == first:
                ready.set()
                proceed.wait(60)
            node.run()


@pytest.mark.slow
def test_optimize_while_another_process_appends_loses_nothing(local_lake: Lake):
    node = DailyClose(DailyCloseConfig(assets=ASSETS))
    for _ in range(10):
        node.run()
    context = multiprocessing.get_context("spawn")
    ready, proceed = context.Event(), context.Event()
    child = context.Process(target=_append_days, args=(local_lake.uri, ASSETS, 5, 30, ready, proceed))
    child.start()
    try:
        assert ready.wait(120), "the appending process did not start"
        optimize_table(local_lake, node.storage_hash)
        proceed.set()
        passes = 1
        while child.is_alive() or passes < 3:
            optimize_table(local_lake, node.storage_hash)
            passes += 1
        child.join(120)
    finally:
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    optimize_table(local_lake, node.storage_hash)

    data = _everything(node)
    assert data.height == 40 * len(ASSETS)
    assert data.select("time_index", "unique_identifier").is_duplicated().sum() == 0
    assert data["time_index"].dt.date().n_unique() == 40
    assert _files_per_partition(node.store.table()) == dict.fromkeys(ASSETS, 1)
    assert node.compute_update_statistics().max_time_index_value == data["time_index"].max()


@pytest.mark.s3
def test_optimize_and_vacuum_on_s3(s3_lake: Lake):
    node = DailyClose(DailyCloseConfig(assets=ASSETS[:2]))
    for _ in range(4):
        node.run()
    before = _everything(node)
    result = optimize_table(s3_lake, node.storage_hash)
    assert (result["files_before"], result["files_after"]) == (8, 2)
    assert result["checkpoint_version"] == result["version_after"]
    assert vacuum_table(s3_lake, node.storage_hash, dry_run=True)["files"] == []
    assert _everything(node).equals(before)


def test_optimize_compacts_partitions_delta_rs_cannot(local_lake: Lake):
    """delta-rs compaction lost the files of a partition whose folder name holds "~" ("File selection
    contains 3 missing files") and failed the whole table; such partitions are rewritten by lakenodes."""
    node = DailyClose(DailyCloseConfig(assets=["a~b", "plain"]))
    for _ in range(3):
        node.run()
    before, statistics = _everything(node), _snapshot(node)

    result = optimize_table(local_lake, node.storage_hash)

    table = DeltaTable(node.table_uri)
    assert _files_per_partition(table) == {"a~b": 1, "plain": 1}
    assert result["files_before"] == 6 and result["files_after"] == 2
    assert _everything(node).equals(before) and _snapshot(node) == statistics


def _optimize_in_child(uri: str, storage_hash: str) -> tuple[int, int]:
    from lakenodes.lake.maintenance import optimize_table as optimize

    result = optimize(Lake(uri), storage_hash)
    return result["files_removed"], result["partitions"]


@pytest.mark.slow
def test_concurrent_optimizations_never_duplicate_rows(local_lake: Lake):
    """Two delta-rs compactions from one snapshot both committed and duplicated every row (delta-rs
    1.6.6); lakenodes' compaction carries the partition's identity app transaction, so the loser retries."""
    node = DailyClose(DailyCloseConfig(assets=ASSETS))
    for _ in range(12):
        node.run()
    before = _everything(node)
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        results = pool.starmap(_optimize_in_child, [(local_lake.uri, node.storage_hash)] * 3)
    assert sum(removed for removed, _ in results) == 12 * len(ASSETS)  # every file compacted once, by any process
    # regression: each reported every partition it had planned, though another process compacted most
    assert sum(partitions for _, partitions in results) == len(ASSETS)
    assert _everything(node).equals(before)
    assert set(_files_per_partition(DeltaTable(node.table_uri)).values()) == {1}


def test_a_failed_table_is_reported_once_and_the_others_still_run(local_lake: Lake, monkeypatch):
    """Regression: a failure filled the table's "Files" cell with the whole error, which stderr
    also showed twice (a log line, then the command's error line)."""
    from typer.testing import CliRunner

    from lakenodes.cli import app
    from lakenodes.errors import StorageFullError
    from lakenodes.lake import maintenance

    daily_node = DailyClose(DailyCloseConfig(assets=ASSETS))
    daily_node.run()
    daily_node.run()
    real = maintenance.optimize_table

    def full_for_the_data_table(lake, name, **kwargs):
        if name == daily_node.storage_hash:
            raise StorageFullError("no space left on device", path=name, operation="optimize")
        return real(lake, name, **kwargs)

    monkeypatch.setattr(maintenance, "optimize_table", full_for_the_data_table)
    result = CliRunner().invoke(app, ["--lake", local_lake.uri, "optimize"])
    assert result.exit_code == 1
    row = next(line for line in result.stdout.splitlines() if daily_node.storage_hash in line)
    assert "failed" in row and "space" not in row
    assert "_catalog/tables" in result.stdout  # the other tables were optimized
    errors = [line for line in result.stderr.splitlines() if "no space left" in line]
    assert len(errors) == 1 and errors[0].startswith("error: optimize failed for 1 table(s)")


def test_vacuum_removes_the_files_a_killed_write_left_and_keeps_lakenodes_own(daily_node: DailyClose, local_lake: Lake):
    """A write killed before its commit leaves Parquet files no commit names; vacuum (past the
    retention) deletes them, and leaves the live files, the log and ``_lakenodes/`` alone."""
    optimize_table(local_lake, daily_node.storage_hash, cross_section=True)  # a _lakenodes/ copy too
    before = _everything(daily_node)
    orphan = os.path.join(daily_node.table_uri, "unique_identifier=AAPL", "part-00000-killed-c000.snappy.parquet")
    with open(orphan, "wb") as file:
        file.write(b"PAR1 half a file")
    kept = {os.path.join(root, name) for root, _, names in os.walk(daily_node.table_uri) for name in names
            if "_lakenodes" in root or "_delta_log" in root}

    inside = vacuum_table(local_lake, daily_node.storage_hash, dry_run=True)
    assert "unique_identifier=AAPL/part-00000-killed-c000.snappy.parquet" not in inside["files"]  # within retention

    result = vacuum_table(local_lake, daily_node.storage_hash, retention_hours=0, force_unsafe_retention=True)
    assert "unique_identifier=AAPL/part-00000-killed-c000.snappy.parquet" in result["files"]
    assert not os.path.exists(orphan)
    assert kept and all(os.path.exists(path) for path in kept)
    assert _everything(daily_node).equals(before)
    daily_node.run()
    assert _everything(daily_node).height == before.height + len(daily_node.config.assets)


def test_vacuum_reports_each_deleted_file_once_as_a_path_in_the_table(any_lake: Lake):
    """Regression: delta-rs names the files of remove actions still in the log again on every
    vacuum (by absolute path after the first): a second vacuum reported files long gone."""
    node = DailyClose(DailyCloseConfig(assets=ASSETS))
    for _ in range(3):
        node.run()
    optimize_table(any_lake, node.storage_hash)
    before = _everything(node)
    first = vacuum_table(any_lake, node.storage_hash, retention_hours=0, force_unsafe_retention=True)
    assert first["file_count"] == 9 and all(not path.startswith(("/", "s3:")) for path in first["files"])
    for _ in range(2):
        assert vacuum_table(any_lake, node.storage_hash, retention_hours=0, force_unsafe_retention=True)["files"] == []
        assert vacuum_table(any_lake, node.storage_hash, dry_run=True, retention_hours=0)["files"] == []
    assert _everything(node).equals(before)


def test_a_table_named_twice_is_maintained_once(daily_node: DailyClose, local_lake: Lake):
    """Regression: ``lakenodes vacuum T T`` (or a table's identifier and its storage hash) processed
    the table twice."""
    from lakenodes.facade.table_refs import maintenance_names

    twice = [daily_node.storage_hash, daily_node.storage_hash, "_catalog/runs", "_catalog/runs"]
    assert maintenance_names(local_lake, twice) == [daily_node.storage_hash, "_catalog/runs"]
