"""Time travel for audits: update statistics as of a version, the rows each lakenodes rewrite
recorded in its commit, how far back time travel reaches after vacuum, and the CLI's ``diff`` and
``detail --as-of``; on a local lake and on S3 (the CLI locally: it takes S3 credentials from the
environment). The ``history`` table (versions 0..3: write, append, restatement, tail delete)
is test_time_travel's."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest
from test_time_travel import build_history, frame

from lakenodes import TimeIndexMetaTable, UpdateStatistics, VersionUnavailableError
from lakenodes.lake.maintenance import vacuum_table

UTC = dt.UTC


@pytest.fixture
def history(any_lake):
    """test_time_travel's table: versions 0..3 (write, append, restatement, tail delete)."""
    return build_history(any_lake)


def day(number: int) -> dt.datetime:
    return dt.datetime(2024, 1, number, tzinfo=UTC)


def test_update_statistics_as_of_each_version(history):
    node = history.node
    expected = {0: {"A": day(2), "B": day(2)}, 1: {"A": day(4), "B": day(4)}, 2: {"A": day(4), "B": day(4)},
                3: {"A": day(4), "B": day(2)}}
    for version, last in expected.items():
        stats = node.compute_update_statistics(as_of=version)
        assert isinstance(stats, UpdateStatistics) and stats.index_progress == last, version
        assert stats.min_time_index_value == day(1)
        assert stats.get_update_range_map_great_or_equal()["B"]["start_date"] == last["B"]
    assert node.compute_update_statistics(as_of=history.moments[1]).index_progress == expected[1]
    assert node.compute_update_statistics().index_progress == expected[3]  # the latest
    before = node.compute_update_statistics(as_of=dt.datetime(2000, 1, 1, tzinfo=UTC))
    assert before.is_empty and before.get_last_update_index_2d("A") == node.OFFSET_START
    with pytest.raises(VersionUnavailableError, match="reaches back to version 0"):
        node.compute_update_statistics(as_of=11)


def test_table_stats_as_of(history):
    table = history.table
    assert table.stats(as_of=1)["row_count"] == 8 and table.stats(as_of=3)["row_count"] == 6
    assert table.stats(as_of=3)["multi_index_stats"]["B"]["max"] == "2024-01-02T00:00:00Z"
    assert table.stats(as_of=1)["multi_index_stats"]["B"]["max"] == "2024-01-04T00:00:00Z"
    assert table.stats(as_of=dt.datetime(2000, 1, 1, tzinfo=UTC))["row_count"] == 0


def test_history_counts_rows_of_lakenodes_rewrites(history):
    node = history.node
    node.frames = [frame([4, 5], ["A"], 50.0)]  # restates A's day 4 and adds A's day 5: one merge
    node.run()
    entries = {e["version"]: e for e in history.table.history()}
    counts = {v: (e["rows_added"], e["rows_updated"], e["rows_deleted"]) for v, e in entries.items()}
    assert counts[4] == (1, 1, 0) and entries[4]["operation"] == "upsert"
    assert counts[3] == (0, 0, 2) and entries[3]["operation"] == "delete"
    assert counts[2] == (0, 2, 0)
    assert counts[1][0] == 4 and counts[0][0] == 4  # delta-rs' own appends: from operationMetrics
    assert history.table.diff(3, 4).summary() == {"from_version": 3, "to_version": 4, "added": 1, "deleted": 0,
                                                  "changed": 1}


def test_vacuum_says_how_far_back_time_travel_reaches(history):
    """With no retention, vacuum deletes every file the latest version (3, the tail delete) no
    longer holds, and so every version before it."""
    node, table = history.node, history.table
    unchanged = vacuum_table(node.lake, node.storage_hash, retention_hours=0, force_unsafe_retention=True,
                             dry_run=True)
    assert unchanged["file_count"] > 0 and unchanged["oldest_readable_version"] == 3
    assert node.get_df_between_dates(as_of=0).height == 4  # a dry run deletes nothing
    kept = vacuum_table(node.lake, node.storage_hash, dry_run=True)  # the default retention: nothing to delete
    assert kept["oldest_readable_version"] == 0
    done = vacuum_table(node.lake, node.storage_hash, retention_hours=0, force_unsafe_retention=True)
    assert done["files"] == unchanged["files"] and done["oldest_readable_version"] == 3
    assert done["oldest_readable_timestamp"] == {e["version"]: e["timestamp"] for e in table.history()}[3]
    assert node.get_df_between_dates(as_of=3).height == 6
    with pytest.raises(VersionUnavailableError, match="reaches back to version 3"):
        node.get_df_between_dates(as_of=2)
    again = vacuum_table(node.lake, node.storage_hash, retention_hours=0, force_unsafe_retention=True)
    assert again["oldest_readable_version"] == 3


