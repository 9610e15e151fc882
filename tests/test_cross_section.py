"""The time-ordered copy for cross-sectional reads (lakenodes.lake.cross_section): written by
``optimize_table(..., cross_section=True)``, used only for a time window with no identity filter
and only while every data file it holds is live (appends since add their own files to the read)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from deltalake import write_deltalake

from lakenodes import DataNode, DataNodeConfiguration, Lake, clear_caches
from lakenodes.lake import _table_scan as table_scan
from lakenodes.lake import cross_section
from lakenodes.lake.maintenance import optimize_table

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
ASSETS = ["A", "BRK/B", "é=1%"]


class CrossConfig(DataNodeConfiguration):
    name: str = "cross"


class CrossNode(DataNode):
    def __init__(self, days: int = 0, first: int = 0, **kwargs):
        super().__init__(CrossConfig(), **kwargs)
        self.days, self.first = days, first

    def dependencies(self) -> dict:
        return {}

    def update(self) -> pl.DataFrame:
        times = [T0 + dt.timedelta(days=self.first + d, microseconds=7) for d in range(self.days) for _ in ASSETS]
        return pl.DataFrame({"time_index": pl.Series(times, dtype=pl.Datetime("us", "UTC")),
                             "unique_identifier": ASSETS * self.days,
                             "close": [float(i) for i in range(self.days * len(ASSETS))]})


def day(n: int) -> dt.datetime:
    return T0 + dt.timedelta(days=n, microseconds=7)


@pytest.fixture
def per_asset_files_refused(monkeypatch):
    """Make a read fail if it opens the per-identity files (so it must have used the copy)."""
    def refuse(*args, **kwargs):
        raise AssertionError("read the per-identity files")

    def arm() -> None:
        monkeypatch.setattr(table_scan, "fragments_of", refuse)

    return arm


def test_a_cross_sectional_read_uses_the_copy_and_returns_the_same_rows(any_lake: Lake, per_asset_files_refused):
    node = CrossNode(days=30)
    node.run()
    expected = node.get_df_between_dates(day(10), day(12))
    result = optimize_table(any_lake, node.storage_hash, cross_section=True)
    assert result["cross_section_rows"] == 90
    clear_caches()
    per_asset_files_refused()
    assert node.get_df_between_dates(day(10), day(12)).equals(expected)
    assert node.get_df_between_dates(day(11), day(11))["unique_identifier"].to_list() == sorted(ASSETS)


def test_an_asset_scoped_read_does_not_use_the_copy(local_lake: Lake, monkeypatch):
    node = CrossNode(days=5)
    node.run()
    optimize_table(local_lake, node.storage_hash, cross_section=True)
    monkeypatch.setattr(table_scan, "cross_section_of",
                        lambda *a: (_ for _ in ()).throw(AssertionError("used the copy")))
    rows = node.get_df_between_dates(day(1), day(3), unique_identifier_list=["BRK/B"])
    assert rows["unique_identifier"].to_list() == ["BRK/B"] * 3
    assert cross_section.is_cross_sectional((), ((day(1), None),))


@pytest.fixture
def opened(monkeypatch) -> list[int]:
    """How many per-identity files each read opened (a read from the copy alone opens none)."""
    counts: list[int] = []
    real = table_scan.fragments_of

    def counting(filesystem, root, partition, files):
        counts.append(files.height)
        return real(filesystem, root, partition, files)

    monkeypatch.setattr(table_scan, "fragments_of", counting)
    return counts


def test_appends_after_optimize_keep_the_copy_and_add_their_files(any_lake: Lake, opened: list[int]):
    node = CrossNode(days=5)
    node.run()
    optimize_table(any_lake, node.storage_hash, cross_section=True)
    CrossNode(days=2, first=5).run()  # an append through lakenodes: one file per identity
    foreign = pa.table({"time_index": pa.array([day(9)], pa.timestamp("us", "UTC")), "unique_identifier": ["A"],
                        "close": [1.0]})
    write_deltalake(node.table_uri, foreign, mode="append", partition_by=["unique_identifier"],
                    storage_options=any_lake.storage_options or None)  # and one by another writer
    clear_caches()
    assert node.get_df_between_dates(day(1), day(2)).height == 6
    assert opened == []  # older dates: the copy alone
    rows = node.get_df_between_dates(day(4), day(9))
    assert opened == [4]  # the copy, and the 3 + 1 files appended since
    assert rows.equals(node.get_df_between_dates(day(4), day(9), unique_identifier_list=ASSETS))  # per-identity files
    assert rows.height == 3 + 6 + 1 and rows.filter(pl.col("time_index") == day(9))["close"].to_list() == [1.0]


def test_a_commit_removing_files_retires_the_copy(local_lake: Lake, opened: list[int]):
    node = CrossNode(days=5)
    node.run()
    optimize_table(local_lake, node.storage_hash, cross_section=True)
    CrossNode(days=1, first=2).run()  # a restatement of day 2: its files are rewritten
    clear_caches()
    assert node.get_df_between_dates(day(0), day(1)).height == 6
    assert opened == [3]  # the copy is retired: the per-identity files are read
    assert node.get_df_between_dates(day(2), day(2))["close"].to_list() == [0.0, 1.0, 2.0]
    node.store.delete_after(day(3))  # a tail delete
    assert node.get_df_between_dates(day(3), day(9)).is_empty()
    assert node.get_df_between_dates(day(0), day(2)).height == 9


def test_a_copy_whose_file_list_belongs_to_another_version_is_not_used(local_lake: Lake, opened: list[int]):
    """A concurrent optimize may leave the copy of one version next to the file list of another."""
    node = CrossNode(days=3)
    node.run()
    optimize_table(local_lake, node.storage_hash, cross_section=True)
    listing = Path(node.table_uri) / cross_section.FILES_PATH
    stale = listing.read_bytes()
    CrossNode(days=1, first=3).run()
    optimize_table(local_lake, node.storage_hash, cross_section=True)
    listing.write_bytes(stale)
    clear_caches()
    assert node.get_df_between_dates(day(0), day(3)).height == 12
    assert opened == [3]


def test_a_read_as_of_an_older_version_does_not_use_the_copy(local_lake: Lake):
    node = CrossNode(days=3)
    node.run()
    version = node.store.table().version()
    CrossNode(days=1, first=1).run()  # a restatement of day 1 (close values change)
    optimize_table(local_lake, node.storage_hash, cross_section=True)
    old = node.get_df_between_dates(day(1), day(1), as_of=version)
    new = node.get_df_between_dates(day(1), day(1))
    assert old["close"].to_list() == [3.0, 4.0, 5.0]
    assert new["close"].to_list() == [0.0, 1.0, 2.0]


def test_a_reader_holding_a_copy_survives_a_concurrent_optimize_writing_another(any_lake: Lake, opened: list[int]):
    """Regression: the copy was rewritten in place, so a reader that had cached its footer read the
    next copy with the old offsets ("Page was smaller than expected") while optimizes overlapped."""
    import subprocess
    import sys

    node = CrossNode(days=15)
    node.run()
    first_version = node.store.table().version()
    CrossNode(days=15, first=15).run()
    optimize_table(any_lake, node.storage_hash, cross_section=True)
    expected = node.get_df_between_dates(day(0), day(40))  # opens the copy, caches its footer
    assert opened == [] and expected.height == 90
    rewrite = ("import sys; from deltalake import DeltaTable; from lakenodes import Lake; "
               "from lakenodes.lake.cross_section import write_cross_section; "
               "lake = Lake(sys.argv[1], storage_options=dict(a.split('=', 1) for a in sys.argv[3:]) or None); "
               "write_cross_section(DeltaTable(sys.argv[2], version=0, "
               "storage_options=lake.storage_options or None), lake)")  # a slower optimize, of an older version
    options = [f"{key}={value}" for key, value in any_lake.storage_options.items()]
    subprocess.run([sys.executable, "-c", rewrite, any_lake.uri, node.table_uri, *options], check=True, timeout=120)
    assert first_version == 0
    for _ in range(2):
        assert node.get_df_between_dates(day(0), day(40)).equals(expected)


def test_a_copy_gone_from_under_a_reader_falls_back_to_the_data_files(local_lake: Lake, caplog):
    node = CrossNode(days=4)
    node.run()
    optimize_table(local_lake, node.storage_hash, cross_section=True)
    expected = node.get_df_between_dates(day(0), day(9))
    for copy in (Path(node.table_uri) / cross_section.COPIES).iterdir():
        copy.unlink()  # e.g. deleted as superseded while this process kept it cached
    assert node.get_df_between_dates(day(0), day(9)).equals(expected)
    assert "unreadable" in caplog.text
    assert node.get_df_between_dates(day(0), day(9)).equals(expected)  # and it is not tried again


def test_optimize_deletes_superseded_copies_and_leftovers_of_killed_writes(local_lake: Lake, monkeypatch):
    node = CrossNode(days=4)
    node.run()
    optimize_table(local_lake, node.storage_hash, cross_section=True)
    folder = Path(node.table_uri) / "_lakenodes"
    (folder / ".cross_section.parquet.1234.tmp").write_bytes(b"half a copy")  # a write killed mid-way
    (folder / "cross_section.parquet").write_bytes(b"the copy of an older lakenodes")
    CrossNode(days=1, first=4).run()
    optimize_table(local_lake, node.storage_hash, cross_section=True)
    assert len(list((folder / "cross_section").iterdir())) == 2  # the previous copy stays a while for readers
    monkeypatch.setattr(cross_section, "SUPERSEDED_SECONDS", -1)
    CrossNode(days=1, first=5).run()
    optimize_table(local_lake, node.storage_hash, cross_section=True)
    assert sorted(path.name for path in folder.iterdir() if "cross_section" in path.name) == [
        "cross_section", "cross_section.files.parquet"]
    assert len(list((folder / "cross_section").iterdir())) == 1
    assert node.get_df_between_dates(day(0), day(9)).height == 18


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """Seconds added to the clock the copies are retired and aged by (``clock[0] = 3600``: an hour later)."""
    shift = [0.0]
    monkeypatch.setattr(cross_section, "_now", lambda: time.time() + shift[0])
    return shift


def test_a_copy_is_deleted_an_hour_after_it_was_superseded_however_old(local_lake: Lake, clock: list[float]):
    """Regression: copies went by the time they were written, so a copy written two hours ago was
    deleted by the optimize that superseded it, under a reader that had just opened the pointer to it."""
    node = CrossNode(days=4)
    node.run()
    copies = Path(node.table_uri) / cross_section.COPIES

    def optimize(first: int) -> set[str]:
        CrossNode(days=1, first=first).run()  # a new version: optimize writes a copy
        assert optimize_table(local_lake, node.storage_hash, cross_section=True)["cross_section"] == "written"
        return {path.name for path in copies.iterdir()}

    optimize_table(local_lake, node.storage_hash, cross_section=True)
    (a,) = {path.name for path in copies.iterdir()}
    orphan = copies / "0123.parquet"  # an optimize killed after writing its copy, before pointing at it
    orphan.write_bytes(b"a copy never pointed at")
    two_hours_ago = time.time() - 7200
    for path in (copies / a, orphan):
        os.utime(path, (two_hours_ago, two_hours_ago))
    assert node.get_df_between_dates(day(0), day(9)).height == 12  # a reader opens copy a
    after_b = optimize(4)
    assert {a, orphan.name} < after_b  # a was current until now; the orphan is found now
    clock[0] = 1800
    after_c = optimize(5)
    assert after_b < after_c
    clock[0] = 3660  # an hour after b superseded a, half an hour after c superseded b
    after_d = optimize(6)
    (d,) = after_d - after_c
    assert after_d == after_c - {a, orphan.name} | {d}  # b and c stay a while yet
    assert node.get_df_between_dates(day(0), day(9)).height == 21


def test_optimize_keeps_a_copy_already_of_the_tables_version(any_lake: Lake, monkeypatch, per_asset_files_refused):
    node = CrossNode(days=30)
    node.run()
    filesystem, root = cross_section.lake_filesystem(any_lake, node.table_uri)

    def files() -> dict[str, int]:
        listing = filesystem.get_file_info(pafs.FileSelector(f"{root}/_lakenodes", recursive=True))
        return {info.path: info.mtime_ns for info in listing if info.type == pafs.FileType.File}

    def optimize() -> dict:
        return optimize_table(any_lake, node.storage_hash, cross_section=True)

    first = optimize()
    assert (first["cross_section"], first["cross_section_rows"]) == ("written", 90)
    written = files()
    monkeypatch.setattr(cross_section, "SUPERSEDED_SECONDS", -1)  # would delete any copy superseded
    again = optimize()
    assert (again["cross_section"], again["cross_section_rows"]) == ("current", 90)
    assert again["version_after"] == first["version_after"] and files() == written  # nothing written or deleted
    clear_caches()
    per_asset_files_refused()
    assert node.get_df_between_dates(day(3), day(3)).height == 3  # from the copy kept
    monkeypatch.undo()
    monkeypatch.setattr(cross_section, "ROW_GROUP_ROWS", 1_024)  # another layout
    assert optimize()["cross_section"] == "written"
    for path in set(files()) - set(written):
        if cross_section.COPIES in path:
            filesystem.delete_file(path)  # the current copy deleted by hand: written again
    assert (optimize()["cross_section"], optimize()["cross_section"]) == ("written", "current")
    CrossNode(days=1, first=30).run()
    assert (optimize()["cross_section"], optimize()["cross_section_rows"]) == ("written", 93)


def test_the_cli_says_what_optimize_did_with_the_copy(local_lake: Lake):
    from typer.testing import CliRunner

    from lakenodes.cli import app

    node = CrossNode(days=3)
    node.run()
    arguments = ["--lake", local_lake.uri, "optimize", node.storage_hash, "--cross-section"]
    outputs = [CliRunner().invoke(app, arguments, env={"COLUMNS": "200"}) for _ in range(2)]
    assert [result.exit_code for result in outputs] == [0, 0], [result.stderr for result in outputs]
    assert "written (9 rows)" in outputs[0].stdout and "already current (9 rows)" in outputs[1].stdout
    plain = CliRunner().invoke(app, arguments[:-1], env={"COLUMNS": "200"})
    assert plain.exit_code == 0 and "Cross-section" not in plain.stdout


def test_a_table_never_optimized_with_a_copy_logs_nothing_about_it(any_lake: Lake, caplog):
    node = CrossNode(days=3)
    node.run()
    with caplog.at_level(logging.DEBUG, logger=cross_section.__name__):
        assert node.get_df_between_dates(day(0), day(9)).height == 9  # a cross-sectional read looks for the copy
        assert optimize_table(any_lake, node.storage_hash, cross_section=True)["cross_section"] == "written"
    assert not [record for record in caplog.records if record.name == cross_section.__name__], caplog.text


@pytest.mark.parametrize("where", ["moved", pytest.param("uploaded", marks=pytest.mark.s3)])
def test_a_moved_or_uploaded_lake_keeps_its_copy(tmp_path: Path, request, where: str, per_asset_files_refused):
    """Regression: the copy was stamped with the table's URI, so a lake moved (``mv``) or uploaded to S3
    as it is (``aws s3 sync``) ignored it: cross-sectional reads opened every per-identity file again and
    the next ``optimize --cross-section`` wrote the whole copy again ("written", not "already current")."""
    import shutil

    from lake_copies import upload

    original = Lake(tmp_path / "original")
    node = CrossNode(days=30, lake=original)
    node.run()
    assert optimize_table(original, node.storage_hash, cross_section=True)["cross_section"] == "written"
    expected = node.get_df_between_dates(day(10), day(12))
    if where == "moved":
        shutil.move(tmp_path / "original", tmp_path / "moved")
        lake = Lake(tmp_path / "moved")
    else:
        lake = request.getfixturevalue("s3_server").new_lake()
        upload(tmp_path / "original", lake)
    clear_caches()

    per_asset_files_refused()
    assert CrossNode(lake=lake).get_df_between_dates(day(10), day(12)).equals(expected)
    result = optimize_table(lake, node.storage_hash, cross_section=True)
    assert (result["cross_section"], result["cross_section_rows"]) == ("current", 90)
