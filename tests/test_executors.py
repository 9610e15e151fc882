"""run(executor=...) and run_many(...) on a spawn process pool and a Dask LocalCluster match a serial run."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import subprocess
import sys
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl
import pytest
from journal_nodes import daily, journal, stored_rows
from pydantic import Field

from lakenodes import (
    ConfigurationError,
    DataNode,
    DataNodeConfiguration,
    Lake,
    NodeRunError,
    RunSummary,
    run_many,
    set_default_frame,
    use_lake,
)

UTC = dt.timezone.utc
DAYS = [dt.datetime(2024, 3, 1, tzinfo=UTC) + dt.timedelta(days=i) for i in range(30)]


def value(uid: str, day: dt.datetime) -> float:
    return float(zlib.crc32(f"{uid}|{day:%Y-%m-%d}".encode()) % 10_000) / 100


class ShardConfig(DataNodeConfiguration):
    uids: list[str] = Field(..., json_schema_extra={"update_only": True})


class ShardedPrices(DataNode):
    """Deterministic prices; several shards (update_only uids) write one table."""

    def dependencies(self):
        return {}

    def get_asset_list(self):
        return list(self.config.uids)

    def update(self) -> pl.DataFrame:
        stats = self.update_statistics
        rows = [(day, uid, value(uid, day)) for uid in self.config.uids for day in DAYS
                if day > stats.get_last_update_index_2d(uid)]
        return pl.DataFrame(rows, schema={"time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String,
                                          "close": pl.Float64}, orient="row")


class IndexConfig(DataNodeConfiguration):
    shards: list[list[str]]


class EqualWeightIndex(DataNode):
    """Average of all shards per day: depends on every shard (independent branches)."""

    def __init__(self, config: IndexConfig, **kwargs):
        self.shards = [ShardedPrices(ShardConfig(uids=uids, offset_start=DAYS[0] - dt.timedelta(days=1)))
                       for uids in config.shards]
        super().__init__(config, **kwargs)

    def dependencies(self):
        return {f"shard_{i}": shard for i, shard in enumerate(self.shards)}

    def update(self) -> pl.DataFrame:
        prices = self.shards[0].get_df_between_dates()
        return prices.group_by("time_index").agg(pl.col("close").mean().alias("level")).sort("time_index")


class BrokenShard(ShardedPrices):
    def update(self) -> pl.DataFrame:
        raise ValueError("feed missing")


SHARDS = [["AAA", "BRK/B"], ["A B", "é=1%"], ["CCC"], ["DDD", "EEE"]]


def build() -> EqualWeightIndex:
    return EqualWeightIndex(IndexConfig(shards=SHARDS))


def snapshot(node: DataNode) -> pl.DataFrame:
    return node.get_df_between_dates()


@pytest.fixture
def serial_result(tmp_path):
    with use_lake(tmp_path / "serial"):
        index = build()
        index.run()
        return snapshot(index), snapshot(index.shards[0])


def test_process_pool_matches_serial(tmp_path, serial_result):
    with use_lake(tmp_path / "pool"):
        index = build()
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            err, summary = index.run(executor=pool)  # a summary: only it travels back from the worker
        assert err is False and isinstance(summary, RunSummary) and summary.frame is None
        assert summary.rows_written == len(DAYS) and summary.update_hash == index.update_hash
        assert summary.table_version == index.store.table().version() and summary.duration_s > 0
        assert snapshot(index).equals(serial_result[0])
        assert snapshot(index.shards[0]).equals(serial_result[1])
        assert snapshot(index.shards[0]).height == len(DAYS) * 7


def test_run_many_sharded_updaters_on_pool(tmp_path, serial_result):
    with use_lake(tmp_path / "many"):
        shards = [ShardedPrices(ShardConfig(uids=uids, offset_start=DAYS[0] - dt.timedelta(days=1))) for uids in SHARDS]
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            summaries = run_many(shards, executor=pool)
        assert sorted(s.rows_written for s in summaries.values()) == sorted(len(u) * len(DAYS) for u in SHARDS)
        assert all(s.frame is None and s.rows_upserted == 0 for s in summaries.values())  # no frame shipped back
        assert {s.storage_hash for s in summaries.values()} == {shards[0].storage_hash}
        assert snapshot(shards[0]).equals(serial_result[1])
        again = run_many(shards)  # serial, nothing new
        assert all(s.rows_written == 0 and s.table_version is None for s in again.values())


def test_frames_only_when_asked(tmp_path):
    with use_lake(tmp_path / "frames"):
        index = build()
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            err, written = index.run(executor=pool, return_frames=True)
        assert err is False and isinstance(written, pl.DataFrame) and written.height == len(DAYS)
        _, summary = build().run(return_frames=False)  # serial: a summary when asked (the index restates
        assert isinstance(summary, RunSummary) and summary.frame is None  # every row as stored: no commit)
        assert (summary.rows_upserted, summary.rows_unchanged, summary.table_version) == (0, len(DAYS), None)
        with pytest.raises(ConfigurationError, match="return_frames"):
            index.run(return_frames="yes")
    with use_lake(tmp_path / "shards"):
        shards = [ShardedPrices(ShardConfig(uids=uids, offset_start=DAYS[-2])) for uids in SHARDS]
        frames = run_many(shards, return_frames=True)
        assert sorted(frame.height for frame in frames.values()) == sorted(len(u) for u in SHARDS)


class FrameKindProbe(DataNode):
    """Stores the module of the frame its own read returns inside update() (where a seed's code
    calls ``.iloc``): the frame kind in effect in the process that runs it."""

    def dependencies(self):
        return {}

    def update(self):
        kind = type(self.get_df_between_dates()).__module__.split(".")[0]
        return pl.DataFrame({"time_index": [DAYS[0]], "kind": [kind]})


def test_set_default_frame_reaches_the_spawned_workers_a_run_submits_to(tmp_path):
    """README: ``set_default_frame("pandas")`` gives the seeds' pandas shape everywhere; a spawned
    worker started without it, so update() met a polars frame there ('iloc' failed)."""
    set_default_frame("pandas")
    try:
        with use_lake(tmp_path / "frames"), \
                ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            probe = FrameKindProbe(ShardConfig(uids=["AAA"]))
            run_many([probe], executor=pool)
            assert pl.read_delta(probe.table_uri)["kind"].to_list() == ["pandas"]
    finally:
        set_default_frame(None)


class TwoArgumentError(Exception):
    """An exception pickle cannot rebuild: its ``__init__`` takes other arguments than its message."""

    def __init__(self, code: int, detail: str):
        super().__init__(f"code={code}")
        self.detail = detail


class UnpicklableFailure(ShardedPrices):
    def update(self):
        raise TwoArgumentError(42, "feed")


def test_an_exception_pickle_cannot_rebuild_names_its_node_and_the_others_run(tmp_path):
    """It broke the process pool: every node then failed "during executor: BrokenProcessPool",
    including an independent one that never ran, and the cause was only in the run records."""
    with use_lake(tmp_path / "unpicklable"):
        bad, good = UnpicklableFailure(ShardConfig(uids=["AAA"])), ShardedPrices(ShardConfig(uids=["BBB"]))
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            with pytest.raises(NodeRunError) as raised:
                run_many([bad, good], executor=pool)
        assert list(raised.value.failures) == [bad.update_hash] and list(raised.value.completed) == [good.update_hash]
        assert str(raised.value.failures[bad.update_hash]).endswith(
            "failed during update: RuntimeError: TwoArgumentError: code=42 (the original exception could not be pickled)")
        assert stored_rows(good) > 0


def test_failure_in_worker_names_node_and_phase(tmp_path):
    with use_lake(tmp_path / "broken"):
        broken = BrokenShard(ShardConfig(uids=["AAA"]))
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            with pytest.raises(NodeRunError, match="BrokenShard.*update.*feed missing"):
                run_many([broken], executor=pool)


def test_dask_local_cluster_matches_serial(tmp_path, serial_result):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client, use_lake(tmp_path / "dask"):
            index = build()
            err, _ = index.run(executor=client.get_executor())
            assert err is False
            assert snapshot(index).equals(serial_result[0])
            assert snapshot(index.shards[0]).equals(serial_result[1])


@pytest.mark.parametrize("processes", [False, True], ids=["in-process-workers", "worker-processes"])
def test_dask_runs_every_submission(tmp_path, processes):
    """Regression: submitted with Dask's default ``pure=True``, the same node got the same task key
    on every run_many call, and Dask handed back the previous result without calling update()."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=processes, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client, use_lake(tmp_path / "lake"):
            node = daily(tmp_path, "tick")  # one new row (the day after the watermark) per update()
            reported = [run_many([node], executor=client.get_executor())[node.update_hash].rows_written
                        for _ in range(5)]
    assert reported == [1] * 5
    assert len(journal(tmp_path)) == 5
    assert stored_rows(node) == 5


