"""Writers in threads of one process, tables reset under a long-lived process, tail deletes racing
appends, app-transaction expiry and lost commit answers ("Nothing lost, round two").

Threads share lakenodes' cached DeltaTable of a table; every scenario here uses real Delta tables
(a local folder or the moto S3 server), real threads, thread pools, Dask's threaded scheduler and
in-process ``distributed`` workers, and spawned processes where another process is the point.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from test_concurrency import (
    BatchConfig,
    DailyBatch,
    Job,
    appender,
    assert_table_exact,
    assets,
    day,
    expected_rows,
    in_processes,
    run_jobs,
    stored_rows,
)

import lakenodes.lake._watermarks as watermarks_module
import lakenodes.lake.store as storage_module
from lakenodes import Lake, NodeRunError, run_many, use_lake
from lakenodes.catalog import catalog
from lakenodes.errors import WatermarkMovedError
from lakenodes.lake._scan import add_actions
from lakenodes.lake.location import lake_filesystem
from lakenodes.lake.store import TableStore
from lakenodes.lake.table_removal import stored_files

DELAY = 0.15  # seconds between a write attempt's decision and its commit (widens the race window)


# -- helpers ----------------------------------------------------------------------------------------
def log_actions(lake: Lake, uri: str) -> list[tuple[int, dict[str, Any]]]:
    """Every action of every commit file of the table at ``uri``, with its version."""
    filesystem, root = lake_filesystem(lake, uri)
    infos = filesystem.get_file_info(pafs.FileSelector(f"{root}/_delta_log", allow_not_found=True))
    actions = []
    for info in sorted((i for i in infos if i.path.endswith(".json")), key=lambda i: i.path):
        version = int(info.base_name.split(".")[0])
        with filesystem.open_input_stream(info.path) as stream:
            actions += [(version, json.loads(line)) for line in stream.read().decode().splitlines() if line.strip()]
    return actions


def table_ids(lake: Lake, uri: str) -> list[tuple[int, str]]:
    """(version, metaData.id) of every commit that (re)defines the table."""
    return [(version, action["metaData"]["id"]) for version, action in log_actions(lake, uri) if "metaData" in action]


def delayed_commits(monkeypatch: pytest.MonkeyPatch, delay: float = DELAY) -> None:
    """Sleep ``delay`` inside every blind-append write, after its decision, before its commit."""
    real = storage_module.write_deltalake

    def slow_write(*args: Any, **kwargs: Any) -> Any:
        time.sleep(delay)
        return real(*args, **kwargs)

    monkeypatch.setattr(storage_module, "write_deltalake", slow_write)


def overlapping_batches(workers: int) -> tuple[list[str], list[list[str]]]:
    universe = assets(workers)
    return universe, [[universe[i], universe[(i + 1) % workers]] for i in range(workers)]


def assert_one_table(lake: Lake, uri: str) -> None:
    ids = table_ids(lake, uri)
    assert len(ids) == 1 and ids[0][0] == 0, f"the table was (re)created more than once: {ids}"


# -- 1. overlapping appenders in threads ------------------------------------------------------------
def threaded_rounds(lake: Lake, workers: int, runs: int) -> None:
    """``workers`` threads with pairwise-overlapping batches append the same new rows at the same
    moment, ``runs`` rounds (a barrier before each)."""
    universe, batches = overlapping_batches(workers)
    barrier, errors = threading.Barrier(workers), []

    def work(batch: list[str]) -> None:
        with use_lake(lake):
            for _ in range(runs):
                barrier.wait(timeout=120)
                try:
                    appender(batch, last_day=runs).run()
                except Exception as error:  # reported below
                    errors.append(repr(error))

    threads = [threading.Thread(target=work, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors[:3]
    with use_lake(lake):
        node = appender(batches[0])
        assert_table_exact(lake, node, universe, runs)
        assert_one_table(lake, node.table_uri)


def test_overlapping_appenders_in_threads_never_duplicate_local(tmp_path, monkeypatch):
    delayed_commits(monkeypatch)
    threaded_rounds(Lake(tmp_path / "lake"), workers=3, runs=4)


@pytest.mark.slow
@pytest.mark.s3
def test_overlapping_appenders_in_threads_never_duplicate_on_s3(s3_server, monkeypatch):
    delayed_commits(monkeypatch)
    threaded_rounds(s3_server.new_lake(), workers=3, runs=4)


def executor_rounds(lake: Lake, submit_round: Callable[[list[DailyBatch]], None], workers: int, runs: int) -> None:
    universe, batches = overlapping_batches(workers)
    with use_lake(lake):
        for _ in range(runs):
            submit_round([appender(batch, last_day=runs) for batch in batches])
        node = appender(batches[0])
        assert_table_exact(lake, node, universe, runs)
        assert_one_table(lake, node.table_uri)


def test_overlapping_appenders_on_a_thread_pool(tmp_path, monkeypatch):
    delayed_commits(monkeypatch)
    with ThreadPoolExecutor(3) as pool:
        executor_rounds(Lake(tmp_path / "lake"), lambda nodes: run_many(nodes, executor=pool), workers=3, runs=3)


def test_overlapping_appenders_on_dask_threads(tmp_path, monkeypatch):
    dask = pytest.importorskip("dask")
    delayed_commits(monkeypatch)

    def one_round(nodes: list[DailyBatch]) -> None:
        dask.compute(*[dask.delayed(node.run)() for node in nodes], scheduler="threads", num_workers=3)

    executor_rounds(Lake(tmp_path / "lake"), one_round, workers=3, runs=3)


def test_overlapping_appenders_on_in_process_dask_workers(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    delayed_commits(monkeypatch)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=3, dashboard_address=None) as client:
        executor_rounds(Lake(tmp_path / "lake"), lambda nodes: run_many(nodes, executor=client.get_executor()),
                        workers=3, runs=3)


# -- 2. concurrent creation: one table, one id --------------------------------------------------------
def create_in_threads(lake: Lake, trials: int, threads: int) -> None:
    schema = expected_rows(["A"], 1, set()).to_arrow().schema
    for trial in range(trials):
        store = TableStore(lake, f"created_{trial}")
        barrier = threading.Barrier(threads)

        def create(store: TableStore = store, barrier: threading.Barrier = barrier) -> None:
            barrier.wait(timeout=60)
            store.ensure_created(schema, ("time_index", "unique_identifier"))

        with ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(create) for _ in range(threads)]:
                future.result(timeout=120)
        assert_one_table(lake, store.uri)


def test_concurrent_creation_in_threads_makes_one_table_local(tmp_path):
    create_in_threads(Lake(tmp_path / "lake"), trials=5, threads=4)


def create_tables(uri: str, env: dict[str, str], trials: int, start, results) -> None:
    """Child process: create tables created_0.. at the same moment as the other children."""
    import os

    os.environ.update(env)
    outcome: list[str] = []
    try:
        schema = expected_rows(["A"], 1, set()).to_arrow().schema
        lake = Lake(uri)
        for trial in range(trials):
            start.wait(timeout=120)
            TableStore(lake, f"created_{trial}").ensure_created(schema, ("time_index", "unique_identifier"))
    except Exception as error:  # reported to the parent
        outcome.append(repr(error))
    results.put(outcome)


def create_in_processes(lake: Lake, env: dict[str, str], trials: int, processes: int) -> None:
    outcomes = in_processes(create_tables, [(lake.uri, env, trials)] * processes, timeout=300)
    assert not [error for outcome in outcomes for error in outcome]
    for trial in range(trials):
        assert_one_table(lake, TableStore(lake, f"created_{trial}").uri)


@pytest.mark.slow
def test_concurrent_creation_in_processes_makes_one_table_local(tmp_path):
    create_in_processes(Lake(tmp_path / "lake"), {}, trials=5, processes=4)


@pytest.mark.slow
@pytest.mark.s3
def test_concurrent_creation_makes_one_table_on_s3(s3_server):
    lake = s3_server.new_lake()
    create_in_threads(lake, trials=5, threads=4)
    create_in_processes(s3_server.new_lake(), s3_server.env, trials=5, processes=4)


def test_first_runs_in_threads_create_one_table_and_lose_nothing(tmp_path):
    """Four updaters of a table that does not exist yet, in threads: one CREATE, all rows."""
    lake = Lake(tmp_path / "lake")
    universe = assets(8)
    batches = [universe[i::4] for i in range(4)]
    with use_lake(lake), ThreadPoolExecutor(4) as pool:
        run_many([appender(batch, days_per_run=3, last_day=3) for batch in batches], executor=pool)
        node = appender(batches[0])
        assert_table_exact(lake, node, universe, 3)
        assert_one_table(lake, node.table_uri)


@pytest.mark.slow
def test_first_runs_in_processes_of_the_same_rows_create_one_table_without_duplicates(tmp_path):
    """Four processes run the first update of the same new table with the same rows at the same
    moment: one creates it (version 0), the others find it and append nothing twice."""
    lake = Lake(tmp_path / "lake")
    universe = assets(3)
    outcomes = run_jobs(lake, {}, [Job(universe, 1, last_day=1)] * 4, timeout=300)
    assert not [outcome.errors for outcome in outcomes if outcome.errors]
    with use_lake(lake):
        node = appender(universe)
        assert_table_exact(lake, node, universe, 1)
        assert_one_table(lake, node.table_uri)


# -- 3. a table reset under a long-lived process --------------------------------------------------------
def rebuild(uri: str, env: dict[str, str], batch: list[str], runs: int, start, results) -> None:
    """Child process ("another machine"): ``runs`` runs of an appender of ``batch``."""
    import os

    os.environ.update(env)
    try:
        start.wait(timeout=60)
        with use_lake(Lake(uri)):
            for _ in range(runs):
                appender(batch).run()
        results.put("")
    except Exception as error:  # reported to the parent
        results.put(repr(error))


def remove_table(lake: Lake, uri: str) -> None:
    filesystem, root = lake_filesystem(lake, uri)
    if lake.is_local:
        shutil.rmtree(root)
    else:
        filesystem.delete_dir(root)


def test_removed_table_is_recreated_by_the_next_run(tmp_path):
    lake = Lake(tmp_path / "lake")
    with use_lake(lake):
        appender(["A"], days_per_run=100, last_day=3).run()
        for _ in range(2):
            appender(["A"]).run()  # days 4, 5: this process caches the table at version 3
        node = appender(["A"])
        remove_table(lake, node.table_uri)
        appender(["A"], days_per_run=100, last_day=4).run()  # old code: committed day 4 alone at version 4
        assert_table_exact(lake, node, ["A"], 4)
        assert_one_table(lake, node.table_uri)


@pytest.mark.parametrize(("mine", "theirs", "their_runs", "expected"), [
    # the rebuilt table has fewer versions than the cached one: every refresh used to fail
    (3, ["A"], 1, {"A": 2}),
    # it has more: the refresh used to replay its later commits on top of the old state (A lost day 1)
    (1, ["B"], 3, {"A": 1, "B": 3}),
], ids=["fewer-versions", "more-versions"])
def test_table_rebuilt_by_another_process_is_reopened(tmp_path, mine, theirs, their_runs, expected):
    lake = Lake(tmp_path / "lake")
    with use_lake(lake):
        for _ in range(mine):
            appender(["A"]).run()
        node = appender(["A"])
        remove_table(lake, node.table_uri)
        assert in_processes(rebuild, [(lake.uri, {}, theirs, their_runs)], timeout=120) == [""]
        appender(["A"]).run()
        rows = stored_rows(lake, node)
        assert rows.group_by("unique_identifier").len().sort("unique_identifier").rows() == sorted(expected.items())
        wanted = expected_rows(["A"], expected["A"], set()).vstack(
            expected_rows(["B"], expected.get("B", 0), set())).sort(["unique_identifier", "time_index"])
        assert rows.select(wanted.columns).equals(wanted)
        assert_one_table(lake, node.table_uri)


# -- 4. app transactions carry lastUpdated and expire -------------------------------------------------
def test_every_app_transaction_carries_last_updated(tmp_path):
    lake = Lake(tmp_path / "lake")
    with use_lake(lake):
        appender(["A", "B"]).run()
        appender(["A", "B"]).run()
        TableStore(lake, appender(["A"]).storage_hash).delete_after(day(2))
        uris = [appender(["A"]).table_uri, lake.catalog_uri("runs")]
    transactions = [action["txn"] for uri in uris for _, action in log_actions(lake, uri) if "txn" in action]
    assert len(transactions) >= 6
    assert all(isinstance(txn.get("lastUpdated"), int) for txn in transactions), transactions


@pytest.mark.slow
def test_expired_app_transactions_leave_the_checkpoint(tmp_path, monkeypatch):
    """Commits stamped 30..16 days ago (past the 14-day retention) leave no app id in a checkpoint;
    today's stay."""
    lake = Lake(tmp_path / "lake")
    now = watermarks_module.now_ms()
    batch = assets(20)
    with use_lake(lake):
        for age in range(30, 15, -1):  # 15 old daily runs of 20 assets
            monkeypatch.setattr(watermarks_module, "now_ms", lambda age=age: now - age * 86_400_000)
            appender(batch).run()
        monkeypatch.setattr(watermarks_module, "now_ms", lambda: now)
        old_ids = {action["txn"]["appId"] for _, action in log_actions(lake, appender(batch).table_uri)
                   if "txn" in action}
        appender(batch[:5]).run()  # today: one write id, the identity ids of 5 assets
        store = TableStore(lake, appender(batch).storage_hash)
        table = store.table()
        table.create_checkpoint()
    old_write_ids = {app_id for app_id in old_ids if app_id.startswith("lakenodes-")}
    assert len(old_write_ids) == 15 and len(old_ids) == 15 + 20
    _, root = lake_filesystem(lake, store.uri)
    checkpoint = pq.read_table(f"{root}/_delta_log/{table.version():020d}.checkpoint.parquet")
    kept = [row for row in checkpoint.column("txn").to_pylist() if row]
    assert len(kept) == 6, kept  # today's write id and the 5 identity ids refreshed today
    assert all(row["lastUpdated"] >= now for row in kept)
    assert not {row["appId"] for row in kept} & old_write_ids
    reopened = DeltaTable(store.uri)
    assert all(reopened.transaction_version(app_id) is None for app_id in old_write_ids)


