"""``TimeIndexMetaTable.restore`` / ``lakenodes data-node restore``: a table put back at an earlier
version behaves as if it had stayed there. The next run of its updater (in this process and in a
fresh one) computes its watermarks from the restored rows and appends after them, each row once;
a stale cross-section copy is not read; older versions still read; bad targets change nothing.
Locally and on the moto S3 server."""

from __future__ import annotations

import json
import multiprocessing
import os
from types import SimpleNamespace

import polars as pl
import pytest
from restore_nodes import ASSETS, Daily, DailyConfig, day
from typer.testing import CliRunner

from lakenodes import Lake, LakenodesUserError, TimeIndexMetaTable, VersionUnavailableError, clear_caches
from lakenodes.cli import app
from lakenodes.lake.maintenance import optimize_table, vacuum_table
from lakenodes.lake.restore import restore_table
from lakenodes.lake.store import TableStore

SPAWN = multiprocessing.get_context("spawn")
EVERY_ROW = sorted((day(d), uid) for d in range(1, 6) for uid in ASSETS)


def written(lake: Lake, until: int = 5, node_class: type[Daily] = Daily) -> SimpleNamespace:
    """Days 1..``until`` written by one run a day; ``versions[d]``: the table version after day ``d``."""
    versions = {}
    for d in range(1, until + 1):
        node = node_class(DailyConfig(until=d), lake=lake)
        node.run()
        versions[d] = node.store.table().version()
    table = TimeIndexMetaTable.get(storage_hash=node.storage_hash, lake=lake)
    return SimpleNamespace(node=node, table=table, versions=versions)


def rows_of(node: Daily, **read) -> list[tuple]:
    frame = node.get_df_between_dates(**read)
    return sorted(zip(frame["time_index"].to_list(), frame["unique_identifier"].to_list(), strict=True))


def run_in_fresh_process(uri: str, env: dict[str, str], until: int, results) -> None:
    os.environ.update(env)
    try:
        _, persisted = Daily(DailyConfig(until=until), lake=Lake(uri)).run()
        results.put(("ok", persisted.height))
    except BaseException as error:  # reported to the test, which fails with it
        results.put(("error", repr(error)))


def run_spawned(lake: Lake, env: dict[str, str], until: int) -> int:
    results = SPAWN.Queue()
    process = SPAWN.Process(target=run_in_fresh_process, args=(lake.uri, env, until, results))
    process.start()
    status, value = results.get(timeout=600)
    process.join(timeout=60)
    assert status == "ok", value
    return value


@pytest.fixture
def env(any_lake: Lake, request) -> dict[str, str]:
    return {} if any_lake.is_local else dict(request.getfixturevalue("s3_server").env)


def test_the_next_run_appends_after_the_restored_rows_here_and_in_a_fresh_process(any_lake, env):
    lake = written(any_lake)
    node, table, versions = lake.node, lake.table, lake.versions
    optimize_table(any_lake, node.storage_hash, cross_section=True)  # a copy of days 1-5 that must not be read
    before = node.store.table().version()
    done = table.restore(versions[3])
    assert done | {"meta_table_uid": None} == {
        "ok": True, "meta_table_uid": None, "dry_run": False, "from_version": before, "to_version": versions[3],
        "new_version": before + 1, "files_added": 6, "files_removed": 2, "rows_added": 6, "rows_removed": 10}
    three_days = [row for row in EVERY_ROW if row[0] <= day(3)]
    assert rows_of(node) == three_days
    assert rows_of(node, start_date=day(1), end_date=day(5)) == three_days  # a window: the stale copy is not read
    assert rows_of(node, as_of=before) == EVERY_ROW  # versions before the restore still read
    history = table.history(limit=1)[0]
    assert (history["operation"], history["rows_added"], history["rows_deleted"]) == ("restore", 6, 10)

    assert node.update_statistics.max_time_index_value == day(3)  # the node that wrote day 5, in this process
    _, persisted = node.run()
    assert persisted.height == 4 and node.update_statistics.max_time_index_value == day(5)
    assert rows_of(node) == EVERY_ROW
    assert node.get_df_between_dates().height == len(EVERY_ROW)

    table.restore(versions[3])  # and once more, then the updater runs in a fresh process
    clear_caches()
    assert run_spawned(any_lake, env, 5) == 4
    assert rows_of(node) == EVERY_ROW
    assert node.get_df_between_dates()["close"].to_list() == [float(d) for d in range(1, 6) for _ in ASSETS]