def test_on_progress_reports_every_node(tmp_path):
    calls = []
    with use_lake(tmp_path / "progress"):
        run_many([build()], on_progress=lambda done, total, node: calls.append((done, total, type(node).__name__)))
    assert calls[0] == (0, len(SHARDS) + 1, "NoneType")
    assert [done for done, _, _ in calls] == list(range(len(SHARDS) + 2))
    assert calls[-1][2] == "EqualWeightIndex"  # dependencies first, the root last


def test_cli_run_with_workers(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "lakenodes", "--lake", str(tmp_path / "cli"), "--json", "run",
               "examples.tutorial_nodes:DailyRandomAddition", "--config", '{"mean": 0, "std": 1}', "--workers", "2"]
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows_written"] == 1


def test_on_phase_reports_each_phase_in_order(tmp_path):
    seen = []
    with use_lake(tmp_path / "phases"):
        node = ShardedPrices(ShardConfig(uids=["AAA"], offset_start=DAYS[0] - dt.timedelta(days=1)))
        run_many([node], on_phase=lambda node, phase: seen.append((type(node).__name__, phase)))
    assert seen == [("ShardedPrices", phase)
                    for phase in ("registration", "statistics", "update", "validation", "write", "catalog")]


def test_a_node_that_computed_or_ran_already_still_goes_to_a_process_pool(tmp_path):
    """Regression: once update_statistics was computed (printed, or after a serial run) the node no
    longer pickled ('cannot pickle _thread.lock'), and run_many aborted every other node."""
    import threading

    with use_lake(tmp_path / "stats"):
        ran = ShardedPrices(ShardConfig(uids=["AAA"], offset_start=DAYS[-3]))
        ran.run()
        looked_at = ShardedPrices(ShardConfig(uids=["CCC"], offset_start=DAYS[-3]))
        assert looked_at.update_statistics.asset_list is not None  # computed, cached on the node
        unpicklable = ShardedPrices(ShardConfig(uids=["DDD"], offset_start=DAYS[-3]))
        unpicklable.guard = threading.Lock()  # something of the user's that cannot travel
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            with pytest.raises(NodeRunError) as raised:
                run_many([ran, looked_at, unpicklable], executor=pool)
        failure = raised.value.failures[unpicklable.update_hash]
        assert failure.phase == "executor" and "pickle" in str(failure) and "ShardedPrices" in str(failure)
        assert set(raised.value.completed) == {ran.update_hash, looked_at.update_hash}
        stored = ran.get_df_between_dates()  # the shards share one table
        assert sorted(stored["unique_identifier"].unique()) == ["AAA", "CCC"] and stored.height == 4


