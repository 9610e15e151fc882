"""What a tree's run tells about each of its nodes: a node skipped for a failed dependency leaves a
``skipped`` run record, ``lakenodes run --no-deps`` runs one node alone, and the ``--json`` failure
document lists the nodes that succeeded, failed and were skipped."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
import time
import types
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from journal_nodes import START, Daily, JournalConfig, daily, stored_rows
from test_run_failures import FAILING_TREE, UnlistedDaily  # a tree whose Feed fails; dependencies() raising
from typer.testing import CliRunner

from lakenodes import Lake, NodeRunError, run_many
from lakenodes.catalog.catalog import run_history
from lakenodes.cli import app


@pytest.fixture(params=["serial", "spawn-pool"])
def executor(request) -> Iterator[ProcessPoolExecutor | None]:
    if request.param == "serial":
        yield None
        return
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def cli_json(lake: Lake, *args: str) -> dict:
    result = CliRunner().invoke(app, ["--lake", lake.uri, "--json", *args])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_a_node_skipped_for_a_failed_dependency_is_recorded_as_skipped(local_lake: Lake, tmp_path: Path,
                                                                        executor) -> None:
    """On a day the upstream failed, its dependents left no run record: ``updates list`` showed their
    previous success as if all were well. They now have a ``skipped`` run naming the dependency that
    stopped them; no table changes, and the next day's run catches up from the stored watermarks."""
    feed = daily(tmp_path, "feed")
    report = daily(tmp_path, "report", {"feed": feed})
    summary = daily(tmp_path, "summary", {"report": report})
    run_many([summary], executor=executor)  # day 1: all succeed

    broken_feed = daily(tmp_path, "feed", failure="vendor down")  # runtime_only: the same node, failing today
    report_today = daily(tmp_path, "report", {"feed": broken_feed})
    newcomer = daily(tmp_path, "newcomer", {"feed": broken_feed})  # never ran before today
    with pytest.raises(NodeRunError, match="vendor down"):
        run_many([daily(tmp_path, "summary", {"report": report_today}), newcomer], executor=executor)

    assert [stored_rows(node) for node in (feed, report, summary, newcomer)] == [1, 1, 1, 0]  # nothing written
    [*_, report_run] = run_history(local_lake, report.update_hash)
    assert (report_run["status"], report_run["rows_written"]) == ("skipped", 0)
    assert report_run["error"].startswith(f"dependency {feed.update_hash} failed: ")
    assert "vendor down" in report_run["error"]
    [*_, summary_run] = run_history(local_lake, summary.update_hash)
    assert summary_run["status"] == "skipped"
    assert summary_run["error"].startswith(f"dependency {report.update_hash} was skipped, as it depends on a failed "
                                           "node: ")
    assert [run["status"] for run in run_history(local_lake, newcomer.update_hash)] == ["skipped"]

    listed = {process["update_hash"]: process for process in cli_json(local_lake, "updates", "list")["results"]}
    assert [listed[node.update_hash]["last_status"] for node in (feed, report, summary, newcomer)] == \
        ["error", "skipped", "skipped", "skipped"]
    assert feed.update_hash in listed[report.update_hash]["last_error"]
    runs = cli_json(local_lake, "updates", "runs", report.update_hash)["results"]
    assert [run["status"] for run in runs] == ["success", "skipped"]
    shown = CliRunner().invoke(app, ["--lake", local_lake.uri, "updates", "list"], env={"COLUMNS": "300"}).stdout
    assert f"{report.update_hash} skipped: dependency {feed.update_hash} failed: " in shown  # why, under the table
    assert f"{feed.update_hash} error: " in shown and "vendor down" in shown

    run_many([summary, newcomer], executor=executor)  # the vendor is back: the skipped records move no watermark
    assert [stored_rows(node) for node in (feed, report, summary, newcomer)] == [2, 2, 2, 1]
    assert summary.get_df_between_dates()["time_index"].to_list() == [START, START.replace(day=2)]
    assert [run["status"] for run in run_history(local_lake, summary.update_hash)] == ["success", "skipped", "success"]


