"""Successful runs are recorded as pending files of ``_catalog/runs`` (lakenodes/lake/pending.py) and
folded into its Delta table now and then: readers see every run exactly once, before and after the
fold, after a crash between the fold's commit and its deletes, with several processes at once, on S3."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from test_concurrency import contend, in_processes

from lakenodes import Lake
from lakenodes.catalog import catalog
from lakenodes.lake import pending as pending_module
from lakenodes.lake._delta_log import app_ids_in_log
from lakenodes.lake._whole_file import write_whole
from lakenodes.lake.ledger import read_unpartitioned
from lakenodes.lake.location import lake_filesystem
from lakenodes.lake.maintenance import optimize_table
from lakenodes.lake.pending import PENDING_DIR, Pending, fold_pending

UTC = dt.timezone.utc
FOLD = "LAKENODES_CATALOG_FOLD_EVERY"


def run_row(run_id: str, status: str = "success") -> dict:
    now = dt.datetime.now(UTC)
    return {"run_id": run_id, "update_hash": "u_1", "storage_hash": "s_1", "started_at": now, "finished_at": now,
            "status": status, "rows_written": 1, "error": None, "host": "test"}


def delta_run_ids(lake: Lake) -> Counter[str]:
    """The run ids in the Delta table of ``_catalog/runs`` as any engine reads it (no lakenodes cache)."""
    try:
        table = DeltaTable(lake.catalog_uri("runs"), storage_options=lake.storage_options or None)
    except Exception:  # not created yet
        return Counter()
    return Counter(read_unpartitioned(lake, table).column("run_id").to_pylist())


def pending_files(lake: Lake) -> list[str]:
    filesystem, root = lake_filesystem(lake, lake.catalog_uri("runs"))
    listing = filesystem.get_file_info(pafs.FileSelector(f"{root}/{PENDING_DIR}", allow_not_found=True))
    return sorted(info.base_name for info in listing)


def history_ids(lake: Lake) -> list[str]:
    return [run["run_id"] for run in catalog.run_history(lake)]


def test_a_pending_run_is_read_before_and_after_the_fold(any_lake: Lake, monkeypatch) -> None:
    monkeypatch.setenv(FOLD, "0")
    for k in range(3):
        catalog.record_run(any_lake, run_row(f"r{k}"), pending=True)
    assert sorted(history_ids(any_lake)) == ["r0", "r1", "r2"]
    assert delta_run_ids(any_lake) == Counter() and len(pending_files(any_lake)) == 3  # one small file each

    assert Pending(catalog.runs_ledger(any_lake)).fold() == 3
    assert delta_run_ids(any_lake) == Counter({"r0": 1, "r1": 1, "r2": 1}) and pending_files(any_lake) == []
    assert sorted(history_ids(any_lake)) == ["r0", "r1", "r2"]
    assert catalog.update_processes(any_lake) == []  # no updater registered: runs alone list nothing


def test_a_pending_run_is_one_small_json_file_with_its_values_as_recorded(any_lake: Lake, monkeypatch) -> None:
    """A run's record is JSON (a one-row Parquet file cost every run ~1 ms of CPU); its times,
    text, numbers and nulls come back exactly as recorded, as the ledger's Arrow types."""
    monkeypatch.setenv(FOLD, "0")
    row = run_row("r0")
    catalog.record_run(any_lake, {**row, "error": None, "rows_written": 12_345_678_901}, pending=True)
    [name] = pending_files(any_lake)
    filesystem, root = lake_filesystem(any_lake, any_lake.catalog_uri("runs"))
    with filesystem.open_input_stream(f"{root}/{PENDING_DIR}/{name}") as stream:
        data = stream.read()
    assert name.endswith(".json") and json.loads(data)["rows"][0]["run_id"] == "r0" and len(data) < 2_000
    [read] = catalog.run_history(any_lake)
    assert {key: read[key] for key in row} == {**row, "rows_written": 12_345_678_901}
    assert Pending(catalog.runs_ledger(any_lake)).fold() == 1
    [folded] = catalog.run_history(any_lake)
    assert folded == read


