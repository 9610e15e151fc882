"""Storage faults a user can act on end a run with ONE line naming the cause and the path.

Real faults only: a full tmpfs, a tmpfs remounted read-only (chmod does not stop root), a lake
so deep that data file paths exceed PATH_MAX, a garbage commit file in ``_delta_log``. Each test
reproduced its symptom on the code before the fix ("Failed to parse parquet: ...", "could not
create table <path>" without a cause, a 17-line kernel error, "Already shut down" panics on
stderr, a full disk retried 12 times).
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from pydantic import Field
from typer.testing import CliRunner

from lakenodes import (
    CorruptTableError,
    DataNode,
    DataNodeConfiguration,
    Lake,
    NodeRunError,
    PathTooLongError,
    ReadOnlyStorageError,
    StorageError,
    StorageFullError,
    TimeIndexMetaTable,
    clear_caches,
    use_lake,
)
from lakenodes.cli import app as cli_app
from lakenodes.errors import StoragePermissionError, one_line
from lakenodes.lake._rust_stderr import PanicFilter
from lakenodes.search import SearchIndexNotStoredWarning
from lakenodes.search import sync as search_sync

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
RUNTIME = {"runtime_only": True}
TESTS = Path(__file__).parent


class PricesConfig(DataNodeConfiguration):
    name: str
    days: int = Field(1, json_schema_extra=RUNTIME)
    restate: bool = Field(False, json_schema_extra=RUNTIME)  # rewrite from the first day (a MERGE)
    uid: str = Field("AAPL", json_schema_extra=RUNTIME)


class Prices(DataNode):
    """``days`` daily rows of one asset after its watermark (or from the first day: ``restate``)."""

    IDENTITY_DIMENSIONS = ("unique_identifier",)

    def dependencies(self) -> dict[str, DataNode]:
        return {}

    def update(self) -> pl.DataFrame:
        last = self.update_statistics.max_time_index_value
        first = 0 if self.config.restate or last is None else (last - START).days + 1
        days = range(first, first + self.config.days)
        return pl.DataFrame({"time_index": [START + dt.timedelta(days=day) for day in days],
                             "unique_identifier": [self.config.uid] * len(days),
                             "value": [float(day) + self.config.restate for day in days]})


# what a refused search index write adds to its one line
_REFRESH_ADVICE = ("; a search works without it (`lakenodes search Q` builds the index in memory); "
                   "to store the index, refresh it as someone who may write to the lake")


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs (root only: CI runs as root on Linux)."""
    folder = tmp_path / "mnt"
    folder.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder))
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN on Linux): {error}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def fill(folder: Path) -> None:
    """Fill the file system of ``folder`` to the last byte. Unbuffered: a buffered file kept the part
    of its last chunk that did not fit and failed again closing (ENOSPC out of ``with``) whenever the
    free space was not a multiple of the chunk, i.e. depending on what the run before had written."""
    with open(folder / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)  # a partial write returns short; the next one raises ENOSPC
        except OSError as error:
            assert error.errno == errno.ENOSPC


def run_failure(node: DataNode) -> NodeRunError:
    with pytest.raises(NodeRunError) as caught:
        node.run()
    return caught.value


def assert_one_line(error: BaseException) -> None:
    assert "\n" not in str(error), str(error)
    assert "Failed to parse parquet" not in str(error) and "<unknown>" not in str(error)


def assert_no_panic(capfd: pytest.CaptureFixture[str]) -> None:
    err = capfd.readouterr().err
    assert "Already shut down" not in err and "panicked" not in err, err


# -- full disk ---------------------------------------------------------------------------------------
def test_full_disk_fails_the_write_with_one_line(tmpfs: Path, capfd, caplog) -> None:
    with use_lake(Lake(tmpfs / "lake")):
        Prices(PricesConfig(name="p")).run()
        fill(tmpfs)
        caplog.set_level(logging.WARNING, logger="lakenodes")
        started = time.monotonic()
        error = run_failure(Prices(PricesConfig(name="p", days=3)))

    assert error.phase == "write" and isinstance(error.cause, StorageFullError)
    assert error.cause.errno == errno.ENOSPC and isinstance(error.cause, OSError)
    assert_one_line(error)
    assert "no space left on device" in str(error) and f"{tmpfs}/lake/tables/" in str(error)
    assert "retrying" not in caplog.text and time.monotonic() - started < 10  # not transient: no retries
    assert_no_panic(capfd)