# -- 5. a tail delete between update() and the write -------------------------------------------------
class DeletingBatch(DailyBatch):
    """An appender whose update() tail-deletes its own table (as another user would) after reading
    the statistics and before returning its rows: one delete per call while ``cuts`` lasts."""

    cuts: list[dt.datetime] = []

    def update(self):
        rows = super().update()
        if DeletingBatch.cuts:
            TableStore(self.lake, self.storage_hash).delete_after(DeletingBatch.cuts.pop(0))
        return rows


def deleting(batch: Sequence[str], cuts: Sequence[dt.datetime] = (), **config: Any) -> DeletingBatch:
    DeletingBatch.cuts = list(cuts)
    return DeletingBatch(BatchConfig(asset_batch=list(batch), offset_start=day(0), **config))


def test_tail_delete_after_update_read_its_watermark_leaves_no_gap(tmp_path):
    lake = Lake(tmp_path / "lake")
    with use_lake(lake):
        deleting(["A", "B"], days_per_run=11, last_day=11).run()
        node = deleting(["A", "B"], cuts=[day(6)])  # update() reads day 11, produces day 12, deletes >= day 6
        _, written = node.run()  # the write finds the watermarks moved back to day 5: computes again
        assert_table_exact(lake, node, ["A", "B"], 6)  # old code: days 1..5 and 12, a permanent gap
        assert written.height == 2 and DeletingBatch.cuts == []


