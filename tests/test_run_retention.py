"""`lakenodes updates clean`: old run records leave `_catalog/runs`, each updater's last run stays,
reconcile never recovers what was removed, runs recorded meanwhile are never lost, and bad input
changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import threading
import time
from collections import Counter

import pytest
from test_daily_path import Daily, DailyConfig
from test_reconcile import lost_run
from test_reconcile import node as recovering
from typer.testing import CliRunner

from lakenodes import Lake, clear_caches
from lakenodes.catalog import catalog, reconcile
from lakenodes.catalog.run_retention import cleaned_before
from lakenodes.cli import app
from lakenodes.errors import LakenodesUserError
from lakenodes.facade.table_refs import clean_runs, update_processes
from lakenodes.lake.pending import pending_files

UTC = dt.UTC
OLD = dt.datetime(2025, 1, 1, tzinfo=UTC)


def node(lake: Lake, name: str = "retention") -> Daily:
    return Daily(DailyConfig(name=name), lake=lake)


def runs(lake: Lake) -> list[dict]:
    return catalog.run_history(lake)


def ids(lake: Lake) -> list[str]:
    return [run["run_id"] for run in runs(lake)]


def moment_after_every_run(lake: Lake) -> dt.datetime:
    """A cutoff after every run recorded so far (runs finish before it), once the clock has passed it."""
    moment = max(run["finished_at"] for run in runs(lake)) + dt.timedelta(milliseconds=1)
    while dt.datetime.now(UTC) <= moment:
        time.sleep(0.001)
    return moment


def old_run(run_id: str, update_hash: str, day: int, finished: bool = True) -> dict:
    started = OLD + dt.timedelta(days=day)
    return {"run_id": run_id, "update_hash": update_hash, "storage_hash": f"s_{update_hash}", "started_at": started,
            "finished_at": started + dt.timedelta(seconds=5) if finished else None, "status": "success",
            "rows_written": 1, "error": None, "host": "test"}


def runs_version(lake: Lake) -> int | None:
    table = catalog.runs_ledger(lake)._store.table()
    return None if table is None else table.version()


def test_old_runs_are_removed_and_every_updaters_last_run_stays(local_lake: Lake) -> None:
    daily, weekly = node(local_lake), node(local_lake, "weekly")
    for _ in range(3):
        daily.run()
    weekly.run()
    old = ids(local_lake)
    cutoff = moment_after_every_run(local_lake)
    daily.run()
    listed = {p["update_hash"]: p for p in update_processes(local_lake)}

    done = clean_runs(local_lake, cutoff)
    assert done["removed"] == 3 and done["kept"] == 2 and done["dry_run"] is False
    [entry] = done["updaters"]
    assert (entry["update_hash"], entry["removed"], entry["kept"]) == (daily.update_hash, 3, 1)
    assert entry["identifier"] is None and entry["oldest"] < entry["newest"] < cutoff
    assert ids(local_lake) == [old[3], ids(local_lake)[1]]  # weekly's only run, daily's run after the cutoff
    clear_caches()  # a new process reads the same
    assert len(runs(local_lake)) == 2
    after = {p["update_hash"]: p for p in update_processes(local_lake)}
    for update_hash, process in listed.items():  # the last run and status of every updater, as before
        assert {k: after[update_hash][k] for k in ("last_run_at", "last_status", "last_rows_written")} == \
            {k: process[k] for k in ("last_run_at", "last_status", "last_rows_written")}
    assert clean_runs(local_lake, cutoff)["removed"] == 0  # again: nothing left to remove


def test_a_dry_run_says_what_it_would_remove_and_changes_nothing(local_lake: Lake, monkeypatch) -> None:
    monkeypatch.setenv("LAKENODES_CATALOG_FOLD_EVERY", "0")
    for day in range(3):
        catalog.record_run(local_lake, old_run(f"r{day}", "u_1", day), pending=day != 0)
    before, version, pending = runs(local_lake), runs_version(local_lake), pending_files(local_lake, "runs")
    assert len(pending) == 2

    done = clean_runs(local_lake, older="30d", dry_run=True)
    assert (done["removed"], done["kept"], done["dry_run"]) == (2, 1, True)
    assert [(e["update_hash"], e["removed"], e["kept"]) for e in done["updaters"]] == [("u_1", 2, 1)]
    assert runs(local_lake) == before and runs_version(local_lake) == version
    assert pending_files(local_lake, "runs") == pending and cleaned_before(local_lake) is None

    done = clean_runs(local_lake, older="30d")  # pending records are folded first, and removed as any other
    assert done["removed"] == 2 and ids(local_lake) == ["r2"] and pending_files(local_lake, "runs") == []


def test_unfinished_runs_and_runs_after_the_cutoff_stay(local_lake: Lake) -> None:
    catalog.record_run(local_lake, old_run("unfinished", "u_1", 0, finished=False))
    catalog.record_run(local_lake, old_run("old", "u_1", 1))
    catalog.record_run(local_lake, old_run("last", "u_1", 40))
    done = clean_runs(local_lake, OLD + dt.timedelta(days=30))
    assert done["removed"] == 1 and sorted(ids(local_lake)) == ["last", "unfinished"]


def test_reconcile_never_recovers_removed_runs_and_still_recovers_later_ones(any_lake: Lake, monkeypatch) -> None:
    """Regression: the removed runs' commits still name them, and reconcile took every commit without
    a run record for a run that never recorded itself ("recovered"), so cleaning undid itself."""
    for _ in range(3):
        recovering(any_lake).run()
    kept = ids(any_lake)[-1]
    done = clean_runs(any_lake, moment_after_every_run(any_lake))
    assert done["removed"] == 2 and ids(any_lake) == [kept]

    clear_caches()
    again = reconcile.reconcile_table(any_lake, recovering(any_lake).storage_hash)
    assert again.commits_checked == 3 and again.recovered == []
    assert ids(any_lake) == [kept]

    lost = lost_run(any_lake, monkeypatch)  # a crash after the clean: recovered as before
    recovered = reconcile.reconcile_table(any_lake, recovering(any_lake).storage_hash).recovered
    assert [run["run_id"] for run in recovered] == [lost]
    assert ids(any_lake) == [kept, lost] and runs(any_lake)[1]["status"] == "recovered"


@pytest.mark.parametrize(("arguments", "message"), [
    ({"before": "2999-01-01"}, "is in the future"),
    ({"before": "last tuesday"}, "is not an ISO-8601 date"),
    ({"older": "-5d"}, "is negative"),
    ({"older": "ninety days"}, "is not a duration like '90d'"),
    ({"older": dt.timedelta(hours=-1)}, "is negative"),
    ({}, "give exactly one of before"),
    ({"before": "2020-01-01", "older": "1d"}, "give exactly one of before"),
])
def test_bad_input_is_refused_in_one_line_and_changes_nothing(local_lake: Lake, arguments, message) -> None:
    catalog.record_run(local_lake, old_run("a", "u_1", 0))
    catalog.record_run(local_lake, old_run("b", "u_1", 1))
    version = runs_version(local_lake)
    with pytest.raises(LakenodesUserError, match=message) as refused:
        clean_runs(local_lake, arguments.get("before"), older=arguments.get("older"))
    assert "\n" not in str(refused.value)
    assert ids(local_lake) == ["a", "b"] and runs_version(local_lake) == version


def cli(lake: Lake, *arguments: str, answer: str | None = None):
    return CliRunner().invoke(app, ["--lake", lake.uri, *arguments], input=answer)


def test_the_cli_shows_removes_and_asks_first(local_lake: Lake) -> None:
    for _ in range(3):
        node(local_lake).run()
    cutoff = moment_after_every_run(local_lake).isoformat()
    shown = cli(local_lake, "updates", "clean", "--before", cutoff, "--dry-run")
    assert shown.exit_code == 0, shown.output
    assert node(local_lake).update_hash in shown.output and "would remove 2 run(s) that finished before" in shown.output
    refused = cli(local_lake, "updates", "clean", "--before", cutoff, answer="n\n")
    assert refused.exit_code == 1 and "not confirmed" in refused.output and len(runs(local_lake)) == 3
    no_stdin = cli(local_lake, "updates", "clean", "--before", cutoff)
    assert no_stdin.exit_code == 2 and "pass --yes" in no_stdin.output and len(runs(local_lake)) == 3

    done = cli(local_lake, "--json", "updates", "clean", "--before", cutoff, answer="y\n")
    assert done.exit_code == 0, done.output
    document = json.loads(done.output[done.output.index("{"):])  # after the question (on stderr)
    assert document["ok"] and (document["removed"], document["kept"], document["dry_run"]) == (2, 1, False)
    assert document["results"][0]["update_hash"] == node(local_lake).update_hash
    listed = json.loads(cli(local_lake, "--json", "updates", "list").output)["results"]
    assert listed[0]["runs"] == 1 and listed[0]["last_status"] == "success"
    assert "removed 0 run(s)" in cli(local_lake, "updates", "clean", "--older-than", "0d").output  # nothing to ask


@pytest.mark.parametrize(("arguments", "message"), [
    (["--before", "2999-01-01"], "error: the cutoff 2999-01-01T00:00:00+00:00 is in the future"),  # named before= once
    (["--before", "yesterday"], "is not an ISO-8601 date"),
    (["--older-than", "-90d"], "is negative"),
    (["--older-than", "90 days"], "is not a duration"),
    ([], "give exactly one of --before DATE"),
])
def test_the_cli_refuses_bad_input_in_one_line(local_lake: Lake, arguments, message) -> None:
    catalog.record_run(local_lake, old_run("a", "u_1", 0))
    result = cli(local_lake, "updates", "clean", "--yes", *arguments)
    assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1, result.output
    assert ids(local_lake) == ["a"]


def test_runs_recorded_while_cleans_run_are_never_lost(local_lake: Lake, monkeypatch) -> None:
    """Threads record runs (pending and folded) while three cleans remove old runs at once; catalog
    housekeeping compacts every 4 commits meanwhile: the cleans retry on commit conflicts."""
    monkeypatch.setenv("LAKENODES_CATALOG_HOUSEKEEPING_INTERVAL", "4")
    monkeypatch.setenv("LAKENODES_CATALOG_FOLD_EVERY", "3")
    for day in range(60):
        catalog.record_run(local_lake, old_run(f"old{day}", f"u_{day % 3}", day), pending=day % 2 == 0)
    start = threading.Barrier(6)
    errors: list[BaseException] = []
    recorded: list[str] = []

    def record(worker: int) -> None:
        start.wait()
        for k in range(8):
            now = dt.datetime.now(UTC)
            run = {**old_run(f"new{worker}.{k}", f"w_{worker}", 0), "started_at": now, "finished_at": now}
            catalog.record_run(local_lake, run, pending=k % 2 == 0)
            recorded.append(run["run_id"])

    removed: list[int] = []

    def clean() -> None:
        start.wait()
        removed.append(clean_runs(local_lake, OLD + dt.timedelta(days=365))["removed"])

    threads = [threading.Thread(target=guarded, args=(work, errors)) for work in
               (lambda: record(0), lambda: record(1), lambda: record(2), clean, clean, clean)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and sum(removed) == 57  # each old run removed by one of the cleans
    clear_caches()
    stored = Counter(catalog.runs_ledger(local_lake).read().column("run_id").to_pylist())
    history = Counter(ids(local_lake))
    assert sorted(recorded) == sorted(run_id for run_id in history if run_id.startswith("new"))
    assert {run_id for run_id in history if run_id.startswith("old")} == {"old57", "old58", "old59"}  # each updater's last
    assert max(history.values()) == 1 and max(stored.values()) == 1  # no run stored twice


def guarded(work, errors: list[BaseException]) -> None:
    try:
        work()
    except BaseException as error:  # noqa: BLE001 - reported by the test
        errors.append(error)


def _record_runs(uri: str, count: int, start) -> None:
    """Child process: record ``count`` runs, as an updater running beside the clean does."""
    start.wait(timeout=120)
    for k in range(count):
        now = dt.datetime.now(UTC)
        catalog.record_run(Lake(uri), {**old_run(f"child{k}", "u_child", 0), "started_at": now, "finished_at": now},
                           pending=k % 2 == 0)


def test_a_process_recording_runs_beside_a_clean_on_s3_loses_none(s3_lake: Lake, s3_server, monkeypatch) -> None:
    for key, value in s3_server.env.items():  # the child finds the moto server as a job would
        monkeypatch.setenv(key, value)
    for day in range(6):
        catalog.record_run(s3_lake, old_run(f"old{day}", "u_1", day))
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    child = context.Process(target=_record_runs, args=(s3_lake.uri, 6, start))
    child.start()
    start.wait(timeout=120)
    done = clean_runs(s3_lake, OLD + dt.timedelta(days=30))
    child.join(300)
    assert child.exitcode == 0 and done["removed"] == 5
    clear_caches()
    assert sorted(ids(s3_lake)) == sorted(["old5", *(f"child{k}" for k in range(6))])
    assert cleaned_before(s3_lake) == OLD + dt.timedelta(days=30)