def test_full_disk_restatement_is_not_retried(tmpfs: Path, capfd, caplog) -> None:
    """A restatement writes its files with pyarrow (an OSError, ENOSPC): it was retried 12 times."""
    with use_lake(Lake(tmpfs / "lake")):
        Prices(PricesConfig(name="p", days=2)).run()
        fill(tmpfs)
        caplog.set_level(logging.WARNING, logger="lakenodes")
        error = run_failure(Prices(PricesConfig(name="p", days=2, restate=True)))

    assert isinstance(error.cause, StorageFullError), error
    assert_one_line(error)
    assert "retrying" not in caplog.text
    assert_no_panic(capfd)


class SpreadConfig(DataNodeConfiguration):
    name: str
    days: int = Field(1, json_schema_extra=RUNTIME)


class Spread(DataNode):
    """``days`` daily rows of each of 100 assets after the watermark: one data file per asset."""

    IDENTITY_DIMENSIONS = ("unique_identifier",)

    def dependencies(self) -> dict[str, DataNode]:
        return {}

    def update(self) -> pl.DataFrame:
        last = self.update_statistics.max_time_index_value
        first = 0 if last is None else (last - START).days + 1
        pairs = [(asset, first + day) for asset in range(100) for day in range(self.config.days)]
        return pl.DataFrame({"time_index": [START + dt.timedelta(days=day) for _, day in pairs],
                             "unique_identifier": [f"A{asset:03d}" for asset, _ in pairs],
                             "value": [float(asset * 1000 + day) for asset, day in pairs]})


def test_a_disk_filling_during_a_multi_file_write_leaves_orphan_files_vacuum_removes(tmpfs: Path) -> None:
    """docs/reliability.md, "A disk that fills during a write": data files no commit names stay;
    readers never see them; vacuum deletes them once older than its retention; forcing a 0 h
    retention on the still-full disk fails (vacuum commits too), and works once a little space is free."""
    from deltalake import DeltaTable

    from lakenodes.lake.maintenance import vacuum_table

    lake = Lake(tmpfs / "lake")
    with use_lake(lake):
        node = Spread(SpreadConfig(name="s"))
        node.run()
        fill(tmpfs)
        filler = tmpfs / "filler"
        os.truncate(filler, filler.stat().st_size - 400 * 1024)  # room for some of the 100 files, not the commit
        error = run_failure(Spread(SpreadConfig(name="s", days=30)))
        assert error.phase == "write" and isinstance(error.cause, StorageFullError), error

        table = Path(node.store.uri)
        on_disk = {str(path.relative_to(table)) for path in table.glob("unique_identifier=*/*.parquet")}
        live = set(DeltaTable(str(table)).file_uris())
        orphans = {path for path in on_disk if f"file://{table}/{path}" not in live and f"{table}/{path}" not in live}
        assert len(live) == 100 and orphans and len(on_disk) == 100 + len(orphans)
        assert node.get_df_between_dates().height == 100  # readers see the last commit only

        assert vacuum_table(lake, node.storage_hash, dry_run=True)["files"] == []  # younger than 168 h
        assert set(vacuum_table(lake, node.storage_hash, 0, dry_run=True)["files"]) == orphans
        with pytest.raises(StorageFullError):
            vacuum_table(lake, node.storage_hash, 0, force_unsafe_retention=True)
        os.truncate(filler, filler.stat().st_size - 64 * 1024)
        assert set(vacuum_table(lake, node.storage_hash, 0, force_unsafe_retention=True)["files"]) == orphans
        assert {str(path.relative_to(table)) for path in table.glob("unique_identifier=*/*.parquet")} == \
            on_disk - orphans
        assert node.get_df_between_dates().height == 100


# -- read-only file system ---------------------------------------------------------------------------
def test_read_only_lake_fails_the_write_naming_the_file(tmpfs: Path, capfd) -> None:
    with use_lake(Lake(tmpfs / "lake")):
        Prices(PricesConfig(name="p")).run()
        _mount("-o", "remount,ro", str(tmpfs))
        error = run_failure(Prices(PricesConfig(name="p")))

    assert error.phase == "write" and isinstance(error.cause, ReadOnlyStorageError)
    assert error.cause.errno == errno.EROFS
    assert_one_line(error)
    assert "read-only file system" in str(error) and f"{tmpfs}/lake/tables/" in error.cause.path
    assert_no_panic(capfd)