def test_a_restore_undoes_a_wrong_tail_delete(any_lake):
    lake = written(any_lake)
    lake.table.delete_after_date(day(2).isoformat())
    done = lake.table.restore(lake.versions[5])
    assert (done["rows_added"], done["rows_removed"]) == (8, 0)
    assert rows_of(lake.node) == EVERY_ROW
    _, persisted = Daily(DailyConfig(until=5), lake=any_lake).run()
    assert persisted.height == 0 and rows_of(lake.node) == EVERY_ROW


class RestoredMeanwhile(Daily):
    """Its next update() computes its rows, then (as another process would, before the write) the
    table is restored to version ``restore_to``."""

    restore_to: int | None = None

    def update(self) -> pl.DataFrame:
        rows = super().update()
        if self.restore_to is not None:
            TimeIndexMetaTable.get(storage_hash=self.storage_hash, lake=self.lake).restore(self.restore_to)
            self.restore_to = None
        return rows


def test_a_run_whose_rows_were_computed_before_a_restore_recomputes_them(local_lake):
    """The restore moves the watermarks back under a run between its update() and its write: the
    write is refused as after a tail delete, and the run recomputes its rows from the restored table."""
    lake = written(local_lake, node_class=RestoredMeanwhile)
    node = RestoredMeanwhile(DailyConfig(until=6), lake=local_lake)
    node.restore_to = lake.versions[3]
    _, persisted = node.run()
    assert sorted(persisted["time_index"].to_list()) == [day(d) for d in (4, 4, 5, 5, 6, 6)]
    assert rows_of(node) == sorted([*EVERY_ROW, *((day(6), uid) for uid in ASSETS)])


def test_bad_targets_are_refused_in_one_line_and_change_nothing(any_lake):
    lake = written(any_lake, until=3)
    table, store = lake.table, lake.node.store
    latest = store.table().version()
    refused = {
        99: rf"^version 99 of {table.storage_hash} does not exist: the latest is {latest}$",
        latest: rf"^version {latest} is the current version of {table.storage_hash}: nothing to restore$",
        -1: r"^to_version must be a table version \(an int from 0 up, see the table's history\), not -1$",
    }
    for version, message in refused.items():
        with pytest.raises(LakenodesUserError, match=message):
            table.restore(version)
    with pytest.raises(LakenodesUserError, match=rf"^table {table.storage_hash} did not exist at 2001-01-01T00:00:00Z"):
        table.restore(to_timestamp="2001-01-01")
    with pytest.raises(LakenodesUserError, match="to_version must be a table version .*, not '3'$"):
        table.restore("3")
    with pytest.raises(LakenodesUserError, match="exactly one of to_version or to_timestamp"):
        table.restore(0, to_timestamp="2001-01-01")
    for name in ("tables", "_catalog/tables"):
        with pytest.raises(LakenodesUserError, match="/_catalog/tables is a catalog table: only data tables can be restored$"):
            restore_table(TableStore(any_lake, name, uri=any_lake.catalog_uri("tables")), 0)
    vacuum_table(any_lake, table.storage_hash, retention_hours=0, force_unsafe_retention=True)
    lake.table.delete_after_date(day(1).isoformat())  # version 0's files are now only in the history
    vacuum_table(any_lake, table.storage_hash, retention_hours=0, force_unsafe_retention=True)
    latest = store.table().version()
    with pytest.raises(VersionUnavailableError, match=r"version 0 .* time travel reaches back to version \d+") as error:
        table.restore(0)
    assert "\n" not in str(error.value)
    assert store.table().version() == latest and rows_of(lake.node) == []


