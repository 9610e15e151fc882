"""What a daily run leaves for the next process: the persisted file facts cover the boundary
files after many appends (a fresh process reads no Parquet footer) and stay bounded in size."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from lakenodes import DataNode, DataNodeConfiguration, Lake, clear_caches
from lakenodes._internal.afterwards import settle
from lakenodes.lake import _exact_bounds, _file_facts, progress
from lakenodes.lake._delta_log import added_files

UTC = dt.UTC
START = dt.datetime(2024, 1, 1, 12, 0, 0, 123, tzinfo=UTC)  # sub-millisecond: Delta statistics are not exact
ASSETS = ["A", "B", "C"]


class DailyConfig(DataNodeConfiguration):
    name: str = "daily-path"


class Daily(DataNode):
    def dependencies(self):
        return {}

    def get_asset_list(self):
        return ASSETS

    def update(self):
        last = self.update_statistics.max_time_index_value
        day = START if last is None else last + dt.timedelta(days=1, microseconds=7)
        return pl.DataFrame({"time_index": [day] * len(ASSETS), "unique_identifier": ASSETS,
                             "close": [1.0] * len(ASSETS)})


def facts_rows(node: Daily) -> int:
    settle()  # the save run() left for after it returned
    return pq.read_table(f"{node.store.uri}/{progress.FACTS_PATH}").num_rows


def assert_a_new_process_reads_no_footer(node: Daily, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new process (only the lake left) finds every asset's first and last time from the
    persisted facts alone: no Parquet footer is read."""
    stored = node.get_df_between_dates().group_by("unique_identifier").agg(
        first=pl.col("time_index").min(), last=pl.col("time_index").max())
    clear_caches()

    def no_footers(*args, **kwargs):
        raise AssertionError("a Parquet footer was read: the persisted facts missed a boundary file")

    monkeypatch.setattr(_file_facts, "footer_time_bounds", no_footers)
    statistics = Daily(DailyConfig(), lake=Lake(node.lake.uri)).compute_update_statistics()  # a new Lake too
    assert statistics.index_progress == dict(stored.select("unique_identifier", "last").iter_rows())
    assert statistics.min_time_index_value == stored["first"].min()
    assert {identity[0]: first for identity, first in statistics.progress.first.items()} == \
        dict(stored.select("unique_identifier", "first").iter_rows())