def test_new_table_on_a_read_only_lake_names_the_cause(tmpfs: Path, capfd) -> None:
    """Was ``RuntimeError: could not create table <path>`` without its cause."""
    with use_lake(Lake(tmpfs / "lake")):
        Prices(PricesConfig(name="p")).run()
        _mount("-o", "remount,ro", str(tmpfs))
        node = Prices(PricesConfig(name="another"))
        error = run_failure(node)

    assert isinstance(error.cause, ReadOnlyStorageError), error
    assert str(error.cause) == f"create table failed: read-only file system: {node.store.uri}"
    assert_no_panic(capfd)


def test_cli_prints_one_line_on_a_read_only_lake(tmpfs: Path, tmp_path: Path) -> None:
    lake = tmpfs / "lake"
    command = [sys.executable, "-m", "lakenodes", "--lake", str(lake), "run", f"{TESTS / 'journal_nodes.py'}:Daily",
               "--config", f'{{"name": "cli", "journal": "{tmp_path / "journal.txt"}"}}']
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    _mount("-o", "remount,ro", str(tmpfs))

    failed = subprocess.run(command, capture_output=True, text=True, timeout=120)

    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    assert len(lines) == 1, failed.stderr  # no panics, no backtrace
    assert lines[0].startswith("error: ") and "ReadOnlyStorageError" in lines[0]
    assert "read-only file system" in lines[0] and f"{lake}/tables/" in lines[0]


def test_identifier_claims_on_a_read_only_lake_are_storage_errors(tmpfs: Path, capfd) -> None:
    """A new identifier's claim fails the run in ``registration`` with the claim's path; repointing an
    identifier (``data-node repoint``) used to print delta-rs's "Already shut down" panic and end as
    ``DeltaError: Failed to parse parquet: ... Read-only file system (os error 30)``."""
    from lakenodes import DataNodeMetaData
    from lakenodes.catalog import catalog

    lake = Lake(tmpfs / "lake")
    with use_lake(lake):
        owner = Prices(PricesConfig(name="p", node_metadata=DataNodeMetaData(identifier="owned")))
        owner.run()
        _mount("-o", "remount,ro", str(tmpfs))
        error = run_failure(Prices(PricesConfig(name="q", node_metadata=DataNodeMetaData(identifier="new_name"))))
        assert error.phase == "registration" and isinstance(error.cause, ReadOnlyStorageError), error
        assert str(error.cause).startswith(f"claim failed: read-only file system: {lake.uri}/_catalog/claims/")
        assert_one_line(error)
        again = run_failure(Prices(PricesConfig(name="p", node_metadata=DataNodeMetaData(identifier="owned"))))
        assert again.phase == "write" and isinstance(again.cause, ReadOnlyStorageError), again  # its claim is read

        with pytest.raises(ReadOnlyStorageError) as caught:
            catalog.repoint_identifier("owned", owner.storage_hash, lake=lake)
    assert str(caught.value).startswith(f"reassign claim failed: read-only file system: {lake.uri}/_catalog/claims/")
    assert_one_line(caught.value)
    assert_no_panic(capfd)


def _search_hits(lake: Lake, query: str) -> set[str]:
    return {hit["storage_hash"] for hit in TimeIndexMetaTable.description_search(query, lake=lake)["results"]}