def test_pending_parquet_files_of_an_earlier_version_are_read_and_folded(local_lake: Lake, monkeypatch) -> None:
    """A lake written by an earlier lakenodes holds its pending runs as one-row Parquet files: they
    are read beside the JSON ones and folded with them, each run once."""
    monkeypatch.setenv(FOLD, "0")
    runs = Pending(catalog.runs_ledger(local_lake))
    filesystem, root = lake_filesystem(local_lake, local_lake.catalog_uri("runs"))
    write_whole(filesystem, f"{root}/{PENDING_DIR}/{'0' * 32}.parquet", runs.ledger.stamped([run_row("old")]))
    catalog.record_run(local_lake, run_row("new"), pending=True)
    assert sorted(history_ids(local_lake)) == ["new", "old"]
    assert fold_pending(local_lake, "runs") == 2  # the schema from the first file listed: the Parquet one
    assert delta_run_ids(local_lake) == Counter({"new": 1, "old": 1}) and pending_files(local_lake) == []
    assert sorted(history_ids(local_lake)) == ["new", "old"]


def test_many_pending_files_are_read_at_once_each_with_its_own_rows(any_lake: Lake, monkeypatch, caplog) -> None:
    """Readers and folds turn every pending file listed into Arrow at once (one table per schema,
    sliced per file): files of several rows, a cut-short one between them and a Parquet one of an
    earlier version each keep exactly their own rows; the cut-short one is skipped, then set aside."""
    monkeypatch.setenv(FOLD, "0")
    runs = Pending(catalog.runs_ledger(any_lake))
    filesystem, root = lake_filesystem(any_lake, any_lake.catalog_uri("runs"))
    sizes = [1, 3, 2, 1]
    for first, size in zip([0, 1, 4, 6], sizes, strict=True):
        runs.put([{**run_row(f"r{k}"), "rows_written": k} for k in range(first, first + size)])
    write_whole(filesystem, f"{root}/{PENDING_DIR}/{'0' * 32}.parquet", runs.ledger.stamped([run_row("old")]))
    with filesystem.open_output_stream(f"{root}/{PENDING_DIR}/{'f' * 32}.json") as stream:
        stream.write(b'{"schema":"')  # cut short
    expected = {f"r{k}": k for k in range(7)} | {"old": 1}
    assert {run["run_id"]: run["rows_written"] for run in catalog.run_history(any_lake)} == expected
    assert "is unreadable" in caplog.text
    assert runs.fold() == 5
    assert delta_run_ids(any_lake) == Counter(list(expected))  # each run once
    assert {run["run_id"]: run["rows_written"] for run in catalog.run_history(any_lake)} == expected
    assert pending_files(any_lake) == []


def test_a_failed_run_is_committed_at_once_with_the_pending_ones(local_lake: Lake, monkeypatch) -> None:
    monkeypatch.setenv(FOLD, "0")
    catalog.record_run(local_lake, run_row("ok"), pending=True)
    catalog.record_run(local_lake, run_row("failed", "error"))
    assert delta_run_ids(local_lake) == Counter({"ok": 1, "failed": 1}) and pending_files(local_lake) == []


def test_about_one_put_in_fold_every_folds(local_lake: Lake, monkeypatch) -> None:
    monkeypatch.setenv(FOLD, "1")
    catalog.record_run(local_lake, run_row("r0"), pending=True)
    assert delta_run_ids(local_lake) == Counter({"r0": 1}) and pending_files(local_lake) == []


def test_a_crash_between_the_fold_commit_and_the_deletes_doubles_nothing(local_lake: Lake, monkeypatch) -> None:
    monkeypatch.setenv(FOLD, "0")
    for k in range(2):
        catalog.record_run(local_lake, run_row(f"r{k}"), pending=True)
    runs = Pending(catalog.runs_ledger(local_lake))

    _crashed_fold(local_lake, runs)
    assert delta_run_ids(local_lake) == Counter({"r0": 1, "r1": 1}) and len(pending_files(local_lake)) == 2
    assert sorted(history_ids(local_lake)) == ["r0", "r1"]  # in the table and still pending: read once

    catalog.record_run(local_lake, run_row("r2"), pending=True)
    assert Pending(catalog.runs_ledger(local_lake), fold_every=0).fold() == 3  # the next fold skips r0, r1
    assert delta_run_ids(local_lake) == Counter({"r0": 1, "r1": 1, "r2": 1}) and pending_files(local_lake) == []


