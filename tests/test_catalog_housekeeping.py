"""Catalog housekeeping: writers compact and checkpoint ``_catalog/`` tables as they go, losing
and duplicating nothing, alone or with several processes registering at once."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import shutil
from collections import Counter

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError
from test_concurrency import contend, in_processes

from lakenodes import Lake, TimeIndexMetaTable
from lakenodes.catalog import catalog
from lakenodes.catalog.records import TableRecord, table_uid
from lakenodes.errors import UnreadableFileError
from lakenodes.lake._delta_log import commit_versions, log_names
from lakenodes.lake._log_damage import CHECKPOINT_FILE
from lakenodes.lake.housekeeping import COMPACTION_APP_ID, HousekeepingPolicy, LiveFile, housekeep, trim_log
from lakenodes.lake.ledger import Ledger, live_files, read_files, read_unpartitioned
from lakenodes.lake.ledger_prune import remove_rows
from lakenodes.lake.location import lake_filesystem
from lakenodes.lake.maintenance import last_checkpoint_version

UTC = dt.timezone.utc
INTERVAL = "LAKENODES_CATALOG_HOUSEKEEPING_INTERVAL"
KEYS = {"tables": "storage_hash", "updates": "update_hash", "runs": "run_id"}


def register_like_a_first_run(lake: Lake, name: str) -> None:
    """The catalog calls a first ``run()`` of a new node makes (claim, updater, table, run)."""
    storage_hash, update_hash = f"{name}_storage", f"{name}_update"
    catalog.claim_identifier(lake, name, "", storage_hash)
    catalog.register_updater(lake, update_hash, storage_hash, "", "tests.Node", {"name": name})
    catalog.register_table(lake, TableRecord(
        uid=table_uid(storage_hash), storage_hash=storage_hash, identifier=name, description=f"table {name}",
        index_names=["time_index"], table_uri=lake.table_uri(storage_hash)))
    now = dt.datetime.now(UTC)
    catalog.record_run(lake, {"run_id": f"{name}_run", "update_hash": update_hash, "storage_hash": storage_hash,
                              "started_at": now, "finished_at": now, "status": "success", "rows_written": 1,
                              "error": None, "host": "test"})


def stored_keys(lake: Lake, ledger: str) -> Counter[str]:
    """How often each key occurs in a catalog table, read afresh (no lakenodes cache)."""
    table = DeltaTable(lake.catalog_uri(ledger), storage_options=lake.storage_options or None)
    return Counter(read_unpartitioned(lake, table).column(KEYS[ledger]).to_pylist())


def assert_registered_exactly_once(lake: Lake, names: list[str]) -> None:
    for ledger, key in KEYS.items():
        suffix = {"storage_hash": "_storage", "update_hash": "_update", "run_id": "_run"}[key]
        assert stored_keys(lake, ledger) == Counter(f"{name}{suffix}" for name in names), ledger
    assert sorted(t.identifier for t in TimeIndexMetaTable.filter(lake=lake)) == sorted(names)


def assert_tidy(lake: Lake, interval: int) -> None:
    """Each catalog table has a recent checkpoint, compactions in its history and few live files."""
    for ledger in KEYS:
        table = DeltaTable(lake.catalog_uri(ledger), storage_options=lake.storage_options or None)
        checkpoint = last_checkpoint_version(lake, f"_catalog/{ledger}")
        assert checkpoint is not None and checkpoint >= table.version() - 2 * interval, (ledger, checkpoint)
        assert len(live_files(table)) <= 2 * interval, ledger
        assert table.transaction_version(COMPACTION_APP_ID) is not None, ledger
        versions = log_versions(lake, ledger)
        # each trim keeps the `interval` versions before its checkpoint, or from the checkpoint read
        # before it when that is older (a reader may be opening it): under contention checkpoints
        # land unevenly, so the oldest entry kept is a checkpoint or within `interval` of one
        checkpoints = checkpoint_versions(lake, ledger)
        assert any(c - interval <= versions[0] <= c for c in checkpoints), (ledger, versions, checkpoints)
        assert len(versions) <= 3 * interval + 1, (ledger, versions)


def log_versions(lake: Lake, ledger: str) -> list[int]:
    """The versions whose commit files are still in a catalog table's ``_delta_log``, sorted."""
    return commit_versions(*lake_filesystem(lake, lake.catalog_uri(ledger)))