@pytest.mark.parametrize("command", ["optimize", "vacuum"])
def test_maintenance_on_a_read_only_lake_names_the_command_and_each_table(
        tmpfs: Path, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was ``error: ReadOnlyStorageError: catalog append to runs failed: read-only file system:
    <lake>/_catalog/runs/_delta_log`` before any table was looked at: folding the pending run records
    (which maintenance does first) failed the whole command without naming it. Now that fold is
    ``_catalog/runs``' own step: it fails like any table's, in the command's summary, and the other
    tables are still maintained (vacuum deletes nothing here, and so writes nothing)."""
    monkeypatch.setenv("LAKENODES_CATALOG_FOLD_EVERY", "0")  # the runs stay pending files: never folded
    lake = Lake(tmpfs / "lake")
    with use_lake(lake):
        node = Prices(PricesConfig(name="p"))
        node.run()
        Prices(PricesConfig(name="p")).run()
    _mount("-o", "remount,ro", str(tmpfs))

    result = CliRunner().invoke(cli_app, ["--lake", lake.uri, "--json", command])

    assert result.exit_code == 1, (result.stdout, result.stderr)
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {command} failed for "), line
    assert f"_catalog/runs: ReadOnlyStorageError: catalog append to runs failed: read-only file system: " \
           f"{lake.uri}/_catalog/runs" in line
    results = {entry["table"]: entry for entry in json.loads(result.stdout)["results"]}
    assert set(results) == {node.storage_hash, "_catalog/tables", "_catalog/runs", "_catalog/updates"}
    assert "read-only file system" in results["_catalog/runs"]["error"]
    if command == "vacuum":  # nothing to delete: the other tables are vacuumed without a write
        assert [name for name, entry in results.items() if "error" in entry] == ["_catalog/runs"]


def test_search_on_a_read_only_lake_without_an_index_searches_in_memory(tmpfs: Path) -> None:
    """Was ``error: OSError: [Errno 30] Read-only file system: <lake>/_catalog/search``, exit 1: a
    reader of a lake they cannot write gets their results and one warning line saying how to store the index."""
    lake = Lake(tmpfs / "lake")
    with use_lake(lake):
        node = Prices(PricesConfig(name="p"))
        node.run()
    _mount("-o", "remount,ro", str(tmpfs))

    result = CliRunner().invoke(cli_app, ["--lake", lake.uri, "--json", "search", "Prices"])

    assert result.exit_code == 0, (result.stdout, result.stderr)
    document = json.loads(result.stdout)
    found = [hit["storage_hash"] for page in ("description", "column") for hit in document[page]["results"]]
    assert node.storage_hash in found
    [warning] = document["warnings"]  # built once for both rankings
    assert result.stderr.splitlines() == [f"warning: {warning}"]
    assert f"search index of {lake.uri} is not built and cannot be stored (read-only file system)" in warning
    assert "`lakenodes search --refresh`" in warning

    refresh = CliRunner().invoke(cli_app, ["--lake", lake.uri, "search", "--refresh"])
    assert refresh.exit_code == 1
    assert refresh.stderr.splitlines() == [
        f"error: ReadOnlyStorageError: search index rebuild failed: read-only file system: {lake.uri}/_catalog/search"
        f"{_REFRESH_ADVICE}"]


def test_search_on_a_read_only_lake_without_an_index_deletes_nothing(tmpfs: Path, caplog) -> None:
    """Regression: LanceDB cannot create the missing index folder there, which the index took for a
    damaged index: ``WARNING search index <lake>/_catalog/search is unreadable (OSError: [Errno 30] ...)``,
    then ``...: deleting it to recreate it`` (a drop of every index table, refused too). A folder the
    lake refuses is not a damaged index: the one warning left is the search's own, saying what it did."""
    lake = Lake(tmpfs / "lake")
    with use_lake(lake):
        Prices(PricesConfig(name="p")).run()
    _mount("-o", "remount,ro", str(tmpfs))
    caplog.set_level(logging.WARNING, logger="lakenodes")

    with pytest.warns(SearchIndexNotStoredWarning, match="is not built and cannot be stored"):
        assert len(_search_hits(lake, "Prices")) == 1

    assert [record.getMessage() for record in caplog.records] == []


def test_search_on_a_read_only_lake_with_a_stored_index(tmpfs: Path) -> None:
    """A current stored index is searched as is; one behind the catalog (a table registered since the
    last search) cannot catch up, so the search uses an in-memory index holding the new table."""
    lake = Lake(tmpfs / "lake")
    with use_lake(lake):
        first = Prices(PricesConfig(name="p"))
        first.run()
        assert _search_hits(lake, "Prices") == {first.storage_hash}  # stores the index
        _mount("-o", "remount,ro", str(tmpfs))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert _search_hits(lake, "Prices") == {first.storage_hash}

        _mount("-o", "remount,rw", str(tmpfs))
        second = Prices(PricesConfig(name="q"))
        second.run()
        _mount("-o", "remount,ro", str(tmpfs))
        with pytest.warns(SearchIndexNotStoredWarning, match="is behind the catalog and cannot be stored"):
            assert _search_hits(lake, "Prices") == {first.storage_hash, second.storage_hash}
        with warnings.catch_warnings():  # reused while the catalog does not change
            warnings.simplefilter("error")
            assert _search_hits(lake, "Prices") == {first.storage_hash, second.storage_hash}



def _indexes_built(lake: Lake, query: str, expected: set[str]) -> int:
    """Search ``lake``; how many in-memory indexes that built (each says so in a warning)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _search_hits(lake, query) == expected
    return sum(issubclass(warning.category, SearchIndexNotStoredWarning) for warning in caught)


def test_in_memory_search_indexes_are_kept_per_lake_and_dropped_by_clear_caches(tmpfs: Path) -> None:
    """Regression: the in-memory index of a read-only lake was kept in a process-wide dict that
    ``clear_caches()`` did not empty, and searching a second read-only lake dropped the first's (built
    again, with its warning, on the way back). Each lake now keeps its newest index, until its catalog
    changes or the caches are cleared."""
    lakes = [Lake(tmpfs / "one"), Lake(tmpfs / "two")]
    nodes = []
    for lake in lakes:
        with use_lake(lake):
            nodes.append(Prices(PricesConfig(name="p")))
            nodes[-1].run()
    _mount("-o", "remount,ro", str(tmpfs))
    one, two = ({node.storage_hash} for node in nodes)

    assert [_indexes_built(lakes[0], "Prices", one), _indexes_built(lakes[1], "Prices", two)] == [1, 1]
    assert [_indexes_built(lakes[1], "Prices", two), _indexes_built(lakes[0], "Prices", one)] == [0, 0]
    clear_caches()  # lake one's index was the last used: built again only because it was dropped
    assert _indexes_built(lakes[0], "Prices", one) == 1

    _mount("-o", "remount,rw", str(tmpfs))
    with use_lake(lakes[0]):
        added = Prices(PricesConfig(name="q"))
        added.run()
    _mount("-o", "remount,ro", str(tmpfs))
    assert _indexes_built(lakes[0], "Prices", one | {added.storage_hash}) == 1  # the catalog changed
    assert len(search_sync._in_memory) == 1  # the index of the older catalog was dropped

def test_search_on_a_read_only_lake_after_a_catalog_compaction(tmpfs: Path, caplog) -> None:
    """A catalog compaction (``lakenodes optimize``, or the catalog's own housekeeping) leaves the stored
    index current but its catch-up marker behind. Regression: on a read-only lake every search compared
    the whole catalog with the index again and logged ``WARNING cannot record the search index's catalog
    version at ...: [Errno 30] ...``; now the marker is kept in the process: one DEBUG line, once."""
    from lakenodes.lake.maintenance import optimize_table

    lake = Lake(tmpfs / "lake")
    with use_lake(lake):
        nodes = [Prices(PricesConfig(name=name)) for name in ("p", "q")]
        for node in nodes:
            node.run()
        expected = {node.storage_hash for node in nodes}
        assert _search_hits(lake, "Prices") == expected  # stores the index and its marker
        compacted = optimize_table(lake, "_catalog/tables")
        assert compacted["files_before"] == 2 and compacted["files_after"] == 1
    _mount("-o", "remount,ro", str(tmpfs))
    clear_caches()  # a reader's new process
    caplog.set_level(logging.DEBUG, logger="lakenodes.search")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the stored index is current: no SearchIndexNotStoredWarning
        for _ in range(3):
            assert _search_hits(lake, "Prices") == expected

    about_marker = [record for record in caplog.records if "catalog version" in record.getMessage()]
    assert [record.levelno for record in about_marker] == [logging.DEBUG], caplog.text
    assert "cannot be stored" in about_marker[0].getMessage() and "read-only file system" in about_marker[0].getMessage()


@pytest.mark.parametrize("index_stored", [False, True], ids=["no-index", "stored-index"])
def test_refresh_search_index_on_a_read_only_lake_is_one_line(tmpfs: Path, index_stored: bool) -> None:
    """Was ``error: OSError: [Errno 30] Read-only file system: <lake>/_catalog/search`` (no index yet)
    or ``error: RuntimeError: lance error: LanceError(IO): ... object_store.rs:1006:34`` (a stored
    index): now the ReadOnlyStorageError line of the other commands, exit 1, also in ``--json``."""
    lake = Lake(tmpfs / "lake")
    with use_lake(lake):
        node = Prices(PricesConfig(name="p"))
        node.run()
        if index_stored:
            assert _search_hits(lake, "Prices") == {node.storage_hash}
    _mount("-o", "remount,ro", str(tmpfs))
    message = f"search index refresh failed: read-only file system: {lake.uri}/_catalog/search{_REFRESH_ADVICE}"

    refreshed = CliRunner().invoke(cli_app, ["--lake", lake.uri, "data-node", "refresh-search-index", node.storage_hash])
    as_json = CliRunner().invoke(cli_app, ["--lake", lake.uri, "--json", "data-node", "refresh-search-index",
                                           node.storage_hash])

    assert refreshed.exit_code == 1 and as_json.exit_code == 1
    [line] = refreshed.stderr.splitlines()
    assert line == f"error: ReadOnlyStorageError: {message}"
    error = json.loads(as_json.stdout)["error"]
    assert error["message"] == f"ReadOnlyStorageError: {message}"


# -- names too long ----------------------------------------------------------------------------------
def test_path_too_long_fails_the_write_with_one_line(tmp_path: Path, capfd) -> None:
    """A lake so deep that its catalog fits within PATH_MAX (4096) but a data file does not."""
    root = tmp_path
    while len(str(root)) < 3900:
        root = root / ("d" * min(200, 3900 - len(str(root))))
    os.makedirs(root)
    with use_lake(Lake(root)):
        error = run_failure(Prices(PricesConfig(name="p", uid="U" * 150)))

    assert error.phase == "write" and isinstance(error.cause, PathTooLongError), error
    assert error.cause.errno == errno.ENAMETOOLONG
    assert_one_line(error)
    assert "file name too long" in str(error) and str(root) in str(error)
    assert_no_panic(capfd)


# -- a garbage commit --------------------------------------------------------------------------------
def garbage_commit(node: DataNode) -> Path:
    log = Path(node.store.uri) / "_delta_log"
    version = max(int(path.stem) for path in log.glob("*.json")) + 1
    garbage = log / f"{version:020d}.json"
    garbage.write_text("this is not a delta commit\n")
    return garbage


@pytest.mark.parametrize("cached", [True, False], ids=["refresh", "open"])
def test_garbage_commit_names_the_table_version_and_file(local_lake: Lake, cached: bool) -> None:
    node = Prices(PricesConfig(name="p"))
    node.run()
    garbage = garbage_commit(node)
    if not cached:
        clear_caches()  # a fresh process: the table is opened, not refreshed

    error = run_failure(node)

    cause = error.cause
    assert error.phase == "statistics" and isinstance(cause, CorruptTableError), error
    assert (cause.version, cause.log_file, cause.path) == (int(garbage.stem), str(garbage), node.store.uri)
    assert_one_line(error)
    assert f"commit {int(garbage.stem)} (_delta_log/{garbage.name}) line 1 is not valid JSON" in str(error)
    assert node.store.uri in str(error)


# -- the pieces --------------------------------------------------------------------------------------
def test_node_run_error_is_one_line_without_rust_backtrace() -> None:
    cause = RuntimeError("Kernel error: Json error: bad\n   0: <unknown>\n  12: start_thread\n"
                         "             at ./nptl/pthread_create.c:442:8\n")
    assert str(NodeRunError("N", "write", cause)) == "N failed during write: RuntimeError: Kernel error: Json error: bad"
    assert one_line("a\n   1: <unknown>\nb") == "a b"


@pytest.mark.parametrize("error", [
    StorageFullError("no space left on device", path="/l/t", operation="write"),
    CorruptTableError("corrupt", path="/l/t", operation="open", version=3, log_file="/l/t/_delta_log/3.json"),
])
def test_storage_errors_survive_a_process_boundary(error: StorageError) -> None:
    again = pickle.loads(pickle.dumps(NodeRunError("N", "write", error))).cause
    assert type(again) is type(error) and str(again) == str(error)
    assert (again.errno, again.path, again.operation) == (error.errno, error.path, error.operation)
    assert getattr(again, "version", None) == getattr(error, "version", None)


def test_panic_filter_across_chunks_and_interleaved_panics() -> None:
    header = b"thread 'tokio-rt-worker' (%d) panicked at /r/object_store-0.13.2/src/buffered.rs:369:41:\n"
    stream = (b"keep 1\n\n" + header % 1 + b"Already shut down\nstack backtrace:\n" + b"\n" + header % 2
              + b"Already shut down\nnote: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose"
              b" backtrace.\n   0: <unknown>\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
              b"keep 2\nthread 'main' panicked at src/other.rs:1:1:\nreal bug\n")
    for size in (1, 7, len(stream)):
        panic = PanicFilter()
        out = b"".join(panic.feed(stream[i:i + size]) for i in range(0, len(stream), size)) + panic.finish()
        assert out == b"keep 1\nkeep 2\nthread 'main' panicked at src/other.rs:1:1:\nreal bug\n", (size, out)


def test_missing_s3_credentials_become_a_permission_error_naming_the_fix() -> None:
    from lakenodes.lake._storage_errors import as_storage_error, retryable

    raw = OSError("Kernel error -> Operation not supported ↳ an error occurred while loading credentials "
                  "↳ failed to load IMDS session token")
    error = as_storage_error(raw, "s3://bucket/lake/tables/t", "open")
    assert isinstance(error, StoragePermissionError) and not retryable(error)
    assert str(error).startswith("open failed: no S3 credentials found (set AWS_ACCESS_KEY_ID")
    assert as_storage_error(OSError("connection reset by peer"), "s3://bucket/lake", "open") is None


@pytest.mark.parametrize("published", [False, True], ids=["table", "identifier_claim"])
def test_a_bucket_that_does_not_exist_is_a_configuration_mistake(s3_server, published) -> None:
    """Regression: a mistyped bucket failed a run with S3's 404 XML in a 1,000-character OSError (a
    storage fault a scheduler retries); the first storage call that meets NoSuchBucket names it."""
    from lakenodes import DataNodeMetaData, LakeConfigurationError

    metadata = DataNodeMetaData(identifier="prices_no_bucket") if published else None
    lake = Lake("s3://no-such-bucket-lakenodes/lake", storage_options=s3_server.storage_options)
    with use_lake(lake):
        error = run_failure(Prices(PricesConfig(name="no_bucket", node_metadata=metadata)))
    assert isinstance(error.cause, LakeConfigurationError), error
    assert "no bucket 'no-such-bucket-lakenodes' for s3://no-such-bucket-lakenodes/lake" in str(error)
    assert_one_line(error)
    assert "<Error>" not in str(error)


def test_the_last_error_line_reaches_stderr_while_another_thread_filters_delta_panics():
    """Regression: Ctrl-C during a run sometimes exited 130 with an empty stderr. The CLI ends with
    os._exit; when a background catalog write (a delta-rs call) had fd 2 in the panic filter's pipe,
    the error line was still in the pipe and the forwarding thread died with the process."""
    code = textwrap.dedent("""
        import os, sys, threading
        from lakenodes.lake._rust_stderr import quiet_delta_panics, restore_stderr
        entered, release = threading.Event(), threading.Event()
        def background_delta_call():
            with quiet_delta_panics():
                entered.set()
                release.wait(30)
        threading.Thread(target=background_delta_call, daemon=True).start()
        entered.wait(30)
        for n in range(200):
            print(f"error: line {n}", file=sys.stderr)
        sys.stderr.flush()
        restore_stderr()
        os._exit(130)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 130
    assert result.stderr.splitlines() == [f"error: line {n}" for n in range(200)]