def test_a_fresh_process_after_many_appends_reads_no_footer(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Appends add their files to the persisted facts (no look at every file of the table); the set
    is pruned back to the boundary files when it outgrows FACTS_PER_IDENTITY per identity."""
    monkeypatch.setattr(progress, "FACTS_PER_IDENTITY", 4)
    monkeypatch.setattr(progress, "FACTS_SLACK", 0)
    node = Daily(DailyConfig(), lake=Lake(tmp_path / "lake"))
    sizes = []
    for _ in range(12):
        node.run()
        sizes.append(facts_rows(node))
    assert max(sizes) <= 4 * len(ASSETS)
    assert any(later > earlier for earlier, later in zip(sizes, sizes[1:], strict=False))  # grown by appends
    assert any(later < earlier for earlier, later in zip(sizes, sizes[1:], strict=False))  # pruned
    assert_a_new_process_reads_no_footer(node, monkeypatch)


def test_facts_pruned_by_fresh_processes_keep_every_boundary_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run in a new process (a cron job): the facts file is pruned by processes that only
    loaded it (its bounds are learned when a pruning needs them), and still holds the first and
    last file of every identity."""
    monkeypatch.setattr(progress, "FACTS_PER_IDENTITY", 4)
    monkeypatch.setattr(progress, "FACTS_SLACK", 0)
    sizes = []
    for _ in range(12):
        clear_caches()  # a new process
        node = Daily(DailyConfig(), lake=Lake(tmp_path / "lake"))
        node.run()
        sizes.append(facts_rows(node))
    assert any(later < earlier for earlier, later in zip(sizes, sizes[1:], strict=False))  # pruned
    assert_a_new_process_reads_no_footer(node, monkeypatch)


def test_a_backfill_into_a_new_table_leaves_facts_naming_each_of_its_files(tmp_path, monkeypatch) -> None:
    """The first rows of a table are all its files: their facts are written as they are (no look
    at the table's files), and a new process needs no footer for its statistics."""
    node = Daily(DailyConfig(), lake=Lake(tmp_path / "lake"))
    days = [START + dt.timedelta(days=n) for n in range(5)]
    node.update = lambda: pl.DataFrame({"time_index": [day for day in days for _ in ASSETS],
                                        "unique_identifier": ASSETS * len(days), "close": 1.0})
    node.run()
    assert facts_rows(node) == len(node.store.table().get_add_actions().column("path"))

    clear_caches()
    monkeypatch.setattr(_file_facts, "footer_time_bounds",
                        lambda *a, **k: pytest.fail("a Parquet footer was read: the facts missed a file"))
    statistics = Daily(DailyConfig(), lake=Lake(tmp_path / "lake")).compute_update_statistics()
    assert statistics.index_progress == dict.fromkeys(ASSETS, days[-1])
    assert statistics.min_time_index_value == days[0]


def test_a_long_lived_process_keeps_the_facts_of_a_bounded_number_of_files(tmp_path, monkeypatch) -> None:
    """A scheduler running daily nodes in one interpreter for months learned the facts of every file
    its appends wrote and never forgot one (~400 bytes each: 1,000 assets a day, ~150 MB a year).
    Past ``max_paths`` the older half is forgotten; the runs, their statistics and what a new
    process finds stay exact."""
    monkeypatch.setattr(progress, "FACTS_PER_IDENTITY", 4)  # the facts file: at most 12 files, under the limit
    monkeypatch.setattr(progress, "FACTS_SLACK", 0)
    monkeypatch.setattr(_exact_bounds.FILE_FACTS, "max_paths", 20, raising=False)
    node = Daily(DailyConfig(), lake=Lake(tmp_path / "lake"))
    known = []
    for _ in range(15):
        node.run()
        known.append(len(_exact_bounds.FILE_FACTS))
    assert max(known) <= 20
    stored = node.get_df_between_dates()
    assert stored.height == 15 * len(ASSETS) and not stored.select("time_index", "unique_identifier").is_duplicated().any()
    last = START + 14 * dt.timedelta(days=1, microseconds=7)
    assert node.compute_update_statistics().index_progress == dict.fromkeys(ASSETS, last)
    assert_a_new_process_reads_no_footer(node, monkeypatch)


def test_a_fresh_process_adds_its_files_to_the_facts_file_it_finds(tmp_path) -> None:
    """The first append of a process adds its files to the facts file its statistics read (one small
    read), instead of working out the boundary files from every file of the table."""
    lake = Lake(tmp_path / "lake")
    for _ in range(3):
        Daily(DailyConfig(), lake=lake).run()
    before = facts_rows(Daily(DailyConfig(), lake=lake))
    assert before > 2 * len(ASSETS)  # more than the first and last file of each asset

    clear_caches()  # a new process
    node = Daily(DailyConfig(), lake=lake)
    node.run()
    assert facts_rows(node) == before + len(ASSETS)


def test_a_failure_to_save_the_facts_is_logged_and_the_run_succeeds(tmp_path, monkeypatch, caplog) -> None:
    node = Daily(DailyConfig(), lake=Lake(tmp_path / "lake"))
    node.run()

    def broken(*args, **kwargs):
        raise RuntimeError("facts storage broken")

    monkeypatch.setattr(progress, "persist_append", broken)
    monkeypatch.setattr("lakenodes.runtime.run.persist_append", broken)
    _, summary = node.run(return_frames=False)
    assert summary.rows_appended == len(ASSETS)
    assert "could not save the file facts" in caplog.text and "facts storage broken" in caplog.text


def test_the_statistics_a_run_leaves_are_those_of_its_own_append(tmp_path) -> None:
    """After a blind append, the run's statistics are its own snapshot's progress widened by its
    rows, over the scope the run updated: no other get_asset_list() call after the write."""
    calls = []

    class Counted(Daily):
        def get_asset_list(self):
            calls.append(1)
            return ASSETS

    node = Counted(DailyConfig(), lake=Lake(tmp_path / "lake"))
    node.run()
    calls.clear()
    node.run()
    assert len(calls) == 2  # the statistics before the write and the table's catalog record
    assert node.update_statistics.asset_list == ASSETS
    assert node.update_statistics.index_progress == {uid: START + dt.timedelta(days=1, microseconds=7) for uid in ASSETS}


def test_a_fresh_run_writes_from_the_progress_its_statistics_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh process's statistics come from the persisted snapshot; its write's watermark check
    reuses them (same commit file) instead of working the progress out again, and what it leaves
    still lets the next process read no footer."""
    lake = Lake(tmp_path / "lake")
    for _ in range(2):
        Daily(DailyConfig(), lake=lake).run()
    clear_caches()

    def no_progress_read(*args, **kwargs):
        raise AssertionError("the write worked out the progress again")

    with monkeypatch.context() as patched:
        patched.setattr(progress, "_read_progress", no_progress_read)
        Daily(DailyConfig(), lake=lake).run()
    clear_caches()
    monkeypatch.setattr(_file_facts, "footer_time_bounds", lambda *a, **k: pytest.fail("a footer was read"))
    node = Daily(DailyConfig(), lake=lake)
    node.run()
    stored = node.get_df_between_dates()
    assert stored.height == 4 * len(ASSETS) and not stored.select("time_index", "unique_identifier").is_duplicated().any()


def test_a_commit_after_the_statistics_read_is_not_hidden_by_them(tmp_path) -> None:
    """The snapshot's progress is reused for the version it names only: a table opened after
    another writer's commit reads that commit's rows into its progress."""
    lake = Lake(tmp_path / "lake")
    Daily(DailyConfig(), lake=lake).run()
    clear_caches()
    node = Daily(DailyConfig(), lake=lake)
    later = node.compute_update_statistics().max_time_index_value + dt.timedelta(days=3)  # from the snapshot
    rows = pa.table({"time_index": pa.array([later], pa.timestamp("us", "UTC")), "unique_identifier": ["A"],
                     "close": [2.0]})
    write_deltalake(node.store.uri, rows, mode="append", partition_by=["unique_identifier"])  # another writer
    assert progress.read_progress(node.store.table(), lake).last[("A",)] == later


@pytest.mark.s3
def test_a_cron_job_that_exits_right_after_its_run_leaves_its_facts_on_s3(s3_server) -> None:
    """On S3 a run saves its file facts after it returns; a process that exits at once still saves
    them whole (the save maps requests over threads, which must still be taken at exit), so the
    next cron job starts from them instead of replaying the log."""
    import json
    import subprocess
    import sys

    from lakenodes.lake import _progress_snapshot as snapshots
    from lakenodes.lake.location import lake_filesystem

    lake = s3_server.new_lake()
    Daily(DailyConfig(), lake=lake).run()
    job = ("import json, sys; sys.path.insert(0, sys.argv[3]); from test_daily_path import Daily, DailyConfig; "
           "from lakenodes import Lake; Daily(DailyConfig(), lake=Lake(sys.argv[1], storage_options=json.loads(sys.argv[2]))).run()")
    for _ in range(2):
        subprocess.run([sys.executable, "-c", job, lake.uri, json.dumps(lake.storage_options), str(Path(__file__).parent)],
                       check=True, capture_output=True, timeout=120)
        filesystem, root = lake_filesystem(lake, Daily(DailyConfig(), lake=lake).store.uri)
        found = snapshots.read_latest(filesystem, root, progress.FACTS_PATH)
        assert found is not None, "the job's facts are not those of the table's newest version"


@pytest.mark.s3
def test_on_s3_a_run_returns_before_its_facts_are_saved_and_readers_wait_for_them(s3_server, monkeypatch) -> None:
    """The facts save (a read, a stamp and a write on S3) is not waited for by run(); a cold read
    in the same process, and clear_caches(), wait for it instead of reading the facts it replaces."""
    import threading

    from lakenodes.lake import _facts_file
    from lakenodes.lake import _progress_snapshot as snapshots
    from lakenodes.lake.location import lake_filesystem

    lake = s3_server.new_lake()
    node = Daily(DailyConfig(), lake=lake)
    node.run()
    settle()
    filesystem, root = lake_filesystem(lake, node.store.uri)
    assert snapshots.read_latest(filesystem, root, progress.FACTS_PATH) is not None
    opened, write = threading.Event(), _facts_file.write

    def gated(*args, **kwargs):
        assert opened.wait(60), "the save was never let through"
        return write(*args, **kwargs)

    monkeypatch.setattr(_facts_file, "write", gated)
    _, summary = node.run(return_frames=False)  # returns with its save held at the gate
    assert summary.rows_appended == len(ASSETS)
    assert snapshots.read_latest(filesystem, root, progress.FACTS_PATH) is None  # the facts of the version before
    threading.Timer(0.5, opened.set).start()
    clear_caches()  # waits for the save
    assert opened.is_set()
    assert snapshots.read_latest(filesystem, root, progress.FACTS_PATH) is not None
    monkeypatch.setattr(_file_facts, "footer_time_bounds", lambda *a, **k: pytest.fail("a footer was read"))
    statistics = Daily(DailyConfig(), lake=lake).compute_update_statistics()
    assert statistics.index_progress == {uid: START + dt.timedelta(days=1, microseconds=7) for uid in ASSETS}


@pytest.mark.s3
def test_on_s3_a_failure_to_save_the_facts_after_the_run_is_logged(s3_server, monkeypatch, caplog) -> None:
    node = Daily(DailyConfig(), lake=s3_server.new_lake())
    node.run()

    def broken(*args, **kwargs):
        raise RuntimeError("facts storage broken")

    monkeypatch.setattr("lakenodes.runtime.run.persist_append", broken)
    _, summary = node.run(return_frames=False)
    assert summary.rows_appended == len(ASSETS)
    settle()
    assert "could not save the file facts" in caplog.text and "facts storage broken" in caplog.text


def test_on_a_local_lake_a_run_returns_with_its_facts_saved(tmp_path) -> None:
    """On a local disk nothing of the run is still being written when run() returns: its facts are
    those of the table's newest version already, and the folder can be removed at once (as a
    ``TemporaryDirectory`` block ending does)."""
    import shutil

    from lakenodes.lake import _progress_snapshot as snapshots
    from lakenodes.lake.location import lake_filesystem

    lake = Lake(tmp_path / "lake")
    node = Daily(DailyConfig(), lake=lake)
    filesystem, root = lake_filesystem(lake, node.store.uri)
    for _ in range(3):
        node.run()
        assert snapshots.read_latest(filesystem, root, progress.FACTS_PATH) is not None
    shutil.rmtree(tmp_path / "lake")


def test_on_a_local_lake_a_failure_to_save_the_facts_leaves_the_run_as_it_is(tmp_path, monkeypatch, caplog) -> None:
    """The facts are a cache: a local save that cannot write (here ``_lakenodes`` is a file, not a
    folder) or that fails unexpectedly (a warning naming the table) leaves the run's rows as they are."""
    node = Daily(DailyConfig(), lake=Lake(tmp_path / "lake"))
    node.run()
    facts_folder = Path(node.store.uri) / progress.FACTS_PATH.split("/")[0]
    for entry in facts_folder.iterdir():
        entry.unlink()
    facts_folder.rmdir()
    facts_folder.write_text("not a folder")
    _, summary = node.run(return_frames=False)
    assert summary.rows_appended == len(ASSETS)
    assert facts_folder.read_text() == "not a folder"

    def broken(*args, **kwargs):
        raise RuntimeError("facts storage broken")

    monkeypatch.setattr("lakenodes.runtime.run.persist_append", broken)
    _, summary = node.run(return_frames=False)
    assert summary.rows_appended == len(ASSETS)
    assert len(node.get_df_between_dates()) == 3 * len(ASSETS)
    warnings = [record.getMessage() for record in caplog.records if "could not save the file facts" in record.getMessage()]
    assert len(warnings) == 1 and node.storage_hash in warnings[0] and "facts storage broken" in warnings[0]