def checkpoint_versions(lake: Lake, ledger: str) -> list[int]:
    """The versions whose checkpoints are still in a catalog table's ``_delta_log``, sorted."""
    names = log_names(*lake_filesystem(lake, lake.catalog_uri(ledger)))
    return sorted({int(name[:20]) for name in names if CHECKPOINT_FILE.match(name)})


def test_many_registrations_leave_compacted_checkpointed_catalog_tables(local_lake: Lake, monkeypatch):
    monkeypatch.setenv(INTERVAL, "5")
    names = [f"table_{i:02d}" for i in range(60)]
    for name in names:
        register_like_a_first_run(local_lake, name)
    assert_registered_exactly_once(local_lake, names)
    assert_tidy(local_lake, 5)
    assert TimeIndexMetaTable.get(identifier="table_07", lake=local_lake).storage_hash == "table_07_storage"


@pytest.mark.s3
def test_housekeeping_on_s3(s3_lake: Lake, monkeypatch):
    monkeypatch.setenv(INTERVAL, "3")
    names = [f"s3_table_{i:02d}" for i in range(10)]
    for name in names:
        register_like_a_first_run(s3_lake, name)
    assert_registered_exactly_once(s3_lake, names)
    assert_tidy(s3_lake, 3)


def test_a_process_whose_view_predates_the_trimmed_log_reopens_quietly(local_lake: Lake, caplog):
    """Another process's housekeeping trims the commit file this process last saw: it reopens the
    table and reads every row, without calling the table replaced; a table created anew still is."""
    schema = pa.schema([("name", pa.string())])
    ledger = Ledger(local_lake, "notes", schema, key=("name",), housekeeping=HousekeepingPolicy(interval=0))
    ledger.append([{"name": "first"}])
    assert [row["name"] for row in ledger.latest()] == ["first"]  # this process now caches version 1
    for i in range(12):  # another process appends, checkpoints and trims the log
        write_deltalake(ledger.uri, pa.Table.from_pylist(
            [{"name": f"n{i}", "recorded_at": dt.datetime.now(UTC)}], schema=ledger.schema), mode="append")
    DeltaTable(ledger.uri).create_checkpoint()
    assert trim_log(local_lake, ledger.uri, keep_from=10) == 11  # commits 0-9 and delta-rs' checkpoint at 9
    assert log_versions(local_lake, "notes") == [10, 11, 12, 13]  # 0: created, 1: "first"
    with caplog.at_level(logging.DEBUG, logger="lakenodes.lake._tables"):
        assert [row["name"] for row in ledger.latest()] == ["first"] + [f"n{i}" for i in range(12)]
    assert "trimmed" in caplog.text and not [r for r in caplog.records if r.levelno >= logging.WARNING]

    shutil.rmtree(ledger.uri)  # the table is removed and created anew by another process
    write_deltalake(ledger.uri, pa.Table.from_pylist([{"name": "new", "recorded_at": dt.datetime.now(UTC)}],
                                                      schema=ledger.schema))
    caplog.clear()
    assert [row["name"] for row in ledger.latest()] == ["new"]
    assert "was replaced" in caplog.text