def test_watermarks_moving_back_on_every_computation_fail_clearly(tmp_path):
    lake = Lake(tmp_path / "lake")
    with use_lake(lake):
        deleting(["A", "B"], days_per_run=11, last_day=11).run()
        node = deleting(["A", "B"], cuts=[day(9), day(7), day(5)])  # every computation's write finds an earlier one
        with pytest.raises(NodeRunError, match="during write: WatermarkMovedError") as raised:
            node.run()
        assert isinstance(raised.value.cause, WatermarkMovedError)
        assert raised.value.cause.identities == [("A",), ("B",)]
        assert node.storage_hash in str(raised.value)
        assert_table_exact(lake, node, ["A", "B"], 4)  # only the deletes happened: nothing was written
        errors = [run for run in catalog.run_history(lake, node.update_hash) if run["status"] == "error"]
        assert len(errors) == 1 and "WatermarkMovedError" in errors[0]["error"]


class DroppedBatch(DailyBatch):
    """An appender whose update() removes its own table (as a drop by another process does) after
    reading the statistics and before returning its rows, once per entry of ``drops``: with
    "looked", this process then looks at the table and finds it missing (as its registration
    may); with "lazy", the rows come as a LazyFrame (a streamed write)."""

    drops: list[str] = []

    def update(self):
        rows = super().update()
        if not DroppedBatch.drops:
            return rows
        how = DroppedBatch.drops.pop(0)

        def drop() -> None:
            remove_table(self.lake, self.table_uri)
            if "looked" in how:
                assert TableStore(self.lake, self.storage_hash).table() is None

        if how.startswith("mid-stream"):  # removed while the stream is written: after its first batch
            def batches():
                yield from rows.head(1).to_arrow().to_batches()
                drop()
                yield from rows.tail(-1).to_arrow().to_batches()

            return pa.RecordBatchReader.from_batches(rows.to_arrow().schema, batches())
        drop()
        return rows.lazy() if "lazy" in how else rows