def test_a_warm_process_prunes_the_facts_without_the_tables_file_list(tmp_path, monkeypatch) -> None:
    """Pruning the facts of a table partitioned by its only identity keeps each partition's first
    and last files from the facts' own rows: the table's file list (every file, growing with each
    append) is not read, and a new process still reads no footer."""
    monkeypatch.setattr(progress, "FACTS_PER_IDENTITY", 4)
    monkeypatch.setattr(progress, "FACTS_SLACK", 0)
    node = Daily(DailyConfig(), lake=Lake(tmp_path / "lake"))
    node.run()

    def no_file_list(*args, **kwargs):
        raise AssertionError("the table's file list was read to prune the facts")

    monkeypatch.setattr(progress, "add_actions", no_file_list)
    sizes = []
    for _ in range(12):
        node.run()
        sizes.append(facts_rows(node))
    assert max(sizes) <= 4 * len(ASSETS)
    assert any(later < earlier for earlier, later in zip(sizes, sizes[1:], strict=False))  # pruned
    monkeypatch.undo()  # a new process reads the table's file list as it needs
    assert_a_new_process_reads_no_footer(node, monkeypatch)


def test_facts_stay_bounded_when_optimize_rewrites_the_boundary_files(tmp_path, monkeypatch) -> None:
    """A compaction rewrites a partition's first and last files into one with the same bounds: the
    old files' rows tie with it, and only the table's file list tells them apart (the run after it
    works its progress out from that list, and a pruning left with too many ties falls back to it):
    the facts file stays within its bound over many optimize cycles."""
    from lakenodes.lake.maintenance import optimize_table

    monkeypatch.setattr(progress, "FACTS_PER_IDENTITY", 4)
    monkeypatch.setattr(progress, "FACTS_SLACK", 0)
    lake = Lake(tmp_path / "lake")
    node = Daily(DailyConfig(), lake=lake)
    sizes = []
    for _cycle in range(6):
        for _ in range(4):
            node.run()
            sizes.append(facts_rows(node))
        optimize_table(lake, node.storage_hash)
    assert max(sizes) <= 4 * len(ASSETS)
    assert len(node.get_df_between_dates()) == 24 * len(ASSETS)