def test_an_append_whose_log_is_trimmed_while_it_commits_is_retried(local_lake: Lake, monkeypatch, caplog):
    """Regression (CI: test_runs_recorded_while_cleans_run_are_never_lost failed with "Kernel error:
    File not found: .../_delta_log/00000000000000000050.json"): between an append's snapshot and its
    commit, other writers commit, checkpoint and trim the log below the checkpoint. delta-rs's
    conflict check then reads commits that are gone, and the append failed. It is retried now, from
    the log's latest checkpoint, and its row is recorded once."""
    import lakenodes.lake.ledger as ledger_module

    schema = pa.schema([("name", pa.string())])
    ledger = Ledger(local_lake, "notes", schema, key=("name",), housekeeping=HousekeepingPolicy(interval=0))
    ledger.append([{"name": "first"}])
    real_write = ledger_module.write_deltalake
    trimmed = []

    def others_commit_and_trim_first(table, data, **kwargs):
        if not trimmed:  # the append's snapshot is taken: now the others' commits, checkpoint and trim
            for i in range(6):
                real_write(ledger.uri, pa.Table.from_pylist([{"name": f"n{i}", "recorded_at": dt.datetime.now(UTC)}],
                                                             schema=ledger.schema), mode="append")
            DeltaTable(ledger.uri).create_checkpoint()
            trimmed.append(trim_log(local_lake, ledger.uri, keep_from=7))  # versions 0-6 gone
        return real_write(table, data, **kwargs)

    monkeypatch.setattr(ledger_module, "write_deltalake", others_commit_and_trim_first)
    with caplog.at_level(logging.WARNING, logger="lakenodes.lake.store"):
        ledger.append([{"name": "second"}])
    assert trimmed[0] > 0 and "trimmed meanwhile" in caplog.text
    assert sorted(row["name"] for row in ledger.latest()) == ["first", "n0", "n1", "n2", "n3", "n4", "n5", "second"]
    assert Counter(ledger.read()["name"].to_pylist())["second"] == 1


def test_interval_zero_disables_housekeeping(local_lake: Lake, monkeypatch):
    monkeypatch.setenv(INTERVAL, "0")
    assert HousekeepingPolicy().interval == 0
    ledger = Ledger(local_lake, "notes", pa.schema([("name", pa.string())]), key=("name",))
    for i in range(12):
        ledger.append([{"name": f"n{i}"}])
    table = DeltaTable(ledger.uri)
    assert len(live_files(table)) == 12  # no compaction; the only checkpoint is delta-rs' own (its hooks stay on)
    assert last_checkpoint_version(local_lake, "_catalog/notes") == 9


def test_racing_compactions_never_duplicate_rows(local_lake: Lake):
    """Two housekeepers tidying from the same snapshot: the second compaction must fail (and be
    reported, not raised) instead of re-adding rows the first one already moved."""
    ledger = Ledger(local_lake, "notes", pa.schema([("name", pa.string())]), key=("name",),
                    housekeeping=HousekeepingPolicy(interval=0))
    for i in range(6):
        ledger.append([{"name": f"n{i}"}])
    first, second = DeltaTable(ledger.uri), DeltaTable(ledger.uri)
    files = [live(local_lake, table) for table in (first, second)]
    assert housekeep(local_lake, first, files[0], "notes").errors == {}
    ledger.append([{"name": "n6"}])  # an append between the two compactions does not conflict
    late = housekeep(local_lake, second, files[1], "notes")
    assert "compaction" in late.errors and late.files_removed == 0
    stored = read_unpartitioned(local_lake, DeltaTable(ledger.uri)).column("name").to_pylist()
    assert Counter(stored) == Counter(f"n{i}" for i in range(7))
    assert [row["name"] for row in ledger.latest()] == [f"n{i}" for i in range(7)]


def live(lake: Lake, table: DeltaTable) -> list[LiveFile]:
    sizes = live_files(table)
    schema = pa.schema(table.schema().to_arrow())
    return [LiveFile(path, sizes[path], rows) for path, rows in
            zip(sizes, read_files(lake, table, list(sizes), schema), strict=True)]


def register_batch(worker: int, count: int) -> None:
    from lakenodes import current_lake

    for i in range(count):
        register_like_a_first_run(current_lake(), f"w{worker}_table_{i:02d}")