def test_the_skipped_runs_of_a_failed_dependency_are_recorded_in_one_catalog_commit(
        local_lake: Lake, tmp_path: Path, executor, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide tree whose ingest failed recorded each of its skipped dependents in a Delta commit of
    its own on ``_catalog/runs``, one after the other (a day with 100+ skipped nodes spent seconds on
    them). The failure is still recorded at once; the skipped runs, all of them, in one more commit."""
    monkeypatch.setenv("LAKENODES_CATALOG_FOLD_EVERY", "0")  # successes stay pending: only failures commit
    reports = [daily(tmp_path, f"report{k}", {"feed": daily(tmp_path, "feed")}) for k in range(6)]
    top = daily(tmp_path, "top", {report.config.name: report for report in reports})
    run_many([top], executor=executor)

    broken = daily(tmp_path, "feed", failure="vendor down")
    reports_today = {f"report{k}": daily(tmp_path, f"report{k}", {"feed": broken}) for k in range(6)}
    for _day in range(2):  # two days the vendor is down: the first creates the catalog's runs table
        before = runs_version(local_lake)
        with pytest.raises(NodeRunError, match="vendor down"):
            run_many([daily(tmp_path, "top", reports_today)], executor=executor)
    assert runs_version(local_lake) - before == 2  # the feed's failure, then the 7 skipped runs together
    history = [[run["status"] for run in run_history(local_lake, node.update_hash)] for node in [*reports, top]]
    assert history == [["success", "skipped", "skipped"]] * 7
    assert [stored_rows(node) for node in [*reports, top]] == [1] * 7


def runs_version(lake: Lake) -> int:
    """The version of the lake's ``_catalog/runs`` Delta table (-1 before it exists)."""
    try:
        return DeltaTable(f"{lake.uri}/_catalog/runs").version()
    except TableNotFoundError:
        return -1


def test_a_node_whose_dependencies_fail_is_recorded_as_failed(local_lake: Lake, tmp_path: Path, executor) -> None:
    """A node whose ``dependencies()`` raised (its ticker list unavailable) never reached ``run_single``, so
    its failure left no run record: ``updates list`` showed it as never run (or its last success). It is now a failed
    run in phase ``dependencies``, where the user's code raised, and its dependents are recorded as skipped."""
    unlisted = daily(tmp_path, "unlisted")
    downstream = daily(tmp_path, "downstream", {"unlisted": unlisted})
    run_many([downstream], executor=executor)  # yesterday: the list was there

    today = UnlistedDaily(JournalConfig(name="unlisted", journal=str(tmp_path / "journal.txt")))
    assert today.update_hash != unlisted.update_hash  # another class: its own updater
    with pytest.raises(NodeRunError, match="ticker list unavailable"):
        run_many([daily(tmp_path, "downstream", {"unlisted": today})], executor=executor)

    [failed] = run_history(local_lake, today.update_hash)
    assert (failed["status"], failed["rows_written"]) == ("error", 0)
    assert failed["error"].startswith("dependencies: KeyError: 'ticker list unavailable' (at ")
    assert "test_run_failures.py" in failed["error"]
    assert [run["status"] for run in run_history(local_lake, downstream.update_hash)] == ["success", "skipped"]
    listed = {process["update_hash"]: process for process in cli_json(local_lake, "updates", "list")["results"]}
    assert listed[today.update_hash]["last_status"] == "error"


def test_a_node_the_process_pool_could_not_take_is_recorded_as_failed(local_lake: Lake, tmp_path: Path,
                                                                       monkeypatch) -> None:
    """A node that failed on a process pool before it ran (it would not pickle; or a worker could not
    import its class, as a notebook cell's) left no run record, while its dependents were recorded as
    skipped, naming it as failed: ``updates list`` showed it as never run (or its last success). It is
    now a failed run in phase ``executor``, as a node whose ``dependencies()`` raised."""
    unpicklable = daily(tmp_path, "unpicklable")
    unpicklable.guard = threading.Lock()  # something of the user's that cannot travel to a worker
    ghost = types.ModuleType("ghost_nodes")  # importable here, not in the spawned workers
    monkeypatch.setitem(sys.modules, "ghost_nodes", ghost)
    ghost.GhostDaily = type("GhostDaily", (Daily,), {"__module__": "ghost_nodes"})
    unimportable = ghost.GhostDaily(JournalConfig(name="ghost", journal=str(tmp_path / "journal.txt")))
    dependents = [daily(tmp_path, f"after_{name}", {"up": node})
                  for name, node in (("unpicklable", unpicklable), ("ghost", unimportable))]
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with pytest.raises(NodeRunError):
            run_many(dependents, executor=pool)

    for node, cause in ((unpicklable, "TypeError: cannot pickle"), (unimportable, "ImportError: the pool's worker")):
        [failed] = run_history(local_lake, node.update_hash)
        assert (failed["status"], failed["rows_written"]) == ("error", 0)
        assert failed["error"].startswith(f"executor: {cause}")
    assert [[run["status"] for run in run_history(local_lake, node.update_hash)] for node in dependents] == \
        [["skipped"], ["skipped"]]
    listed = {process["update_hash"]: process for process in cli_json(local_lake, "updates", "list")["results"]}
    assert [listed[node.update_hash]["last_status"] for node in (unpicklable, unimportable)] == ["error", "error"]


class WorkerKiller(Daily):
    """Its ``update()`` ends the worker process, as an out-of-memory kill does."""

    def update(self):
        os._exit(137)


def test_nodes_a_dying_worker_process_took_with_it_are_recorded_as_failed(local_lake: Lake, tmp_path: Path) -> None:
    """A pool worker that died (killed, out of memory) broke the pool: the node it ran and the node
    queued behind it failed with ``BrokenProcessPool`` and left no run record, so ``updates list``
    showed their previous run as the last. Each is now a failed run in phase ``executor``, its dependent skipped."""
    dying = WorkerKiller(JournalConfig(name="dying", journal=str(tmp_path / "journal.txt")))
    queued = daily(tmp_path, "queued")
    after = daily(tmp_path, "after", {"up": dying})
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with pytest.raises(NodeRunError) as raised:
            run_many([after, queued], executor=pool)

    assert set(raised.value.failures) == {dying.update_hash, queued.update_hash, after.update_hash}
    for node in (dying, queued):
        [failed] = run_history(local_lake, node.update_hash)
        assert (failed["status"], failed["rows_written"]) == ("error", 0)
        assert failed["error"].startswith("executor: BrokenProcessPool: A process in the process pool was terminated")
    assert [run["status"] for run in run_history(local_lake, after.update_hash)] == ["skipped"]
    assert stored_rows(queued) == 0
    listed = {process["update_hash"]: process for process in cli_json(local_lake, "updates", "list")["results"]}
    assert [listed[node.update_hash]["last_status"] for node in (dying, queued)] == ["error", "error"]


def run_cli(lake: Lake, module: Path, *args: str):
    return CliRunner().invoke(app, ["--lake", lake.uri, "--json", "run", f"{module}:Report", *args])


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_cli_no_deps_runs_the_node_alone(local_lake: Lake, tmp_path: Path, workers: list[str]) -> None:
    """``lakenodes run`` had no way to run one node without its dependencies (Python has
    ``run(update_tree=False)``): with the feed down, the report could not be run. ``--no-deps`` runs
    it alone; its dependency is neither run nor recorded."""
    module = tmp_path / "tree.py"
    module.write_text(FAILING_TREE)
    assert run_cli(local_lake, module, *workers).exit_code == 1  # the tree: the feed fails, the report is skipped

    result = run_cli(local_lake, module, "--no-deps", *workers)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    document = json.loads(result.stdout)
    assert document["node"].endswith("Report") and document["rows_written"] == 1 and document["dependencies"] == []
    runs = cli_json(local_lake, "updates", "runs")["results"]
    feed_runs = [run for run in runs if run["update_hash"].startswith("feed_")]
    report_runs = [run["status"] for run in runs if run["update_hash"] == document["update_hash"]]
    assert [run["status"] for run in feed_runs] == ["error"]  # the tree's run only: --no-deps did not run it
    assert report_runs == ["skipped", "success"]
    assert "--no-deps" in CliRunner().invoke(app, ["run", "--help"]).stdout


DIAMOND = '''
import datetime as dt

import polars as pl
from lakenodes import DataNode, DataNodeConfiguration


class NamedConfig(DataNodeConfiguration):
    name: str


class Node(DataNode):
    """Fails in update() when named "feed"; depends on the nodes TREE lists."""

    Config = NamedConfig

    def __init__(self, config, **kwargs):
        self.deps = {name: Node(NamedConfig(name=name)) for name in TREE[config.name]}
        super().__init__(config, **kwargs)

    def dependencies(self):
        return dict(self.deps)

    def update(self):
        if self.config.name == "feed":
            raise ConnectionError("feed down")
        return pl.DataFrame({"time_index": [dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)], "value": [1.0]})


TREE = {"top": ["mid", "calendar"], "mid": ["feed"], "feed": [], "calendar": []}
'''


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_cli_json_failure_lists_every_node_of_the_tree(local_lake: Lake, tmp_path: Path, workers: list[str]) -> None:
    """``lakenodes --json run``'s failure document said only the first failure's message: a scheduler
    could not tell which nodes ran, failed or were skipped (``NodeRunError`` has them). It now lists
    them, the existing keys unchanged."""
    module = tmp_path / "diamond.py"
    module.write_text(DIAMOND)

    def run(name: str, *args: str) -> dict:
        result = CliRunner().invoke(app, ["--lake", local_lake.uri, "--json", "run", f"{module}:Node", "--config",
                                          json.dumps({"name": name}), *args, *workers])
        assert result.exit_code == 1, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    document = run("top")
    assert list(document) == ["ok", "error", "succeeded", "failed", "skipped"] and document["ok"] is False
    assert list(document["error"]) == ["kind", "message", "rows_stored"]
    [calendar] = document["succeeded"]
    assert calendar["node"] == "diamond.Node" and calendar["rows_written"] == 1 and calendar["table_version"] == 0
    assert calendar["update_hash"].startswith("node_") and calendar["storage_hash"].startswith("node_")
    [feed] = document["failed"]
    assert {key: feed[key] for key in ("node", "phase", "rows_stored")} == \
        {"node": "diamond.Node", "phase": "update", "rows_stored": False}
    assert "failed during update: ConnectionError: feed down" in feed["error"]
    mid, top = document["skipped"]
    assert (mid["dependency"], mid["failed_node"]) == (feed["update_hash"], feed["update_hash"])
    assert (top["dependency"], top["failed_node"]) == (mid["update_hash"], feed["update_hash"])
    assert top["node"] == "diamond.Node" and top["update_hash"] != mid["update_hash"]
    assert document["error"]["message"].endswith(f"not run, as they depend on it: {mid['update_hash']}, "
                                                 f"{top['update_hash']}")

    alone = run("feed", "--no-deps")
    assert (alone["succeeded"], alone["skipped"]) == ([], [])
    assert [node["update_hash"] for node in alone["failed"]] == [feed["update_hash"]]


class KilledOnCue(Daily):
    """Its ``update()`` ends the worker process once the file ``<journal>.go`` exists."""

    def update(self):
        while not Path(f"{self.config.journal}.go").exists():
            time.sleep(0.01)
        os._exit(137)


def test_a_node_submitted_after_a_worker_died_is_recorded_as_failed(local_lake: Lake, tmp_path: Path) -> None:
    """Regression: a node whose dependency finished while another node's worker died was submitted
    to the broken pool: ``run_many`` raised the bare ``BrokenProcessPool`` of ``submit()``, and
    neither that node nor the one whose worker died had a run record."""
    dying = KilledOnCue(JournalConfig(name="dying", journal=str(tmp_path / "journal.txt")))
    fast = daily(tmp_path, "fast")
    after = daily(tmp_path, "after", {"up": fast})

    def progress(done: int, total: int, node) -> None:
        if node is not fast:
            return
        (tmp_path / "journal.txt.go").touch()  # the dying worker goes; the scheduler submits once the pool broke
        while True:
            try:
                pool.submit(int).result()
            except BrokenProcessPool:
                return

    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        with pytest.raises(NodeRunError) as raised:
            run_many([dying, after], executor=pool, on_progress=progress)

    assert set(raised.value.failures) == {dying.update_hash, after.update_hash}
    for node in (dying, after):
        [failed] = run_history(local_lake, node.update_hash)
        assert (failed["status"], failed["error"].split(":")[:2]) == ("error", ["executor", " BrokenProcessPool"])
    assert stored_rows(fast) == 1 and stored_rows(after) == 0