def test_a_node_created_outside_every_block_runs_and_reads_in_the_block_it_is_used_in(tmp_path, monkeypatch):
    """Built with no lake and no block (the default lake), then run inside ``use_lake``: the block's
    lake gets the rows, serially and on a spawn pool; the default lake stays empty."""
    monkeypatch.chdir(tmp_path)  # the default lake would be ./lake
    index = build()
    shards = [ShardedPrices(ShardConfig(uids=uids, offset_start=DAYS[0] - dt.timedelta(days=1))) for uids in SHARDS]
    with use_lake(tmp_path / "serial") as serial:
        index.run()
        assert index.lake == serial and snapshot(index).height == len(DAYS)
    with use_lake(tmp_path / "pool") as pooled, \
            ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        summaries = run_many(shards, executor=pool)
        assert sum(s.rows_written for s in summaries.values()) == sum(len(uids) for uids in SHARDS) * len(DAYS)
        assert shards[0].lake == pooled and snapshot(shards[0]).height == sum(len(u) for u in SHARDS) * len(DAYS)
    assert not (tmp_path / "lake").exists()
    with use_lake(tmp_path / "empty"):  # statistics follow the lake too: nothing stored there
        assert index.update_statistics.max_time_index_value is None


def test_a_node_created_inside_a_block_keeps_that_lake(tmp_path):
    with use_lake(tmp_path / "first") as first:
        index = build()
    with use_lake(tmp_path / "second"):
        index.run()
    assert index.lake == first and snapshot(index).height == len(DAYS)
    assert not (tmp_path / "second").exists()