@pytest.fixture
def cli(history):
    from typer.testing import CliRunner

    from lakenodes.cli import app

    lake = history.node.lake
    env = None if lake.is_local else dict(lake.storage_options)  # the CLI takes S3 settings from the environment

    def invoke(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(app, ["--lake", lake.uri, *args], env=env)
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result.stdout if code == 0 else result.stdout + result.stderr

    return invoke


def test_cli_diff_table_and_json(history, cli):
    name = history.node.storage_hash
    document = json.loads(cli("data-node", "diff", name, "--from", "1", "--to", "2", "--json"))
    assert {k: document[k] for k in ("from_version", "to_version", "added", "deleted", "changed", "truncated")} == {
        "from_version": 1, "to_version": 2, "added": 0, "deleted": 0, "changed": 2, "truncated": False}
    assert document["changed_rows"][0] == {"time_index": "2024-01-02T00:00:00Z", "unique_identifier": "A",
                                      "close_from": 2.0, "close_to": 102.0}
    latest = json.loads(cli("data-node", "diff", name, "--from", history.moments[2].isoformat(), "--json"))
    assert (latest["from_version"], latest["to_version"], latest["deleted"]) == (2, 3, 2)
    assert len(json.loads(cli("data-node", "diff", name, "--from", "0", "--max-rows", "1", "--json"))["added_rows"]) == 1
    human = cli("data-node", "diff", name, "--from", "1", "--to", "2")
    assert "from version 1 to 2: 0 added, 0 deleted, 2 changed" in human and "close_from" in human and "102" in human


def test_cli_detail_as_of(history, cli):
    name = history.node.storage_hash
    assert json.loads(cli("data-node", "detail", name, "--json", "--as-of", "1"))["stats"]["row_count"] == 8
    assert json.loads(cli("data-node", "detail", name, "--json"))["stats"]["row_count"] == 6
    moment = history.moments[0].isoformat()
    assert json.loads(cli("data-node", "detail", name, "--json", "--as-of", moment))["stats"]["row_count"] == 4
    assert "row_count" in cli("data-node", "detail", name, "--as-of", "2")


def test_cli_detail_as_of_prints_snippets_that_read_that_version(history, cli, monkeypatch):
    """Regression: `detail --as-of 1` showed version 1's statistics beside snippets reading the latest version."""
    name = history.node.storage_hash
    for key, value in history.node.lake.storage_options.items():  # as the polars snippet's comment says
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    for as_of, version, rows in (("1", 1, 8), (history.moments[0].isoformat(), 0, 4)):
        document = json.loads(cli("data-node", "detail", name, "--json", "--as-of", as_of))
        snippets = document["read_snippets"]
        assert document["stats"]["version"] == version
        assert f"version => {version})" in snippets["duckdb"] and f'"versionAsOf", {version})' in snippets["spark"]
        namespace: dict = {}
        exec(snippets["polars"], namespace)  # as a user pastes it
        assert namespace["df"].height == rows
    latest = json.loads(cli("data-node", "detail", name, "--json"))
    assert "version" not in latest["read_snippets"]["polars"] and latest["stats"]["version"] == 3


@pytest.mark.parametrize("args, message", [
    (["diff", "{name}", "--from", "2", "--to", "42"], "reaches back to version 0"),
    (["diff", "{name}", "--from", "yesterday"], "--from"),
    (["diff", "{name}", "--from", "1", "--to", "soon"], "--to"),
    (["detail", "{name}", "--as-of", "42"], "reaches back to version 0"),
    (["detail", "{name}", "--as-of", "last week"], "--as-of"),
    # regression: a moment before the first commit showed empty statistics beside the latest rows' snippets
    (["detail", "{name}", "--as-of", "2000-01-01"], "did not exist at --as-of 2000-01-01: its first version was"),
    (["diff", "no_such_table", "--from", "1"], "no_such_table"),
    # regressions: a negative --max-rows printed "first -1 of N" rows, a negative --limit an OverflowError (exit 1)
    (["diff", "{name}", "--from", "1", "--max-rows", "-1"], "--max-rows"),
    (["diff", "{name}", "--from", "1", "--max-rows", "0"], "--max-rows"),
    (["history", "{name}", "--limit", "-1"], "--limit"),
    (["diff", "{name}", "--from", "-1"], "--from='-1' is not a version"),  # it said "not an ISO-8601 date"
    (["detail", "{name}", "--as-of", "-2"], "--as-of='-2' is not a version"),
])
def test_cli_time_travel_mistakes_are_one_line_errors(history, cli, args, message):
    output = cli("data-node", *(arg.format(name=history.node.storage_hash) for arg in args), code=2)
    assert message in output and "Traceback" not in output
    assert len([line for line in output.splitlines() if line.strip()]) == 1, output


def test_cli_vacuum_reports_the_reach(history, cli):
    name = history.node.storage_hash
    dry = cli("vacuum", name, "--retention-hours", "0", "--force-unsafe-retention", "--dry-run")
    assert "time travel would reach back to version 3 (" in dry
    document = json.loads(cli("vacuum", name, "--retention-hours", "0", "--force-unsafe-retention", "--json"))
    assert document["results"][0]["oldest_readable_version"] == 3
    assert document["results"][0]["oldest_readable_timestamp"].startswith(str(dt.datetime.now(UTC).year))
    assert TimeIndexMetaTable.get(storage_hash=name, lake=history.node.lake).stats(as_of=3)["row_count"] == 6


def test_cli_shows_values_exactly_and_writes_nan_as_valid_json(local_lake):
    """Regressions: the human diff cut sub-second times and rounded floats to 6 digits (a change
    looked like none: 187.123 -> 187.123), and `--json` wrote a bare NaN that JSON parsers refuse."""
    from test_time_travel import QueueNode, TravelConfig
    from typer.testing import CliRunner

    from lakenodes.cli import app

    moment = dt.datetime(2024, 1, 2, 9, 30, 0, 1000, tzinfo=UTC)
    first = pl.DataFrame({"time_index": [moment], "unique_identifier": ["A"], "close": [187.123456789]})
    node = QueueNode(TravelConfig(), [first, first.with_columns(close=pl.lit(float("nan")))], lake=local_lake)
    node.run()
    node.run()
    invoke = lambda *args: CliRunner().invoke(app, ["--lake", local_lake.uri, "data-node", *args])  # noqa: E731
    human = invoke("diff", node.storage_hash, "--from", "0")
    assert human.exit_code == 0 and "2024-01-02T09:30:00.001000Z" in human.stdout and "187.123456789" in human.stdout
    assert "NaN" in human.stdout and "nan" not in human.stdout  # as --json writes it

    def strict(constant: str) -> None:
        raise AssertionError(f"bare {constant} in JSON")

    document = json.loads(invoke("diff", node.storage_hash, "--from", "0", "--json").stdout, parse_constant=strict)
    assert document["changed_rows"][0]["close_from"] == 187.123456789 and document["changed_rows"][0]["close_to"] == "NaN"
    query = json.loads(invoke("run-query", node.storage_hash, f"SELECT close FROM {node.storage_hash}", "--json").stdout,
                       parse_constant=strict)
    assert query["results"] == [{"close": "NaN"}]


def test_cli_history_of_a_table_whose_folder_is_gone_says_so(local_lake):
    """Regression: it printed an empty table with exit 0."""
    import shutil

    from test_time_travel import QueueNode, TravelConfig
    from typer.testing import CliRunner

    from lakenodes.cli import app

    node = QueueNode(TravelConfig(), [frame([1], ["A"], 0.0)], lake=local_lake)
    node.run()
    shutil.rmtree(node.table_uri)
    result = CliRunner().invoke(app, ["--lake", local_lake.uri, "data-node", "history", node.storage_hash])
    assert result.exit_code == 2 and "is in the catalog but has no Delta table at" in result.stderr