@pytest.mark.parametrize("how", ["unseen", "looked", "unseen-lazy", "looked-lazy", "mid-stream",
                                 "mid-stream-looked"])
def test_a_table_dropped_after_update_read_its_watermark_is_created_again_with_all_its_rows(tmp_path, how):
    """Regression (CI, stage 2 of 48f55e0: test_a_drop_while_another_process_keeps_appending... read a
    table holding day 11 alone): a run whose table was dropped after its update() read the
    watermarks, and which found it missing before its write, created the table holding only the
    rows computed after the old watermarks. The write now finds every watermark gone and the run
    computes its rows again, from the start."""
    lake = Lake(tmp_path / "lake")
    with use_lake(lake):
        DroppedBatch.drops = []
        DroppedBatch(BatchConfig(asset_batch=["A", "B"], offset_start=day(0), days_per_run=5, last_day=5)).run()
        DroppedBatch.drops = [how]
        node = DroppedBatch(BatchConfig(asset_batch=["A", "B"], offset_start=day(0), days_per_run=100, last_day=6))
        node.run()  # update() read day 5 and produced day 6; the write finds no table
        assert DroppedBatch.drops == []
        assert_table_exact(lake, node, ["A", "B"], 6)  # old code, once looked: day 6 alone
        assert_one_table(lake, node.table_uri)
        data_files = {path for path, _ in stored_files(lake, node.table_uri) if path.endswith(".parquet")
                      and not path.startswith(("_delta_log/", "_lakenodes/"))}
        assert data_files == set(add_actions(DeltaTable(node.table_uri))["path"].to_pylist())  # none left by a discarded stream