def test_to_a_timestamp(local_lake):
    lake = written(local_lake, until=3)
    moment = lake.table.history()[-2]["timestamp"]  # version 1's commit
    assert lake.table.restore(to_timestamp=moment)["to_version"] == 1
    assert rows_of(lake.node) == [row for row in EVERY_ROW if row[0] <= day(2)]


def test_cli_asks_says_what_changes_and_refuses_catalog_tables(any_lake, env):
    lake = written(any_lake, until=3)
    name, latest = lake.node.storage_hash, lake.node.store.table().version()

    def invoke(*args, stdin=None):
        return CliRunner().invoke(app, ["--lake", any_lake.uri, "data-node", "restore", *args], input=stdin, env=env)

    dry = invoke(name, "--to-version", "1", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout) | {"meta_table_uid": None} == {
        "ok": True, "meta_table_uid": None, "dry_run": True, "from_version": latest, "to_version": 1,
        "new_version": None, "files_added": 0, "files_removed": 2, "rows_added": 0, "rows_removed": 2}
    declined = invoke(name, "--to-version", "1", stdin="n\n")
    assert declined.exit_code == 1 and "0 row(s) in 0 file(s) back, 2 row(s) in 2 file(s) removed?" in declined.stderr
    assert "not confirmed; nothing was changed" in declined.stderr
    no_stdin = invoke(name, "--to-version", "1")
    assert no_stdin.exit_code == 2 and "pass --yes to restore without asking" in no_stdin.stderr
    assert lake.node.store.table().version() == latest
    done = invoke(name, "--to-version", "1", stdin="y\n")
    assert done.exit_code == 0, done.stderr
    assert f"restored {name} to version 1 as version {latest + 1}: 0 row(s) in 0 file(s) back" in done.stdout
    assert rows_of(lake.node) == [row for row in EVERY_ROW if row[0] <= day(2)]
    for args, message in [(["_catalog/tables", "--to-version", "0"], "_catalog/tables is a catalog table"),
                          ([name], "give exactly one of --to-version N or --to-timestamp T"),
                          ([name, "--to-version", "99", "--yes"], "does not exist")]:
        refused = invoke(*args)
        assert refused.exit_code == 2 and message in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert lake.node.store.table().version() == latest + 1


def test_cli_restore_takes_diffs_to_a_version_or_a_moment(local_lake):
    """Regression: `data-node restore T --to 1` (diff's spelling of a version or moment) was refused
    with "No such option: --to (Possible options: --json)", pointing away from --to-version."""
    lake = written(local_lake, until=3)
    name, latest = lake.node.storage_hash, lake.node.store.table().version()

    def restore(*args):
        return CliRunner().invoke(app, ["--lake", local_lake.uri, "--json", "data-node", "restore", name, *args])

    by_version = restore("--to-version", "1", "--dry-run")
    assert by_version.exit_code == 0, by_version.stderr
    assert restore("--to", "1", "--dry-run").stdout == by_version.stdout
    moment = TimeIndexMetaTable.get(storage_hash=name, lake=local_lake).history()[-2]["timestamp"].isoformat()
    assert restore("--to", moment, "--dry-run").stdout == restore("--to-timestamp", moment, "--dry-run").stdout
    for args, message in [(["--to", "1", "--to-version", "1", "--yes"], "give exactly one of --to-version N"),
                          (["--to", "yesterday", "--yes"], "--to='yesterday' is not an ISO-8601")]:
        refused = restore(*args)
        assert refused.exit_code == 2 and message in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert lake.node.store.table().version() == latest