def _crashed_fold(lake: Lake, runs: Pending) -> None:
    """What a fold killed after its commit leaves: the rows in the table, the files still pending."""
    runs.ledger.append_batches({pending_module._batch_name(name): rows for name, rows in runs._pending().items()})


def test_a_fold_finds_what_a_crashed_fold_committed_in_the_recent_commits(any_lake: Lake, monkeypatch) -> None:
    """Whether a pending file's rows are in the table already is read off the commits written since
    the oldest pending file (a few commit files read at once), not asked of delta-rs per file (each
    answer a replay of the log: ~1.2 s for 20 files against moto)."""
    monkeypatch.setenv(FOLD, "0")
    runs = Pending(catalog.runs_ledger(any_lake))
    for k in range(12):
        catalog.record_run(any_lake, run_row(f"r{k}"), pending=True)
    _crashed_fold(any_lake, runs)
    for k in range(12, 20):
        catalog.record_run(any_lake, run_row(f"r{k}"), pending=True)
    runs.ledger.append([run_row("direct")])  # a commit of its own, after the crashed fold's

    def per_id(*args, **kwargs):
        raise AssertionError("asked delta-rs about one app transaction")

    monkeypatch.setattr(DeltaTable, "transaction_version", per_id)
    assert Pending(catalog.runs_ledger(any_lake), fold_every=0).fold() == 20
    assert delta_run_ids(any_lake) == Counter([f"r{k}" for k in range(20)] + ["direct"])
    assert pending_files(any_lake) == []


def test_a_fold_finds_what_a_crashed_fold_committed_in_the_checkpoint(local_lake: Lake, monkeypatch) -> None:
    """Once the log is checkpointed and the commits before the checkpoint are cleaned up, the app
    transactions of a crashed fold are read from the checkpoint: still no question to delta-rs per
    file, and each run once."""
    monkeypatch.setenv(FOLD, "0")
    runs = Pending(catalog.runs_ledger(local_lake))
    for k in range(3):
        catalog.record_run(local_lake, run_row(f"r{k}"), pending=True)
    _crashed_fold(local_lake, runs)
    table = DeltaTable(local_lake.catalog_uri("runs"))
    table.create_checkpoint()
    log = Path(local_lake.catalog_uri("runs")) / "_delta_log"
    for commit in sorted(log.glob("*.json"))[:-1]:  # the log cleaned up to the checkpoint's commit
        commit.unlink()
    runs.ledger.append([run_row("direct")])  # a commit after the checkpoint
    catalog.record_run(local_lake, run_row("r3"), pending=True)

    def per_id(*args, **kwargs):
        raise AssertionError("asked delta-rs about one app transaction")

    monkeypatch.setattr(DeltaTable, "transaction_version", per_id)
    assert Pending(catalog.runs_ledger(local_lake), fold_every=0).fold() == 4
    assert delta_run_ids(local_lake) == Counter({"r0": 1, "r1": 1, "r2": 1, "r3": 1, "direct": 1})
    assert pending_files(local_lake) == []


def test_a_log_laid_out_otherwise_is_left_to_delta_rs(tmp_path) -> None:
    """``app_ids_in_log`` answers None (the caller asks delta-rs) when the log's latest checkpoint
    is newer than the version asked about, or is not one classic checkpoint file."""
    root = str(tmp_path / "t")
    for version in range(3):
        write_deltalake(root, pa.table({"a": [version]}), mode="append",
                        commit_properties=CommitProperties(app_transactions=[Transaction(f"b{version}", 1)]))
    DeltaTable(root).create_checkpoint()
    local = pafs.LocalFileSystem()
    assert app_ids_in_log(local, root, 2, ["b0", "b2", "b9"]) == {"b0", "b2"}
    assert app_ids_in_log(local, root, 1, ["b0"]) is None  # checkpointed after version 1
    (tmp_path / "t" / "_delta_log" / f"{2:020d}.checkpoint.parquet").rename(
        tmp_path / "t" / "_delta_log" / f"{2:020d}.checkpoint.0000000001.0000000001.parquet")
    assert app_ids_in_log(local, root, 2, ["b0"]) is None


