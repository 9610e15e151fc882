"""run_many lets independent nodes finish when one fails (serially and on a spawn pool), and a
failure after the commit is a RowsStoredError: the rows are stored, what can be recorded is."""

from __future__ import annotations

import json
import logging
import multiprocessing
import re
import shutil
import traceback
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from journal_nodes import START, Daily, JournalConfig, daily, journal, stored_rows

from lakenodes import (
    DataNode,
    DataNodeMetaData,
    Lake,
    NodeRunError,
    RowsStoredError,
    TimeIndexMetaTable,
    run_many,
)
from lakenodes.catalog.catalog import run_history
from lakenodes.lake.pending import PENDING_DIR


@pytest.fixture(params=["serial", "spawn-pool"])
def executor(request) -> Iterator[ProcessPoolExecutor | None]:
    """No executor (serial), or a one-worker spawn pool: nodes run in submission order there, so
    the failing node fails while the independent ones are still queued."""
    if request.param == "serial":
        yield None
        return
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


# -- run_many: independent nodes finish --------------------------------------------------------------
def test_a_failure_skips_only_its_dependents(local_lake: Lake, tmp_path: Path, executor) -> None:
    broken = daily(tmp_path, "broken", failure="feed down")
    downstream = daily(tmp_path, "downstream", {"broken": broken})
    further = daily(tmp_path, "further", {"downstream": downstream})
    independent = daily(tmp_path, "independent")
    after_independent = daily(tmp_path, "after_independent", {"independent": independent})

    with pytest.raises(NodeRunError) as caught:
        run_many([further, after_independent], executor=executor)

    assert caught.value.node == repr(broken) and caught.value.phase == "update"
    assert "feed down" in str(caught.value)
    assert sorted(name for name, _ in journal(tmp_path)) == ["after_independent", "broken", "independent"]
    assert stored_rows(independent) == 1 and stored_rows(after_independent) == 1  # finished before the raise
    assert stored_rows(downstream) == 0 and stored_rows(further) == 0  # skipped, never run
    assert set(caught.value.completed) == {independent.update_hash, after_independent.update_hash}
    assert set(caught.value.failures) == {broken.update_hash, downstream.update_hash, further.update_hash}


class UnlistedDaily(Daily):
    """Looks its dependencies up when asked (a ticker list from an API, a config file): the lookup fails."""

    def dependencies(self) -> dict[str, DataNode]:
        raise KeyError("ticker list unavailable")


def test_a_node_whose_dependencies_fail_skips_only_its_dependents(local_lake: Lake, tmp_path: Path, executor) -> None:
    """``dependencies()`` raising in one tree of ``run_many`` (or deep in one branch) stopped the whole
    run before any node ran: the independent nodes never ran and ``error.failures`` was empty. It now
    fails as any node does: its dependents are skipped, the others run."""
    unlisted = UnlistedDaily(JournalConfig(name="unlisted", journal=str(tmp_path / "journal.txt")))
    downstream = daily(tmp_path, "downstream", {"unlisted": unlisted})
    independent = daily(tmp_path, "independent")
    root = daily(tmp_path, "root", {"downstream": downstream, "independent": independent})
    alone = daily(tmp_path, "alone")

    with pytest.raises(NodeRunError) as caught:
        run_many([root, alone], executor=executor)

    assert caught.value.node == repr(unlisted) and caught.value.phase == "dependencies"
    assert "ticker list unavailable" in str(caught.value)
    assert sorted(name for name, _ in journal(tmp_path)) == ["alone", "independent"]
    assert stored_rows(independent) == 1 and stored_rows(alone) == 1
    assert stored_rows(downstream) == 0 and stored_rows(root) == 0  # skipped, never run
    assert set(caught.value.completed) == {independent.update_hash, alone.update_hash}
    assert set(caught.value.failures) == {unlisted.update_hash, downstream.update_hash, root.update_hash}


