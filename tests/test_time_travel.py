"""Time travel: reads ``as_of`` a version or a moment give what the table held then, across an
append, a restatement and a tail delete, on a local lake and on S3."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from lakenodes import (
    DataNode,
    DataNodeConfiguration,
    LakenodesUserError,
    TimeIndexMetaTable,
    VersionUnavailableError,
    clear_caches,
)
from lakenodes._internal.afterwards import settle
from lakenodes.lake import _progress_snapshot, versions
from lakenodes.lake.location import lake_filesystem
from lakenodes.lake.maintenance import vacuum_table

UTC = dt.UTC


class TravelConfig(DataNodeConfiguration):
    name: str = "travel"


class QueueNode(DataNode):
    """Returns one queued frame per run."""

    def __init__(self, config, frames=(), **kwargs):
        super().__init__(config, **kwargs)
        self.frames = list(frames)

    def dependencies(self):
        return {}

    def update(self):
        return self.frames.pop(0) if self.frames else pl.DataFrame()


def frame(days: list[int], uids: list[str], base: float) -> pl.DataFrame:
    rows = [(dt.datetime(2024, 1, d, tzinfo=UTC), uid, base + d + k / 10) for d in days for k, uid in enumerate(uids)]
    return pl.DataFrame(rows, schema={"time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String,
                                      "close": pl.Float64}, orient="row")


@pytest.fixture
def history(any_lake) -> SimpleNamespace:
    return build_history(any_lake)


def build_history(any_lake) -> SimpleNamespace:
    """Versions 0..3 of one table: first write, append, restatement of day 2, tail delete of B from day 3;
    ``states[v]`` is the whole table read right after version ``v`` committed."""
    node = QueueNode(TravelConfig(), [frame([1, 2], ["A", "B"], 0.0), frame([3, 4], ["A", "B"], 0.0),
                                      frame([2], ["A", "B"], 100.0)], lake=any_lake)
    states, moments = {}, {}
    for _ in range(3):
        node.run()
        version = node.store.table().version()
        states[version], moments[version] = node.get_df_between_dates(), dt.datetime.now(UTC)
    table = TimeIndexMetaTable.get(storage_hash=node.storage_hash, lake=any_lake)
    assert table.delete_after_date("2024-01-03", dimension_filters={"unique_identifier": ["B"]})["deleted_count"] == 2
    version = node.store.table().version()
    states[version], moments[version] = node.get_df_between_dates(), dt.datetime.now(UTC)
    return SimpleNamespace(node=node, table=table, states=states, moments=moments, latest=version)


def test_as_of_each_version_reads_what_the_table_held(history):
    node, states = history.node, history.states
    assert sorted(states) == [0, 1, 2, 3]  # a new table's first write is its version 0, as in any Delta writer
    assert [states[v].height for v in (0, 1, 2, 3)] == [4, 8, 8, 6]
    assert states[2].filter(pl.col("time_index").dt.day() == 2)["close"].to_list() == [102.0, 102.1]  # restated
    for version, expected in states.items():
        assert_frame_equal(node.get_df_between_dates(as_of=version), expected)
    assert node.store.table().version() == history.latest  # the cached table was never moved back


def test_as_of_with_filters_and_frame_kinds(history):
    node, before = history.node, history.states[1]
    got = node.get_df_between_dates("2024-01-02", "2024-01-03", unique_identifier_list=["B"], columns=["close"],
                                    as_of=1)
    expected = before.filter(pl.col("unique_identifier") == "B", pl.col("time_index").dt.day().is_between(2, 3))
    assert_frame_equal(got, expected)
    assert node.get_df_between_dates(as_of=1, frame="arrow").num_rows == 8
    pandas = node.get_df_between_dates(as_of=1, frame="pandas")
    assert len(pandas) == 8 and list(pandas.index.names) == ["time_index", "unique_identifier"]


def test_as_of_a_moment_reads_the_version_committed_at_or_before_it(history):
    node = history.node
    for version, moment in history.moments.items():
        assert_frame_equal(node.get_df_between_dates(as_of=moment), history.states[version])
    before = node.get_df_between_dates(as_of=dt.datetime(2000, 1, 1, tzinfo=UTC))
    assert before.height == 0 and before.columns == history.states[0].columns


def test_last_observation_and_ranges_as_of(history):
    node = history.node
    assert node.get_last_observation(as_of=3)["close"].to_list() == [102.1, 4.0]  # B lost days 3 and 4; its day 2 was restated
    assert node.get_last_observation(as_of=2)["close"].to_list() == [4.0, 4.1]
    assert node.get_last_observation(as_of=0)["close"].to_list() == [2.0, 2.1]
    assert node.get_last_observation(as_of=dt.datetime(2000, 1, 1, tzinfo=UTC)).height == 0
    ranged = node.get_ranged_data_per_asset({"A": {"start_date": dt.datetime(2024, 1, 2, tzinfo=UTC),
                                                   "start_date_operand": ">="}}, as_of=2)
    assert ranged["close"].to_list() == [102.0, 3.0, 4.0]


def test_as_of_a_numpy_integer_is_a_version(history):
    """A version taken from a pandas or numpy column of the history (``np.int64``) reads that
    version, in every read and in SQL, as the same Python int does."""
    node, table = history.node, history.table
    versions_column = np.array([entry["version"] for entry in table.history()])  # newest first
    for version in versions_column:
        assert_frame_equal(node.get_df_between_dates(as_of=version), history.states[int(version)])
    assert node.get_last_observation(as_of=np.int32(2))["close"].to_list() == [4.0, 4.1]
    assert node.scan(as_of=np.int64(0)).collect().height == 4
    count = f"SELECT count(*) AS n FROM {table.storage_hash}"
    assert table.run_query(count, as_of=np.int64(1))["results"] == [{"n": 8}]
    with pytest.raises(LakenodesUserError, match=r"^as_of=-1 is not a version"):
        node.get_df_between_dates(as_of=np.int64(-1))



def test_as_of_a_numpy_datetime_is_a_moment(history):
    """A numpy ``datetime64`` (naive: UTC, as numpy's are) reads the version committed at or before it."""
    node = history.node
    for version, moment in history.moments.items():
        naive_utc = np.datetime64(moment.replace(tzinfo=None), "us")
        assert_frame_equal(node.get_df_between_dates(as_of=naive_utc), history.states[version])
    assert node.get_df_between_dates(as_of=np.datetime64("2000-01-01")).height == 0
    with pytest.raises(LakenodesUserError, match="^as_of is NaT"):
        node.get_df_between_dates(as_of=np.datetime64("NaT"))


@pytest.mark.parametrize("check", ["files the current version lacks", "a listing of the table"])
def test_missing_and_vacuumed_versions_say_how_far_back_time_travel_reaches(history, check, monkeypatch):
    """An old version's files are checked one by one (those the current version does not hold),
    or, past a limit, against a listing of the table: either way a vacuumed version is refused."""
    if check == "a listing of the table":
        monkeypatch.setattr(versions, "_CHECKED_ONE_BY_ONE", -1)
    node = history.node
    with pytest.raises(VersionUnavailableError, match=r"time travel reaches back to version 0 \(the latest is 3\)$"):
        node.get_df_between_dates(as_of=9)
    # a compact date (as a CLI user types --as-of 20261101) is a version number: the error says how to give the date
    with pytest.raises(VersionUnavailableError, match=r"\(the latest is 3\); 20261101 is taken as a version number: "
                                                      r"for the moment, give the date as 2026-11-01$"):
        node.get_df_between_dates(as_of=20261101)
    for negative in (-1, -5):  # a user mistake, not a version vacuum removed
        with pytest.raises(LakenodesUserError, match=rf"^as_of={negative} is not a version: versions count up from 0"):
            node.get_df_between_dates(as_of=negative)
    with pytest.raises(LakenodesUserError, match="versions count up from 0"):  # before its first write too
        QueueNode(TravelConfig(name="never written"), lake=node.lake).get_df_between_dates(as_of=-1)
    with pytest.raises(LakenodesUserError, match="as_of must be a table version"):
        node.get_df_between_dates(as_of="yesterday")
    vacuum_table(node.lake, node.storage_hash, retention_hours=0, force_unsafe_retention=True)
    latest = node.store.table().version()
    with pytest.raises(VersionUnavailableError, match=r"version 1 .*reaches back to version [23]") as error:
        node.get_df_between_dates(as_of=1)
    assert "\n" not in str(error.value)
    assert_frame_equal(node.get_df_between_dates(as_of=latest), history.states[3])


@pytest.mark.parametrize("filters", [
    {},
    {"start_date": "2024-01-02", "end_date": "2024-01-04", "less_or_equal": False},
    {"start_date": "2024-01-02", "great_or_equal": False, "unique_identifier_list": ["B"], "columns": ["close"]},
    {"dimension_filters": {"unique_identifier": ["A"]}},
])
def test_scan_equals_the_eager_read(history, filters):
    node = history.node
    for as_of in (None, 1, 2, history.moments[0]):
        lazy = node.scan(**filters, as_of=as_of)
        assert isinstance(lazy, pl.LazyFrame)
        assert_frame_equal(lazy.collect(), node.get_df_between_dates(**filters, as_of=as_of))
    assert_frame_equal(history.table.scan(**filters, as_of=2).collect(), node.get_df_between_dates(**filters, as_of=2))


def test_scan_before_the_table_existed_and_bad_arguments(history):
    node = history.node
    empty = node.scan(as_of=dt.datetime(2000, 1, 1, tzinfo=UTC)).collect()
    assert empty.height == 0 and empty.schema == history.states[0].schema
    with pytest.raises(LakenodesUserError, match="unknown identity dimension"):
        node.scan(dimension_filters={"venue": ["X"]})
    with pytest.raises(LakenodesUserError, match="unknown column"):
        node.scan(columns=["nope"])
    with pytest.raises(VersionUnavailableError):
        node.scan(as_of=99)


def test_history_names_each_version_its_operation_and_writer(history):
    node, table = history.node, history.table
    entries = table.history()
    assert [(e["version"], e["operation"]) for e in entries] == [
        (3, "delete"), (2, "upsert"), (1, "append"), (0, "append")]  # the first write created the table
    assert {e["update_hash"] for e in entries[1:4]} == {node.update_hash}
    assert entries[0]["update_hash"] is None and entries[0]["run_id"] is None
    assert len({e["run_id"] for e in entries[1:4]}) == 3 and all(entries[i]["run_id"] for i in (1, 2, 3))
    assert [e["rows_added"] for e in entries[2:4]] == [4, 4]
    assert [e["timestamp"] for e in entries] == sorted((e["timestamp"] for e in entries), reverse=True)
    for entry in entries:  # each version was committed before the moment read after it
        assert entry["timestamp"] <= history.moments[entry["version"]]
    assert [e["version"] for e in table.history(limit=2)] == [3, 2]
    vacuum_table(node.lake, node.storage_hash, retention_hours=0, force_unsafe_retention=True)
    assert [e["operation"] for e in table.history(limit=2)] == ["vacuum", "vacuum"]


def test_cli_history_table_and_json(history):
    env = None if history.node.lake.is_local else dict(history.node.lake.storage_options)  # S3 settings: environment
    from typer.testing import CliRunner

    from lakenodes.cli import app

    def invoke(*args):
        result = CliRunner().invoke(app, ["--lake", history.node.lake.uri, "data-node", "history", *args], env=env)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result.stdout

    document = json.loads(invoke(history.node.storage_hash, "--json"))
    assert document["count"] == 4
    assert document["results"][1] | {"timestamp": None, "run_id": None} == {
        "version": 2, "timestamp": None, "operation": "upsert", "update_hash": history.node.update_hash,
        "run_id": None, "rows_added": 0, "rows_updated": 2, "rows_deleted": 0}
    assert document["results"][0]["timestamp"].endswith("Z")
    assert json.loads(invoke(history.node.storage_hash, "--json", "--limit", "1"))["count"] == 1
    human = invoke(history.node.storage_hash)
    assert "upsert" in human and "delete" in human and history.node.update_hash[:12] in human


def test_run_query_as_of(history):
    table, states = history.table, history.states
    sql = f"SELECT count(*) AS n, sum(close) AS total FROM {table.storage_hash}"
    for version in (0, 1, 2, 3):
        result = table.run_query(sql, as_of=version)
        assert result["ok"], result["error"]
        assert result["results"] == [{"n": states[version].height, "total": pytest.approx(states[version]["close"].sum())}]
    assert table.run_query(sql, as_of=history.moments[2])["results"][0]["n"] == states[2].height
    assert table.run_query(sql)["results"][0]["n"] == states[3].height
    with pytest.raises(VersionUnavailableError, match="did not exist"):
        table.run_query(sql, as_of=dt.datetime(2000, 1, 1, tzinfo=UTC))
    with pytest.raises(VersionUnavailableError, match="reaches back to version 0"):
        table.run_query(sql, as_of=17)


def test_cli_run_query_as_of(history):
    env = None if history.node.lake.is_local else dict(history.node.lake.storage_options)  # S3 settings: environment
    from typer.testing import CliRunner

    from lakenodes.cli import app

    def run(*args):
        return CliRunner().invoke(app, ["--lake", history.node.lake.uri, "data-node", "run-query",
                                        history.node.storage_hash, f"SELECT count(*) AS n FROM {history.node.storage_hash}",
                                        "--json", *args], env=env)

    assert json.loads(run("--as-of", "1").stdout)["results"] == [{"n": 8}]
    assert json.loads(run("--as-of", history.moments[3].isoformat()).stdout)["results"] == [{"n": 6}]
    failed = run("--as-of", "42")
    assert failed.exit_code == 2 and "reaches back to version 0" in failed.stdout + failed.stderr


def test_diff_between_versions_keyed_by_the_index(history):
    table = history.table
    restated = table.diff(1, 2)
    assert restated.summary() == {"from_version": 1, "to_version": 2, "added": 0, "deleted": 0, "changed": 2}
    assert restated.changed.rows() == [(dt.datetime(2024, 1, 2, tzinfo=UTC), "A", 2.0, 102.0),
                                       (dt.datetime(2024, 1, 2, tzinfo=UTC), "B", 2.1, 102.1)]
    assert restated.changed.columns == ["time_index", "unique_identifier", "close_from", "close_to"]
    deleted = table.diff(2)  # to the latest version: the tail delete
    assert deleted.summary() == {"from_version": 2, "to_version": 3, "added": 0, "deleted": 2, "changed": 0}
    assert_frame_equal(deleted.deleted, history.states[2].filter(
        pl.col("unique_identifier") == "B", pl.col("time_index").dt.day() >= 3))
    appended = table.diff(0, 1)
    assert_frame_equal(appended.added, history.states[1].filter(pl.col("time_index").dt.day() >= 3))
    assert table.diff(dt.datetime(2000, 1, 1, tzinfo=UTC), history.moments[3]).summary() == {
        "from_version": None, "to_version": 3, "added": 6, "deleted": 0, "changed": 0}
    with pytest.raises(VersionUnavailableError):
        table.diff(0, 12)


def test_a_version_read_again_is_not_opened_again(history, monkeypatch):
    """A table's version never changes: reading it again reuses the version opened the first time."""
    node = history.node
    opened = []
    real = versions.DeltaTable

    def counting(*args, **kwargs):
        opened.append(kwargs.get("version"))
        return real(*args, **kwargs)

    monkeypatch.setattr(versions, "DeltaTable", counting)
    versions._opened.clear()
    for _ in range(3):
        assert_frame_equal(node.get_df_between_dates(as_of=1), history.states[1])
    assert_frame_equal(node.get_df_between_dates(as_of=2), history.states[2])
    assert opened == [1, 2]


def test_a_kept_version_is_refused_once_vacuum_removed_its_files(history):
    """The kept version skips its log replay, not the check of its data files."""
    node = history.node
    assert_frame_equal(node.get_df_between_dates(as_of=1), history.states[1])  # opened and kept
    vacuum_table(node.lake, node.storage_hash, retention_hours=0, force_unsafe_retention=True)
    with pytest.raises(VersionUnavailableError, match="version 1 "):
        node.get_df_between_dates(as_of=1)


def test_a_table_written_again_under_its_uri_is_not_read_from_a_kept_version(any_lake):
    """A kept version belongs to one table (its metaData.id): the table removed and written again,
    with other rows, reads its own version."""
    first = build_history(any_lake)
    node = first.node
    assert_frame_equal(node.get_df_between_dates(as_of=1), first.states[1])  # kept
    filesystem, root = lake_filesystem(any_lake, node.store.uri)
    filesystem.delete_dir(root)
    node.frames = [frame([5], ["C"], 0.0), frame([6], ["C"], 0.0), frame([7], ["C"], 0.0)]
    for _ in range(3):
        node.run()
    assert node.get_df_between_dates(as_of=1)["unique_identifier"].to_list() == ["C", "C"]


def test_a_search_for_the_reach_keeps_no_version(history, monkeypatch):
    """The versions a failed read probes (to name the oldest readable one) are not kept: they would
    push out the versions read for their rows."""
    node = history.node
    versions._opened.clear()
    assert_frame_equal(node.get_df_between_dates(as_of=2), history.states[2])
    kept = dict(versions._opened)
    with pytest.raises(VersionUnavailableError, match="reaches back to version 0"):
        node.get_df_between_dates(as_of=9)
    assert dict(versions._opened) == kept and [key[2] for key in kept] == [2]


def test_the_reach_is_the_oldest_version_every_later_one_reads_from(any_lake):
    """A restatement of an asset written late removes a file only version 3 held: after vacuum
    versions 0 to 2 still read, 3 does not, 4 does. Time travel reaches back to 4, not to 0 (an
    older version that still reads says nothing about the ones after it)."""
    node = QueueNode(TravelConfig(name="reach"), [frame([1], ["A"], 0.0), frame([2], ["A"], 0.0), frame([3], ["A"], 0.0),
                                                  frame([1], ["B"], 0.0), frame([1], ["B"], 100.0)], lake=any_lake)
    states = {}
    for _ in range(5):
        node.run()
        states[node.store.table().version()] = node.get_df_between_dates()
    assert sorted(states) == [0, 1, 2, 3, 4]
    report = vacuum_table(node.lake, node.storage_hash, retention_hours=0, force_unsafe_retention=True)
    assert report["file_count"] == 1 and report["files"][0].startswith("unique_identifier=B/")
    assert report["oldest_readable_version"] == 4
    assert_frame_equal(node.get_df_between_dates(as_of=2), states[2])  # before B was written: still there
    with pytest.raises(VersionUnavailableError, match=r"version 3 .*time travel reaches back to version 4 \(the latest is 6\)"):
        node.get_df_between_dates(as_of=3)
    assert_frame_equal(node.get_df_between_dates(as_of=4), states[4])
    assert node.store.table().version() == 6  # vacuum's own two commits


def test_the_first_and_last_moments_as_bounds_and_as_rows(local_lake):
    """datetime.min / datetime.max (what users pass to mean "no bound") and rows stored at the
    calendar's ends read and delete without an OverflowError (the 1 ms statistics slack)."""
    first, last = dt.datetime.min.replace(tzinfo=UTC), dt.datetime.max.replace(tzinfo=UTC)
    rows = pl.DataFrame({"time_index": [first, dt.datetime(2024, 1, 1, tzinfo=UTC), last],
                         "unique_identifier": ["A", "B", "C"], "close": [1.0, 2.0, 3.0]},
                        schema={"time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String,
                                "close": pl.Float64})
    node = QueueNode(TravelConfig(name="ends"), [rows], lake=local_lake)
    node.run()
    assert node.get_df_between_dates(start_date=first, end_date=last).height == 3
    assert node.get_df_between_dates(start_date="0001-01-01").height == 3
    assert node.get_last_observation()["close"].to_list() == [1.0, 2.0, 3.0]
    ranges = {uid: {"start_date": first, "end_date": last} for uid in ("A", "B", "C")}
    assert node.get_df_between_dates(unique_identifier_range_map=ranges).height == 3
    table = TimeIndexMetaTable.get(storage_hash=node.storage_hash, lake=local_lake)
    assert table.delete_after_date(last, dry_run=True)["deleted_count"] == 1
    assert table.delete_after_date("0001-01-01")["deleted_count"] == 3


def _facts_file(node) -> tuple[int | None, int]:
    """(the progress snapshot's version, the number of files) of the node's persisted file facts."""
    settle()  # the saves runs left for after they returned landed
    filesystem, root = lake_filesystem(node.lake, node.store.uri)
    with filesystem.open_input_file(f"{root}/_lakenodes/file_facts.parquet") as source:
        stored = pq.ParquetFile(pa.BufferReader(source.read()))
    return _progress_snapshot.version_of(stored.schema_arrow.metadata), stored.metadata.num_rows


def test_a_read_as_of_an_old_version_leaves_the_persisted_file_facts_alone(history):
    """A read of the past is a read: it stores nothing. Regression: a fresh process's
    ``get_last_observation(as_of=0)`` (or ``stats(as_of=0)``, ``data-node detail --as-of 0``) rewrote
    the table's ``_lakenodes/file_facts.parquet`` with version 0's snapshot and boundary files, so
    every later cold reader missed the snapshot and read footers again; with a key that may only
    read, each such read sent a PUT that the store refused."""
    node = history.node
    clear_caches()
    assert node.get_last_observation().height == 2  # the current version's facts, persisted
    current = _facts_file(node)
    assert current[0] == history.latest
    for read in (lambda: node.get_last_observation(as_of=0), lambda: history.table.stats(as_of=1)):
        clear_caches()  # a fresh process
        read()
        assert _facts_file(node) == current
    node.get_last_observation()  # the current version's progress known in this process, then the past's
    history.table.stats(as_of=0)
    assert _facts_file(node) == current