# -- 6. a commit whose answer was lost reports the rows it stored ---------------------------------------
@pytest.mark.slow
@pytest.mark.s3
def test_lost_commit_answer_reports_the_rows_it_stored(s3_server):
    from faultproxy import FaultProxy

    direct = s3_server.new_lake()
    with use_lake(direct):
        appender(["A", "B", "C"]).run()
        node = appender(["A", "B", "C"])
        version = node.store.table().version()
    with FaultProxy(s3_server.endpoint_url, seed=1) as proxy:
        faulty = Lake(direct.uri, storage_options={**s3_server.storage_options, "AWS_ENDPOINT_URL": proxy.endpoint_url,
                                                   "max_retries": "1", "timeout": "5s"})
        # every answer to the next commit file is lost (the commit itself lands)
        proxy.configure(lost_response=1.0, methods=("PUT",), paths=(f"_delta_log/{version + 1:020d}.json",))
        with use_lake(faulty):
            _, written = appender(["A", "B", "C"]).run()
        assert proxy.counts["lost_response"] >= 1
    assert written.height == 3
    assert_table_exact(direct, node, ["A", "B", "C"], 2)
    runs = [run for run in catalog.run_history(direct, node.update_hash) if run["status"] == "success"]
    assert [run["rows_written"] for run in runs] == [3, 3]  # old code recorded 0 for the second run