@pytest.mark.parametrize("message", [
    "When listing objects under key 'lake/_catalog/runs/_lakenodes/pending/' in bucket 'b': AWS Error "
    "INVALID_ACCESS_KEY_ID during ListObjectsV2 operation: The AWS Access Key Id you provided does not exist",
    "AWS Error SIGNATURE_DOES_NOT_MATCH during ListObjectsV2 operation: The request signature we calculated does "
    "not match",
    "Generic S3 error: <Code>InvalidAccessKeyId</Code>",
])
def test_wrong_s3_keys_are_a_permission_error(message):
    from lakenodes.lake._storage_errors import as_storage_error

    mapped = as_storage_error(OSError(message), "s3://b/lake/_catalog/runs", "optimize")
    assert isinstance(mapped, StoragePermissionError) and "s3://b/lake/_catalog/runs" in str(mapped)


def test_maintenance_of_a_catalog_table_raises_storage_errors_naming_it(tmp_path, monkeypatch):
    """Regression: a catalog table's checkpoint failing on permissions surfaced as a raw DeltaError
    ("Kernel error: ... checkpoint.parquet#1: Permission denied (os error 13)")."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    from lakenodes.lake.maintenance import optimize_table

    lake = Lake(tmp_path / "lake")
    with use_lake(lake):
        Prices(PricesConfig(name="catalog", days=2)).run()

    def refused(self):
        raise DeltaError("Kernel error: Arrow error: External: Generic LocalFileSystem error: Unable to open file "
                         f"{lake.uri}/_catalog/tables/_delta_log/00000000000000000001.checkpoint.parquet#1: "
                         "Permission denied (os error 13)")

    monkeypatch.setattr(DeltaTable, "create_checkpoint", refused)
    with pytest.raises(StoragePermissionError, match="optimize failed: permission denied") as raised:
        optimize_table(lake, "_catalog/tables")
    assert "#1" not in str(raised.value) and "_catalog/tables" in str(raised.value)


def test_a_run_record_refused_by_storage_is_a_storage_error(tmp_path, monkeypatch):
    """Regression: "failed during catalog: PermissionError: [Errno 13] Failed to open local file
    '.../_catalog/runs/_lakenodes/pending/.<uuid>.parquet.<uuid>.tmp'" (a raw pyarrow error)."""
    from lakenodes.lake import pending

    def refused(filesystem, target, data):
        raise PermissionError(13, f"Failed to open local file '{target}.tmp'. Detail: [errno 13] Permission denied")

    lake = Lake(tmp_path / "lake")
    monkeypatch.setattr(pending, "write_whole_bytes", refused)
    with use_lake(lake), pytest.raises(NodeRunError) as raised:
        Prices(PricesConfig(name="recorded")).run()
    assert isinstance(raised.value.cause, StoragePermissionError)
    assert "record in _catalog/runs failed: permission denied" in str(raised.value)