def test_the_first_failure_is_raised_and_the_others_logged(
    local_lake: Lake, tmp_path: Path, executor, caplog: pytest.LogCaptureFixture,
) -> None:
    first = daily(tmp_path, "first", failure="first cause")
    second = daily(tmp_path, "second", failure="second cause")
    fine = daily(tmp_path, "fine")
    caplog.set_level(logging.WARNING, logger="lakenodes")

    with pytest.raises(NodeRunError, match="first cause") as caught:
        run_many([first, fine, second], executor=executor)

    assert caught.value.node == repr(first)
    assert stored_rows(fine) == 1
    # the raised error carries the rest of the run: what finished and every failure
    assert set(caught.value.completed) == {fine.update_hash}
    assert caught.value.completed[fine.update_hash].rows_written == 1
    assert set(caught.value.failures) == {first.update_hash, second.update_hash}
    assert "second cause" in str(caught.value.failures[second.update_hash])
    also = [record.getMessage() for record in caplog.records if record.getMessage().startswith("also failed")]
    assert len(also) == 1 and "second cause" in also[0]


def test_skipped_dependents_are_reported_as_done(local_lake: Lake, tmp_path: Path) -> None:
    broken = daily(tmp_path, "broken", failure="no data")
    child = daily(tmp_path, "child", {"broken": broken})
    calls: list[tuple[int, int]] = []
    with pytest.raises(NodeRunError):
        run_many([child], on_progress=lambda done, total, node: calls.append((done, total)))
    assert calls == [(0, 2), (1, 2), (2, 2)]


# -- a failure after the commit ---------------------------------------------------------------------
def corrupt_ledger(lake: Lake, name: str) -> Path:
    """Make the ``_catalog/<name>`` ledger fail for real: a garbage entry as its next Delta log
    version, which delta-rs refuses to load (so every read and append of it fails)."""
    log = Path(lake.catalog_uri(name)) / "_delta_log"
    version = max(int(path.stem) for path in log.glob("*.json")) + 1
    garbage = log / f"{version:020d}.json"
    garbage.write_text("this is not a delta commit\n")
    return garbage


def pending_folder(lake: Lake, name: str) -> Path:
    """Where ``_catalog/<name>`` keeps its pending rows (a successful run's record)."""
    return Path(lake.catalog_uri(name)) / PENDING_DIR