def test_a_half_written_pending_file_is_never_read(local_lake: Lake, monkeypatch) -> None:
    monkeypatch.setenv(FOLD, "0")
    catalog.record_run(local_lake, run_row("r0"), pending=True)
    filesystem, root = lake_filesystem(local_lake, local_lake.catalog_uri("runs"))
    with filesystem.open_output_stream(f"{root}/{PENDING_DIR}/.killed.parquet.tmp") as out:
        out.write(b"PAR1 half a file")
    assert history_ids(local_lake) == ["r0"]
    assert Pending(catalog.runs_ledger(local_lake)).fold() == 1


def test_optimize_folds_the_pending_runs_first(local_lake: Lake, monkeypatch) -> None:
    monkeypatch.setenv(FOLD, "0")
    for k in range(3):
        catalog.record_run(local_lake, run_row(f"r{k}"), pending=True)
    result = optimize_table(local_lake, "_catalog/runs")
    assert result["files_after"] == 1 and pending_files(local_lake) == []
    assert delta_run_ids(local_lake) == Counter({"r0": 1, "r1": 1, "r2": 1})


def record_runs(worker: int, count: int) -> None:
    from lakenodes import current_lake

    for k in range(count):
        catalog.record_run(current_lake(), run_row(f"w{worker}_r{k}"), pending=True)


@pytest.mark.slow
def test_processes_recording_and_folding_at_once_lose_nothing(tmp_path) -> None:
    """Four processes record 12 runs each while about every other record folds."""
    lake, workers, count = Lake(tmp_path / "lake"), 4, 12
    errors = in_processes(contend, [(lake.uri, {FOLD: "2"}, functools.partial(record_runs, k, count), 1)
                                    for k in range(workers)])
    assert errors == [None] * workers, [e for e in errors if e][:2]
    expected = sorted(f"w{k}_r{i}" for k in range(workers) for i in range(count))
    assert sorted(history_ids(lake)) == expected  # every run, once
    Pending(catalog.runs_ledger(lake), fold_every=0).fold()
    assert sorted(delta_run_ids(lake)) == expected and pending_files(lake) == []


def test_pending_reads_are_cached_and_forgotten_after_the_fold(local_lake: Lake, monkeypatch) -> None:
    monkeypatch.setenv(FOLD, "0")
    catalog.record_run(local_lake, run_row("r0"), pending=True)
    history_ids(local_lake)
    folder = f"{lake_filesystem(local_lake, local_lake.catalog_uri('runs'))[1]}/{PENDING_DIR}"
    assert [name for where, name in pending_module._read if where == folder] == pending_files(local_lake)
    Pending(catalog.runs_ledger(local_lake)).fold()
    history_ids(local_lake)
    assert [name for where, name in pending_module._read if where == folder] == []


def test_a_run_recorded_as_a_success_then_as_failed_is_one_failed_run(local_lake: Lake, monkeypatch) -> None:
    """The run's success file landed but its answer was lost (the run then failed in its catalog
    phase and recorded the failure): the run is read once, as failed, before and after the fold."""
    monkeypatch.setenv(FOLD, "0")
    catalog.record_run(local_lake, run_row("r0"), pending=True)
    catalog.record_run(local_lake, run_row("r1"), pending=True)
    catalog.record_run(local_lake, run_row("r0", status="error"))  # a failure folds the pending ones
    assert pending_files(local_lake) == []
    assert sorted((run["run_id"], run["status"]) for run in catalog.run_history(local_lake)) == [
        ("r0", "error"), ("r1", "success")]
    catalog.record_run(local_lake, run_row("r2"), pending=True)  # and with a pending file to merge
    assert sorted((run["run_id"], run["status"]) for run in catalog.run_history(local_lake)) == [
        ("r0", "error"), ("r1", "success"), ("r2", "success")]
