"""Runs that committed rows but never recorded themselves (killed, or the run record failed, between
the data commit and the run record) are recovered from the table's history: once, with the run id
and rows of their commit, by ``lakenodes updates reconcile`` or (when the process lived on) by the
next run of the table in that process; normal runs never read the history for it."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import signal
import threading
from collections import Counter

import pytest
from test_daily_path import Daily, DailyConfig
from typer.testing import CliRunner

from lakenodes import Lake, clear_caches
from lakenodes.catalog import catalog, reconcile
from lakenodes.cli import app
from lakenodes.errors import RowsStoredError
from lakenodes.lake.versions import table_history

UTC = dt.timezone.utc


def node(lake: Lake) -> Daily:
    return Daily(DailyConfig(name="recover"), lake=lake)  # three rows a run


def runs(lake: Lake) -> list[dict]:
    return catalog.run_history(lake)


def lost_run(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> str:
    """A run whose rows commit but whose run record fails (as on a full disk); its run id."""
    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(catalog, "record_run", refuse)
        with pytest.raises(RowsStoredError):
            node(lake).run()
    last = table_history(node(lake).store.table())[0]
    assert last["operation"] == "append" and last["run_id"] not in {run["run_id"] for run in runs(lake)}
    return last["run_id"]


@pytest.fixture
def history_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The table of every reconciliation a run starts."""
    calls: list[str] = []
    original = reconcile.reconcile_table

    def counted(lake, storage_hash):
        calls.append(storage_hash)
        return original(lake, storage_hash)

    monkeypatch.setattr("lakenodes.runtime.recorder.reconcile_table", counted)
    return calls


def test_normal_runs_never_read_the_history(tmp_path, history_reads) -> None:
    lake = Lake(tmp_path / "lake")
    for _ in range(3):  # a warm process
        node(lake).run()
    for _ in range(2):  # cold processes
        clear_caches()
        node(lake).run()
    assert history_reads == []
    assert [run["status"] for run in runs(lake)] == ["success"] * 5


def test_the_next_run_in_the_same_process_recovers_the_lost_run(tmp_path, monkeypatch, history_reads) -> None:
    lake = Lake(tmp_path / "lake")
    node(lake).run()
    lost = lost_run(lake, monkeypatch)
    node(lake).run()
    assert len(history_reads) == 1
    recovered = [run for run in runs(lake) if run["run_id"] == lost]
    assert len(recovered) == 1 and recovered[0]["status"] == "recovered" and recovered[0]["rows_written"] == 3
    assert "recovered from the table's history" in recovered[0]["error"]
    assert recovered[0]["update_hash"] == node(lake).update_hash
    node(lake).run()  # caught up: no more reads
    assert len(history_reads) == 1
    assert Counter(run["status"] for run in runs(lake)) == {"success": 3, "recovered": 1}


def test_after_a_crash_the_command_recovers_it_once_and_a_second_reconciliation_adds_nothing(
        tmp_path, monkeypatch, history_reads) -> None:
    lake = Lake(tmp_path / "lake")
    node(lake).run()
    node(lake).run()
    lost = lost_run(lake, monkeypatch)
    clear_caches()  # a new process: only the lake is left, and its runs never read the history
    node(lake).run()
    assert history_reads == [] and lost not in {run["run_id"] for run in runs(lake)}
    done = reconcile.reconcile_table(lake, node(lake).storage_hash)  # `lakenodes updates reconcile`
    assert [run["run_id"] for run in done.recovered] == [lost]
    before = runs(lake)
    assert [run["run_id"] for run in before].count(lost) == 1
    again = reconcile.reconcile_table(lake, node(lake).storage_hash)
    assert again.recovered == [] and again.commits_checked == 4
    assert len(runs(lake)) == len(before)
    assert Counter(run["run_id"] for run in runs(lake)).most_common(1)[0][1] == 1


def test_recorded_runs_are_never_recovered(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    for _ in range(3):
        node(lake).run()
    done = reconcile.reconcile_table(lake, node(lake).storage_hash)
    assert done.recovered == [] and done.commits_checked == 3
    assert [run["status"] for run in runs(lake)] == ["success"] * 3


def test_concurrent_reconciliations_record_the_run_once(tmp_path, monkeypatch) -> None:
    lake = Lake(tmp_path / "lake")
    node(lake).run()
    lost = lost_run(lake, monkeypatch)
    barrier = threading.Barrier(3)
    results = []

    def work() -> None:
        barrier.wait()
        results.append(reconcile.reconcile_table(lake, node(lake).storage_hash))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3
    clear_caches()
    ids = [run["run_id"] for run in runs(lake)]
    assert ids.count(lost) == 1 and len(ids) == 2
    stored = catalog.runs_ledger(lake).read().column("run_id").to_pylist()  # the rows themselves, not merged
    assert stored.count(lost) == 1


def test_a_late_run_record_wins_over_its_recovery(tmp_path, monkeypatch) -> None:
    """A run still recording itself while another process reconciles: its own record, stamped after its
    commit, replaces the recovered row (never two rows for one run)."""
    lake = Lake(tmp_path / "lake")
    node(lake).run()
    lost = lost_run(lake, monkeypatch)
    reconcile.reconcile_table(lake, node(lake).storage_hash)
    now = dt.datetime.now(UTC)
    catalog.record_run(lake, {"run_id": lost, "update_hash": node(lake).update_hash,
                              "storage_hash": node(lake).storage_hash, "started_at": now, "finished_at": now,
                              "status": "success", "rows_written": 2, "error": None, "host": "late"}, pending=True)
    mine = [run for run in runs(lake) if run["run_id"] == lost]
    assert len(mine) == 1 and mine[0]["status"] == "success"


def _killed_after_commit(uri: str) -> None:
    """Child process: run the node, dying by SIGKILL where it would record its run."""
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    catalog.record_run = die
    node(Lake(uri)).run()


def test_a_run_killed_between_commit_and_record_is_recovered_by_the_cli(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    node(lake).run()
    child = multiprocessing.get_context("spawn").Process(target=_killed_after_commit, args=(lake.uri,))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    clear_caches()
    last = table_history(node(lake).store.table())[0]
    assert last["run_id"] not in {run["run_id"] for run in runs(lake)}

    cli = CliRunner()
    result = cli.invoke(app, ["--lake", lake.uri, "--json", "updates", "reconcile"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["count"] == 1
    assert document["results"][0]["run_id"] == last["run_id"] and document["results"][0]["rows_written"] == 3
    clear_caches()
    assert [run["status"] for run in runs(lake)] == ["success", "recovered"]

    again = cli.invoke(app, ["--lake", lake.uri, "updates", "reconcile", node(lake).storage_hash])
    assert again.exit_code == 0, again.output
    assert "recovered 0 run(s)" in again.output
    listed = json.loads(cli.invoke(app, ["--lake", lake.uri, "--json", "updates", "list"]).output)["results"]
    assert listed[0]["runs"] == 2 and listed[0]["last_status"] == "recovered"