@pytest.fixture(scope="module")
def checking_s3_server():
    """A moto server that checks every request's keys after the first (the bucket's creation):
    the made-up keys of ``lakenodes.testing`` are then unknown to it, as wrong keys are to S3."""
    from lakenodes.testing import start_s3_server

    server = start_s3_server(environment={"INITIAL_NO_AUTH_ACTION_COUNT": "1"})
    try:
        yield server, server.create_bucket()
    finally:
        server.stop()


@pytest.mark.s3
@pytest.mark.parametrize("command", [["updates", "runs"], ["updates", "list"], ["data-node", "list"]])
def test_refused_keys_are_one_line_naming_them_in_every_command(checking_s3_server, monkeypatch, capsys, command):
    """Regression: ``updates runs`` printed pyarrow's raw "OSError: When listing objects under key
    'lake/_catalog/runs/_lakenodes/pending/' ... AWS Error ..." where the other commands mapped it."""
    from lakenodes.cli import main

    server, bucket = checking_s3_server
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    code = main(["--lake", f"s3://{bucket}/lake", *command], standalone_mode=False)
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("error: StoragePermissionError: ") and "OSError" not in err
    assert "the store does not know the access key id (InvalidAccessKeyId)" in err


def test_the_error_tree_in_the_docs_names_every_public_error() -> None:
    """Regression: ``ForkedProcessError`` was exported without a place in docs/reliability.md's
    tree of errors, the one page that says what each error means and its CLI exit code."""
    import lakenodes

    docs = (Path(__file__).resolve().parent.parent / "docs" / "reliability.md").read_text()
    tree = docs[docs.index("## Errors"):]
    tree = tree[tree.index("```"):tree.index("```", tree.index("```") + 3)]
    exported = [name for name in lakenodes.__all__ if name.endswith("Error")]
    assert "ForkedProcessError" in exported
    assert [name for name in exported if name not in tree] == []