@pytest.mark.parametrize("values", [["A", "B C", "d/é"], ['quote"d', "back\\slash", "tab\tbed"]])
def test_the_files_of_a_commit_are_read_as_delta_rs_wrote_them(tmp_path: Path, values: list[str]) -> None:
    """The path, partition value and record count of each file a commit added, as a run learns them
    (the common add line matched, any other parsed): the same as the commit's JSON says, for partition
    values delta-rs writes plainly and for those it escapes."""
    uri = str(tmp_path / "table")
    rows = pa.table({"uid": [v for v in values for _ in range(2)] + [values[0]],
                     "x": list(range(2 * len(values) + 1))})
    write_deltalake(uri, rows, partition_by=["uid"])
    lines = (tmp_path / "table" / "_delta_log" / "00000000000000000000.json").read_text().splitlines()
    truth = [(add["path"], add["partitionValues"]["uid"], json.loads(add["stats"])["numRecords"])
             for add in (json.loads(line)["add"] for line in lines if line.startswith('{"add"'))]
    assert sorted(added_files(lines, "uid")) == sorted(truth)
    assert sorted((value, count) for _, value, count in truth) == sorted([(values[0], 3), *((v, 2) for v in values[1:])])
    assert [path for path, _, _ in added_files(lines, None)] == [path for path, _, _ in truth]