def blocked_pending(lake: Lake, name: str) -> Path:
    """A file where the pending rows of ``_catalog/<name>`` go: every pending record fails."""
    folder = pending_folder(lake, name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.write_text("not a folder")
    return folder


def read_only_pending(lake: Lake, name: str) -> Path:
    """Make the pending rows' folder of ``_catalog/<name>`` read-only (the test skips where that
    does not stop writes, e.g. for root)."""
    folder = pending_folder(lake, name)
    folder.mkdir(parents=True, exist_ok=True)
    for path in (folder, folder / "_delta_log"):
        if path.exists():
            path.chmod(0o555)
    try:
        (folder / "_probe").write_text("")
    except PermissionError:
        return folder
    (folder / "_probe").unlink()
    restore(folder)
    pytest.skip("chmod does not stop this user from writing (root)")


def restore(broken: Path) -> None:
    if broken.is_dir():
        for path in (broken, broken / "_delta_log"):
            if path.exists():
                path.chmod(0o755)
    else:
        broken.unlink()


@pytest.mark.parametrize("break_ledger", [blocked_pending, read_only_pending], ids=["blocked", "read-only"])
def test_recording_the_run_fails_after_the_commit(
    local_lake: Lake, tmp_path: Path, caplog: pytest.LogCaptureFixture, break_ledger,
) -> None:
    daily(tmp_path, "earlier").run()  # the lake's catalog exists
    node = daily(tmp_path, "stored", days=1, node_metadata=DataNodeMetaData(identifier="stored_rows_table"))
    broken = break_ledger(local_lake, "runs")
    try:
        with pytest.raises(RowsStoredError) as caught:
            node.run()
    finally:
        restore(broken)

    error = caught.value
    assert isinstance(error, NodeRunError) and (error.phase, error.rows_written) == ("catalog", 1)
    assert "its 1 rows ARE stored" in str(error) and error.node in str(error)
    assert stored_rows(node) == 1
    # what could be recorded was: the table and its identifier (only the run record is missing)
    assert TimeIndexMetaTable.get(identifier="stored_rows_table").storage_hash == node.storage_hash
    assert "could not record the failed run" in caplog.text

    error_flag, written = node.run()  # the next run finds nothing new
    assert error_flag is False and written.height == 0
    assert stored_rows(node) == 1
    assert [name for name, _ in journal(tmp_path)].count("stored") == 2
    # the next run recovers the lost run from the table's history (tests/test_reconcile.py)
    assert [(run["status"], run["rows_written"]) for run in run_history(local_lake, node.update_hash)] == \
        [("recovered", 1), ("success", 0)]


def test_cli_json_error_flags_rows_stored(local_lake: Lake, tmp_path: Path) -> None:
    """A scheduler reads ``"rows_stored"`` from ``lakenodes --json run``'s error instead of parsing
    "rows ARE stored" out of its message (was: no such field); a failure before the commit says false."""
    from typer.testing import CliRunner

    from lakenodes.cli import app

    def run(name: str, **config: object) -> dict:
        settings = json.dumps({"name": name, "journal": str(tmp_path / "journal.txt"), "days": 1, **config})
        result = CliRunner().invoke(app, ["--lake", local_lake.uri, "--json", "run",
                                          f"{Path(__file__).parent / 'journal_nodes.py'}:Daily", "--config", settings])
        assert result.exit_code == 1, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    daily(tmp_path, "earlier").run()  # the lake's catalog exists
    before = run("broken", failure="feed down")
    assert list(before)[:2] == ["ok", "error"] and before["ok"] is False  # then the nodes (tests/test_run_outcomes.py)
    assert before["error"]["kind"] == "run_error" and before["error"]["rows_stored"] is False

    broken = blocked_pending(local_lake, "runs")
    try:
        after = run("stored")
    finally:
        restore(broken)
    assert list(after)[:2] == ["ok", "error"] and after["ok"] is False
    assert after["error"] == {"kind": "run_error", "message": after["error"]["message"], "rows_stored": True}
    assert "rows ARE stored" in after["error"]["message"]


def test_registering_the_table_fails_after_the_commit(local_lake: Lake, tmp_path: Path) -> None:
    daily(tmp_path, "earlier").run()
    node = daily(tmp_path, "unlisted", days=1)
    garbage = corrupt_ledger(local_lake, "tables")
    try:
        with pytest.raises(RowsStoredError, match="rows ARE stored") as caught:
            node.run()
    finally:
        garbage.unlink()

    assert caught.value.rows_written == 1
    assert stored_rows(node) == 1
    assert node.get_df_between_dates()["time_index"].to_list() == [START]
    [failed] = run_history(local_lake, node.update_hash)  # the run is recorded as failed, with its rows
    assert (failed["status"], failed["rows_written"]) == ("error", 1)
    assert failed["error"].startswith("catalog: ")

    error_flag, written = node.run()
    assert error_flag is False and written.height == 0 and stored_rows(node) == 1
    assert TimeIndexMetaTable.get(storage_hash=node.storage_hash).uid  # registered on the next run


def test_rows_stored_error_survives_a_process_boundary() -> None:
    import pickle

    error = RowsStoredError("Node(x)", "catalog", OSError("disk full"), rows_written=3)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is RowsStoredError and str(again) == str(error)
    assert (again.node, again.phase, again.rows_written) == ("Node(x)", "catalog", 3)
    assert str(error) == "Node(x) failed during catalog: OSError: disk full (its 3 rows ARE stored: the failure came after the commit)"


@pytest.mark.parametrize("stop", [SystemExit(3), KeyboardInterrupt()], ids=["sys.exit", "ctrl-c"])
def test_a_run_stopped_by_sys_exit_or_ctrl_c_is_recorded_then_passed_on(local_lake: Lake, tmp_path: Path, stop) -> None:
    """Regression: ``sys.exit(n)`` (or Ctrl-C) in update() left no trace in the run history."""
    node = daily(tmp_path, "stopped")

    def update():
        raise stop

    node.update = update
    with pytest.raises(type(stop)) as raised:
        node.run()
    assert raised.value is stop  # passed on as it is: the caller asked to stop
    [record] = run_history(local_lake, node.update_hash)
    assert record["status"] == "error" and record["error"].startswith(f"update: {type(stop).__name__}")
    assert TimeIndexMetaTable.filter(storage_hash=node.storage_hash) == []  # nothing written


def test_ctrl_c_during_the_commit_records_the_rows_it_stored(local_lake: Lake, tmp_path: Path, monkeypatch) -> None:
    """Regression: a SIGINT (or SIGTERM) that arrives while delta-rs writes is raised once its call
    returns, after the commit: the run was recorded as ``error`` with 0 rows while its rows were
    stored, and ``updates reconcile`` could not correct it (the run has a record)."""
    import signal

    import deltalake

    import lakenodes.lake.store as store_module

    node = daily(tmp_path, "interrupted")
    node.run()  # day 1: the table exists

    def commit_then_ctrl_c(*args, **kwargs):
        deltalake.write_deltalake(*args, **kwargs)  # the real commit
        signal.raise_signal(signal.SIGINT)  # Ctrl-C pressed while it ran: Python raises it now

    monkeypatch.setattr(store_module, "write_deltalake", commit_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt) as raised:
        node.run()
    assert stored_rows(node) == 2  # day 2 was committed
    record = run_history(local_lake, node.update_hash)[-1]
    assert record["status"] == "error" and record["error"].startswith("write: KeyboardInterrupt")
    assert record["rows_written"] == 1
    assert "1 row(s) ARE stored" in "\n".join(getattr(raised.value, "__notes__", []))


MISSHAPEN_DEPENDENCIES = '''
import polars as pl
from lakenodes import DataNode, DataNodeConfiguration

class ShapeConfig(DataNodeConfiguration):
    shape: str

class Leaf(DataNode):
    config: DataNodeConfiguration

    def dependencies(self):
        return {}

    def update(self):
        return pl.DataFrame()

class Misshapen(DataNode):
    config: ShapeConfig

    def dependencies(self):
        leaf = Leaf(DataNodeConfiguration())
        return {"list": [leaf], "nested": {"leaf": {"inner": leaf}}, "class": {"leaf": Leaf}}[self.config.shape]

    def update(self):
        return pl.DataFrame()
'''


@pytest.mark.parametrize(("shape", "said"), [
    ("list", "Misshapen.dependencies() must return a dict of name -> DataNode or APIDataNode (return {} if none), "
             "got a list"),
    ("nested", "Misshapen.dependencies()['leaf'] is a dict, not a DataNode or APIDataNode"),
    ("class", "Misshapen.dependencies()['leaf'] is the class Leaf (not an instance of it), not a DataNode"),
])
def test_dependencies_of_the_wrong_shape_are_a_user_mistake_named_in_one_line(local_lake: Lake, tmp_path: Path,
                                                                              shape: str, said: str) -> None:
    """``dependencies()`` returning a list, a nested dict or a class: ``lakenodes run`` exited 1 ("a node
    failed": a scheduler retries it) with ``TypeError: dependencies() must return a dict``, never saying
    what it got, while a dependency cycle, as much a definition mistake, exits 2. Now exit 2, naming
    the class and what it returned."""
    from typer.testing import CliRunner

    from lakenodes.cli import app

    module = tmp_path / "misshapen.py"
    module.write_text(MISSHAPEN_DEPENDENCIES)
    result = CliRunner().invoke(app, ["--lake", local_lake.uri, "--json", "run", f"{module}:Misshapen",
                                      "--config", json.dumps({"shape": shape})])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "run_error" and "failed during dependencies: ConfigurationError: " in error["message"]
    assert said in error["message"], error["message"]


FAILING_TREE = '''
import datetime as dt

import polars as pl
from lakenodes import DataNode, DataNodeConfiguration

class Feed(DataNode):
    def dependencies(self):
        return {}

    def update(self):
        raise ConnectionError("feed down")

class Report(DataNode):
    config: DataNodeConfiguration

    def __init__(self, config: DataNodeConfiguration, **kwargs):
        self.feed = Feed(DataNodeConfiguration())
        super().__init__(config, **kwargs)

    def dependencies(self):
        return {"feed": self.feed}

    def update(self):
        return pl.DataFrame({"time_index": [dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)], "value": [1.0]})
'''


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_the_cli_line_of_a_failed_dependency_says_the_node_asked_for_did_not_run(local_lake: Lake, tmp_path: Path,
                                                                                  workers: list[str]) -> None:
    """``lakenodes run tree:Report`` whose dependency failed printed only the dependency's failure: nothing
    said that Report, the node the job asked for, was skipped (a WARNING shown with --verbose only).
    The line now ends naming the nodes not run because of it."""
    from typer.testing import CliRunner

    from lakenodes.cli import app

    module = tmp_path / "tree.py"
    module.write_text(FAILING_TREE)
    result = CliRunner().invoke(app, ["--lake", local_lake.uri, "--json", "run", f"{module}:Report", "--config", "{}",
                                      *workers])
    assert result.exit_code == 1, (result.stdout, result.stderr)
    message = json.loads(result.stdout)["error"]["message"]
    assert message.startswith("Feed(") and "failed during update: ConnectionError: feed down" in message, message
    assert re.fullmatch(r".*; not run, as they depend on it: report_[0-9a-f]{32}", message), message


@pytest.mark.parametrize("raised", [TimeoutError("the prices API did not answer in 10 s"),
                                    OSError("HTTPSConnectionPool(host='api.example.com', port=443): Read timed out.")],
                         ids=["TimeoutError", "requests-read-timeout"])
def test_an_update_whose_own_request_times_out_is_recorded(
    local_lake: Lake, tmp_path: Path, raised: Exception, caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: an ``update()`` failing on its own HTTP call's timeout (``TimeoutError``, requests'
    "Read timed out.") was taken for the lake's store not answering: the failed run was not recorded
    (``updates list`` showed the updater as never run) and a warning blamed the store."""
    node = daily(tmp_path, "slow_api")

    def update():
        raise raised

    node.update = update
    caplog.set_level(logging.WARNING, logger="lakenodes")
    with pytest.raises(NodeRunError, match="timed out|did not answer"):
        node.run()
    [record] = run_history(local_lake, node.update_hash)
    assert record["status"] == "error"
    assert record["error"].startswith(f"update: {type(raised).__name__}: {raised} (at ")
    assert not [entry.getMessage() for entry in caplog.records if "store did not answer" in entry.getMessage()]


def test_a_pool_failure_shows_the_traceback_of_the_users_code(local_lake: Lake, tmp_path: Path) -> None:
    """Regression: on a process pool (``lakenodes run --workers N`` too) the traceback printed for a
    failed ``update()`` showed only lakenodes' frames: the worker re-raised the error from itself,
    which cut the user's exception (and its file and line) out of the chain sent to the parent."""
    broken = daily(tmp_path, "broken", failure="feed down")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with pytest.raises(NodeRunError, match="feed down") as caught:
            run_many([broken], executor=pool)
    printed = "".join(traceback.format_exception(caught.value))
    assert "journal_nodes.py" in printed and "raise RuntimeError(self.config.failure)" in printed, printed
    assert "RuntimeError: feed down" in printed, printed


UNPUBLISHED_READER = '''
from lakenodes import APIDataNode, DataNode, DataNodeConfiguration

def upstream_rates():
    return APIDataNode.build_from_identifier("fx_rates_daily").get_df_between_dates()  # not published yet

class Reader(DataNode):
    config: DataNodeConfiguration

    def dependencies(self):
        return {}

    def update(self):
        return upstream_rates()
'''


def test_a_lakenodes_error_raised_by_update_is_a_failed_run_with_its_traceback(local_lake: Lake, tmp_path: Path) -> None:
    """Regression: ``update()`` reading a table the upstream job had not published yet (a
    ``NotFoundError`` raised by the user's own call) made ``lakenodes --verbose run`` exit 2 ("a
    user mistake, retrying will not help") with one line and no traceback, so nothing said which
    line of the user's code made the call. It is a failed ``update()`` (exit 1, docs/scheduling.md):
    retried by a scheduler, its traceback shown with ``--verbose``."""
    from typer.testing import CliRunner

    from lakenodes.cli import app

    module = tmp_path / "reader.py"
    module.write_text(UNPUBLISHED_READER)
    result = CliRunner().invoke(app, ["--lake", local_lake.uri, "--verbose", "run", f"{module}:Reader",
                                      "--config", "{}"])
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "failed during update: NotFoundError: no table is published as 'fx_rates_daily'" in result.stderr
    assert f'File "{module}", line 5, in upstream_rates' in result.stderr, result.stderr


def test_the_run_record_of_a_failed_update_says_where_the_users_code_raised(local_lake: Lake, tmp_path: Path) -> None:
    """Regression: the run record of an ``update()`` failing on a ``KeyError`` in a helper (or a bare
    ``assert``) held only ``update: KeyError: 'close'``: ``lakenodes updates runs`` gave no clue
    where, and finding the bug meant re-running the node. It now ends with the file, line and
    function of the user's code that raised."""
    node = daily(tmp_path, "asserting")

    def check_prices(prices: dict) -> float:
        return prices["close"]

    def update():
        check_prices({})

    node.update = update
    with pytest.raises(NodeRunError, match="KeyError"):
        node.run()
    [record] = run_history(local_lake, node.update_hash)
    line = check_prices.__code__.co_firstlineno + 1
    assert record["error"] == f"update: KeyError: 'close' (at {__file__}:{line} in check_prices)", record["error"]


def test_the_run_record_of_a_failure_with_a_huge_message_keeps_its_ends_and_the_users_line(local_lake: Lake,
                                                                                           tmp_path: Path) -> None:
    """Regression: an ``update()`` failing with an exception that carries a whole response body
    (here 2 MB of HTML from an API's 502) stored all of it in the catalog's run record, so every
    ``lakenodes updates runs`` read it and the runs table kept it. The record keeps the message's
    start and end, says how much was left out, and keeps the user's line whole."""
    node = daily(tmp_path, "verbose-failure")
    body = "<html>" + "x" * 2_000_000 + "</html>"

    def fetch_prices() -> None:
        raise RuntimeError(f"API answered 502: {body}")

    def update():
        fetch_prices()

    node.update = update
    with pytest.raises(NodeRunError, match="RuntimeError"):
        node.run()
    [record] = run_history(local_lake, node.update_hash)
    message = f"update: RuntimeError: API answered 502: {body}"
    line = fetch_prices.__code__.co_firstlineno + 1
    assert record["error"].startswith("update: RuntimeError: API answered 502: <html>xxx")
    assert f"xxx … [{len(message) - 4_000} characters left out] … xxx" in record["error"]
    assert record["error"].endswith(f"x</html> (at {__file__}:{line} in fetch_prices)")
    assert len(record["error"]) < 4_200


TWO_FEEDS = '''
import datetime as dt
import polars as pl
from lakenodes import DataNode, DataNodeConfiguration


class FeedConfig(DataNodeConfiguration):
    name: str


class Feed(DataNode):
    def dependencies(self):
        return {}

    def update(self):
        raise ConnectionError(f"{self.config.name} API down")


class TopConfig(DataNodeConfiguration):
    feeds: list[str] = ["prices", "fundamentals"]


class Top(DataNode):
    config: TopConfig

    def __init__(self, config, **kwargs):
        self.feeds = {name: Feed(FeedConfig(name=name)) for name in config.feeds}
        super().__init__(config, **kwargs)

    def dependencies(self):
        return dict(self.feeds)

    def update(self):
        return pl.DataFrame({"time_index": [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)], "x": [1.0]})
'''


def test_cli_names_every_failed_node_of_the_tree(local_lake: Lake, tmp_path: Path) -> None:
    """Two upstreams of the job's node fail (both vendors down): the error line and the --json
    message named only the first, and the job's own node (skipped for the other) was not said to
    have not run; the second failure was a log line on stderr only."""
    from typer.testing import CliRunner

    from lakenodes.cli import app

    (tmp_path / "two_feeds.py").write_text(TWO_FEEDS)
    result = CliRunner().invoke(app, ["--lake", local_lake.uri, "--json", "run", f"{tmp_path / 'two_feeds.py'}:Top"])
    assert result.exit_code == 1, (result.stdout, result.stderr)
    message = json.loads(result.stdout)["error"]["message"]
    assert "prices API down" in message and "fundamentals API down" in message
    assert re.search(r"; not run, as they depend on a failed node: top_[0-9a-f]{32}$", message), message