@pytest.mark.parametrize("pooled", [False, True])
def test_run_many_of_a_node_given_a_lake_runs_the_dependencies_its_init_built_in_that_lake(tmp_path, monkeypatch,
                                                                                          pooled):
    """``EqualWeightIndex(config, lake=lake)`` builds its shards without a lake; ``run_many([index])`` ran
    them in the default ./lake (the index then read empty shards from its own lake) while
    ``index.run()`` ran them in the index's lake. Both now run the tree in it, as the same rows."""
    monkeypatch.chdir(tmp_path)  # the default lake would be ./lake
    with use_lake(tmp_path / "reference"):
        reference = build()
        reference.run()
    index = EqualWeightIndex(IndexConfig(shards=SHARDS), lake=Lake(str(tmp_path / "given")))
    if pooled:
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            summaries = run_many([index], executor=pool)
    else:
        summaries = run_many([index])
    assert summaries[index.update_hash].rows_written == len(DAYS)
    assert not (tmp_path / "lake").exists()
    with use_lake(index.lake):  # the shards have no lake of their own
        assert snapshot(index).equals(snapshot(reference))
        assert snapshot(index.shards[0]).equals(snapshot(reference.shards[0]))


GUARDED_SCRIPT = '''
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from lakenodes import NodeRunError, run_many, use_lake
from test_executors import SHARDS, ShardConfig, ShardedPrices

if __name__ == "__main__":
    class ScriptShard(ShardedPrices):  # only the script's main block defines it: a spawned worker cannot
        pass

    with use_lake(LAKE), ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        nodes = [ScriptShard(ShardConfig(uids=SHARDS[0])), ShardedPrices(ShardConfig(uids=SHARDS[2]))]
        try:
            run_many(nodes, executor=pool)
        except NodeRunError as error:
            print("ERROR", error)
            print("COMPLETED", sorted(summary.rows_written for summary in error.completed.values()))
'''


def test_a_node_class_the_pool_workers_cannot_import_is_named_and_the_pool_runs_the_others(tmp_path):
    """A class defined under ``if __name__ == "__main__":`` broke a spawn pool: the worker died unpickling
    it, the run failed with ``BrokenProcessPool: A process in the process pool was terminated abruptly``
    (the cause only in a worker's traceback), blamed on every node the pool ran. Now that node fails
    naming its class and the fix, and the pool runs the other node."""
    script = tmp_path / "guarded.py"
    script.write_text(GUARDED_SCRIPT.replace("LAKE", repr(str(tmp_path / "lake"))))
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    error = next(line for line in result.stdout.splitlines() if line.startswith("ERROR"))
    assert "ScriptShard(" in error and "failed during executor: ImportError" in error, error
    assert "Can't get attribute 'ScriptShard'" in error and '`if __name__ == "__main__":` block' in error, error
    assert "BrokenProcessPool" not in result.stdout
    assert f"COMPLETED [{len(DAYS)}]" in result.stdout  # the importable node ran


INTERACTIVE_SCRIPT = '''
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from lakenodes import NodeRunError, run_many, use_lake
from test_executors import SHARDS, ShardConfig, ShardedPrices

class CellShard(ShardedPrices):  # as a notebook cell defines it: in a __main__ no worker can import
    pass

with use_lake(LAKE), ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
    try:
        run_many([CellShard(ShardConfig(uids=SHARDS[0]))], executor=pool)
    except NodeRunError as error:
        print("ERROR", error)
'''


def test_a_node_class_of_a_notebook_cell_on_a_process_pool_gets_the_notebook_fix(tmp_path):
    """A notebook cell (like the REPL or ``python -c``) defines its classes in a ``__main__`` with no
    file, which spawned workers cannot import: the error told the user to move the class out of a
    script's ``if __name__ == "__main__":`` block, which a notebook does not have. It now says the
    class is defined in an interactive session and what to do instead."""
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])}
    code = INTERACTIVE_SCRIPT.replace("LAKE", repr(str(tmp_path / "lake")))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    error = next(line for line in result.stdout.splitlines() if line.startswith("ERROR"))
    assert "Can't get attribute 'CellShard'" in error, error
    assert "CellShard is defined in an interactive session (a notebook cell" in error, error
    assert "move it into a .py module" in error and "if __name__" not in error, error