@pytest.mark.slow
def test_concurrent_registrations_with_housekeeping_lose_nothing(tmp_path):
    """Four processes register 15 tables each while housekeeping fires every 3 commits."""
    lake, workers, count = Lake(tmp_path / "lake"), 4, 15
    env = {INTERVAL: "3"}
    errors = in_processes(contend, [(lake.uri, env, functools.partial(register_batch, k, count), 1)
                                    for k in range(workers)])
    assert errors == [None] * workers, [e for e in errors if e][:2]
    names = [f"w{k}_table_{i:02d}" for k in range(workers) for i in range(count)]
    assert_registered_exactly_once(lake, names)
    assert_tidy(lake, 3)


def _notes_with_a_checkpoint(lake: Lake) -> Ledger:
    ledger = Ledger(lake, "notes", pa.schema([("name", pa.string())]), key=("name",),
                    housekeeping=HousekeepingPolicy(interval=0))
    for name in ("gone", "kept", "also gone"):
        ledger.append([{"name": name}])
    DeltaTable(ledger.uri).create_checkpoint()
    return ledger


def test_a_removal_whose_checkpoint_is_trimmed_while_it_commits_is_retried(local_lake: Lake, monkeypatch, caplog):
    """Regression (CI: test_runs_recorded_while_cleans_run_are_never_lost failed, 1 run in ~200 here):
    while a removal commits, others commit, checkpoint and trim the log, the checkpoint delta-rs
    is reading included; delta-rs says "Object at location .../_delta_log/<v>.checkpoint.parquet
    not found". lakenodes reports that as an ``UnreadableFileError`` (an ``OSError``), which the
    retries let through as a storage fault. It is retried now, and removes its rows once."""
    import lakenodes.lake.ledger_prune as prune_module

    ledger = _notes_with_a_checkpoint(local_lake)
    checkpoint = f"{ledger.uri}/_delta_log/{DeltaTable(ledger.uri).version():020d}.checkpoint.parquet"
    real_commit = prune_module.commit_rewrite
    trimmed = []

    def others_trim_the_checkpoint_being_read(*args, **kwargs):
        if not trimmed:
            for i in range(4):
                ledger.append([{"name": f"n{i}"}])
            DeltaTable(ledger.uri).create_checkpoint()
            trimmed.append(trim_log(local_lake, ledger.uri, keep_from=DeltaTable(ledger.uri).version()))
            # what delta-rs raised in CI, the checkpoint it had listed being gone now
            raise DeltaError(f"Kernel error: Arrow error: External: Object at location {checkpoint} not found: "
                             "No such file or directory (os error 2)")
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(prune_module, "commit_rewrite", others_trim_the_checkpoint_being_read)
    with caplog.at_level(logging.WARNING, logger="lakenodes.lake.store"):
        removed = remove_rows(ledger, "name", ["gone", "also gone"])
    assert trimmed[0] > 0 and not pafs.LocalFileSystem().get_file_info(checkpoint).is_file
    assert removed == {"gone", "also gone"} and "trimmed meanwhile" in caplog.text
    assert sorted(ledger.read()["name"].to_pylist()) == ["kept", "n0", "n1", "n2", "n3"]


def test_a_removal_missing_a_data_file_fails_at_once(local_lake: Lake, caplog):
    """A data file deleted outside lakenodes is no race: the removal fails on its first attempt,
    naming the file, and the table stays as it was."""
    ledger = _notes_with_a_checkpoint(local_lake)
    victim = next(iter(live_files(DeltaTable(ledger.uri))))
    pafs.LocalFileSystem().delete_file(f"{ledger.uri}/{victim}")
    version = DeltaTable(ledger.uri).version()
    with caplog.at_level(logging.WARNING, logger="lakenodes.lake.store"), \
            pytest.raises(UnreadableFileError, match="is missing from storage") as raised:
        remove_rows(ledger, "name", ["gone"])
    assert victim in raised.value.file and "retrying" not in caplog.text
    assert DeltaTable(ledger.uri).version() == version
