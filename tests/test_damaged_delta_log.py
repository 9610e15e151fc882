"""A data table's Delta log damaged outside lakenodes (a commit cut short before a later checkpoint, a
checkpoint cut short, a ``_last_checkpoint`` naming a checkpoint that is gone) gives one line naming
the damaged file and what to do; time travel says how far back it really reaches; nothing is written
on top of a log lakenodes cannot read, and the remedy the message gives loses no row.

Real Delta tables on a local lake and on the moto S3 server, damaged through the lake's own
filesystem (the file or object rewritten with part of its bytes).
"""

from __future__ import annotations

import json

import pytest
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError
from faultproxy import FaultProxy
from polars.testing import assert_frame_equal
from test_cli import assert_one_line_error, cli
from test_concurrency import appender, assets
from test_faults import through
from test_time_travel import build_history

from lakenodes import CorruptTableError, Lake, NodeRunError, VersionUnavailableError, clear_caches, use_lake
from lakenodes.cli._groups import FAILURE
from lakenodes.errors import UnreadableFileError
from lakenodes.lake._delta_log import log_names
from lakenodes.lake._storage_errors import as_storage_error
from lakenodes.lake.location import lake_filesystem
from lakenodes.lake.maintenance import vacuum_table

BATCH = assets(3)


def log_path(lake: Lake, table_uri: str, name: str) -> str:
    return f"{lake_filesystem(lake, table_uri)[1]}/_delta_log/{name}"


def commit_name(version: int) -> str:
    return f"{version:020d}.json"


def cut_short(lake: Lake, path: str, keep: int | None = None) -> None:
    """Rewrite ``path`` with its first ``keep`` bytes (half of them by default)."""
    filesystem, _ = lake_filesystem(lake, lake.uri)
    with filesystem.open_input_stream(path) as stream:
        data = stream.read()
    with filesystem.open_output_stream(path) as stream:
        stream.write(data[: len(data) // 2 if keep is None else keep])
    clear_caches()


def cli_env(lake: Lake) -> dict[str, str] | None:
    return None if lake.is_local else dict(lake.storage_options)  # the CLI takes S3 settings from the environment


@pytest.mark.parametrize("where", ["half the file", "a remove line"])
def test_a_commit_cut_short_before_a_checkpoint_ends_time_travel_there(any_lake: Lake, where: str) -> None:
    """Versions 0..3 (write, append, restatement, tail delete), a checkpoint of version 3, then
    the restatement's commit (2) cut short: the table reads, version 1 too, version 2 not."""
    history = build_history(any_lake)
    node, table = history.node, history.table
    DeltaTable(node.table_uri, storage_options=any_lake.storage_options or None).create_checkpoint()
    path = log_path(any_lake, node.table_uri, commit_name(2))
    filesystem, _ = lake_filesystem(any_lake, node.table_uri)
    with filesystem.open_input_stream(path) as stream:
        text = stream.read().decode()
    cut_short(any_lake, path, text.index('{"remove"') + 40 if where == "a remove line" else None)

    # was: 'time travel would reach back to version 0' (a binary search over a reach that is not
    # monotonic), and for a cut remove line a raw JSONDecodeError
    reach = vacuum_table(node.lake, node.storage_hash, dry_run=True)
    assert reach["oldest_readable_version"] == 3, reach
    assert_frame_equal(node.get_df_between_dates(), history.states[3])
    assert_frame_equal(node.get_df_between_dates(as_of=1), history.states[1])  # before the damage: still reads

    with pytest.raises(CorruptTableError) as caught:  # was: VersionUnavailableError 'reaches back to version 0'
        node.get_df_between_dates(as_of=2)
    error = caught.value
    assert error.version == 2 and error.log_file == path, str(error)
    for fragment in ("version 2 cannot be read", f"commit 2 (_delta_log/{commit_name(2)})", "restore that file from "
                     "a backup", "time travel reaches back to version 3 (the latest)"):
        assert fragment in str(error), str(error)
    assert "\n" not in str(error) and "move it out" not in str(error)  # not the last commit: never move it away
    with pytest.raises(CorruptTableError, match="commit 2"):
        table.diff(2)

    result = cli("data-node", "diff", node.storage_hash, "--from", "2", lake=any_lake, env=cli_env(any_lake))
    assert_one_line_error(result, FAILURE, "CorruptTableError", f"commit 2 (_delta_log/{commit_name(2)})",
                          "reaches back to version 3")


def a_table_with_a_checkpoint(lake: Lake):
    """12 daily runs of 3 assets: versions 0..11, checkpoint 9 (the tables' interval is 10)."""
    with use_lake(lake):
        for _ in range(12):
            node = appender(BATCH)
            node.run()
    assert json.loads(read(lake, log_path(lake, node.table_uri, "_last_checkpoint")))["version"] == 9
    return node


def read(lake: Lake, path: str) -> bytes:
    filesystem, _ = lake_filesystem(lake, lake.uri)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def log_listing(lake: Lake, table_uri: str) -> dict[str, bytes]:
    filesystem, root = lake_filesystem(lake, table_uri)
    return {name: read(lake, f"{root}/_delta_log/{name}") for name in log_names(filesystem, root)}


@pytest.mark.parametrize("how", ["cut short", "gone"])
def test_a_damaged_checkpoint_is_named_and_nothing_is_written_on_top(any_lake: Lake, how: str) -> None:
    node = a_table_with_a_checkpoint(any_lake)
    checkpoint = log_path(any_lake, node.table_uri, "00000000000000000009.checkpoint.parquet")
    hint = log_path(any_lake, node.table_uri, "_last_checkpoint")
    filesystem, _ = lake_filesystem(any_lake, node.table_uri)
    if how == "cut short":
        cut_short(any_lake, checkpoint)
        named, moved, fix = checkpoint, [checkpoint, hint], "move it and _last_checkpoint out of _delta_log (keep them)"
    else:
        filesystem.delete_file(checkpoint)
        clear_caches()
        named, moved, fix = hint, [hint], "move _last_checkpoint out of _delta_log (keep it)"
    logged = log_listing(any_lake, node.table_uri)

    # was: DeltaError 'Kernel error: Arrow error: Parquet error: Invalid Parquet file. Corrupt footer' /
    # 'Invalid Checkpoint: Had a _last_checkpoint hint but didn't find any checkpoints', naming no file
    with use_lake(any_lake), pytest.raises(CorruptTableError) as caught:
        appender(BATCH).get_df_between_dates()
    error = caught.value
    assert error.version == 9 and error.log_file == named and "\n" not in str(error), str(error)
    assert "restore checkpoint 9 from a backup" in str(error) and fix in str(error), str(error)
    assert "read from commits 0..9, all still in the log" in str(error)
    with use_lake(any_lake), pytest.raises(NodeRunError) as failed:
        appender(BATCH).run()
    assert isinstance(failed.value.cause, CorruptTableError)
    assert log_listing(any_lake, node.table_uri) == logged  # nothing written on top of the damaged log
    result = cli("data-node", "run-query", node.storage_hash, f"SELECT count(*) AS n FROM {node.storage_hash}",
                 lake=any_lake, env=cli_env(any_lake))
    assert_one_line_error(result, FAILURE, "storage_error", named.rsplit("/", 2)[-2] + "/" + named.rsplit("/", 1)[-1])

    for path in moved:  # what the message says to do: every row is there, and runs go on
        filesystem.move(path, path.replace("/_delta_log/", "/"))
    clear_caches()
    with use_lake(any_lake):
        assert appender(BATCH).get_df_between_dates().height == 36
        appender(BATCH).run()
        assert appender(BATCH).get_df_between_dates().height == 39


def test_a_commit_whose_first_line_is_cut_short_is_named_by_the_history(any_lake: Lake) -> None:
    """delta-rs' history reads the commitInfo (first line) of every commit in the log, the ones a
    checkpoint covers too: with commit 2 cut inside it, the table reads but its history does not."""
    history = build_history(any_lake)
    node, table = history.node, history.table
    DeltaTable(node.table_uri, storage_options=any_lake.storage_options or None).create_checkpoint()
    path = log_path(any_lake, node.table_uri, commit_name(2))
    cut_short(any_lake, path, 100)
    assert_frame_equal(node.get_df_between_dates(), history.states[3])

    # was: DeltaProtocolError 'Invalid JSON in file stats: EOF while parsing a string at line 1 column 100'
    with pytest.raises(CorruptTableError) as caught:
        table.history()
    assert caught.value.version == 2 and caught.value.log_file == path, str(caught.value)
    assert "restore that file from a backup" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(CorruptTableError, match="commit 2"):
        node.get_df_between_dates(as_of=history.moments[1])  # a moment is resolved through the history
    for command in (["data-node", "history", node.storage_hash], ["updates", "reconcile"]):
        result = cli(*command, lake=any_lake, env=cli_env(any_lake))
        assert_one_line_error(result, FAILURE, "CorruptTableError", f"commit 2 (_delta_log/{commit_name(2)})")


def test_vacuum_does_its_work_and_reports_the_reach_when_the_history_cannot_be_read(any_lake: Lake) -> None:
    history = build_history(any_lake)
    node = history.node
    DeltaTable(node.table_uri, storage_options=any_lake.storage_options or None).create_checkpoint()
    cut_short(any_lake, log_path(any_lake, node.table_uri, commit_name(2)), 100)

    dry = vacuum_table(node.lake, node.storage_hash, retention_hours=0, dry_run=True)
    assert dry["oldest_readable_version"] == 3 and dry["file_count"] == 3, dry
    # was: 'vacuum failed: ... Invalid JSON in file stats ...' after its files were deleted
    done = vacuum_table(node.lake, node.storage_hash, retention_hours=0, force_unsafe_retention=True)
    assert done["files"] == dry["files"] and done["oldest_readable_version"] == 3, done
    assert done["oldest_readable_timestamp"] is not None
    assert_frame_equal(node.get_df_between_dates(), history.states[3])


def test_a_version_whose_log_was_cleaned_up_is_unavailable_not_damaged(tmp_path) -> None:
    """Log clean-up (``delta.logRetentionDuration``) removes the oldest commits and checkpoints: the
    versions they held are gone, which is no damage of the log."""
    lake = Lake(tmp_path / "lake")
    with use_lake(lake):
        for _ in range(22):
            node = appender(BATCH)
            node.run()
    log = tmp_path / "lake" / "tables" / node.storage_hash / "_delta_log"
    for version in range(19):  # what the clean-up leaves: checkpoint 19 and the commits from 19 on
        (log / commit_name(version)).unlink()
    (log / "00000000000000000009.checkpoint.parquet").unlink()
    clear_caches()

    with use_lake(lake):
        with pytest.raises(VersionUnavailableError, match=r"version 5 .*reaches back to version 19 \(the latest is 21\)"):
            appender(BATCH).get_df_between_dates(as_of=5)
        assert appender(BATCH).get_df_between_dates(as_of=19).height == 60  # 20 runs of 3 rows
    assert vacuum_table(lake, node.storage_hash, dry_run=True)["oldest_readable_version"] == 19


def test_a_commit_missing_from_the_log_is_named(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    node = a_table_with_a_checkpoint(lake)
    log = tmp_path / "lake" / "tables" / node.storage_hash / "_delta_log"
    (log / commit_name(10)).unlink()  # after checkpoint 9: version 11 is read through it
    clear_caches()
    logged = log_listing(lake, node.table_uri)

    # was: DeltaError 'Kernel error: Generic delta kernel error: Expected contiguous commit files, but found gap: ...'
    with use_lake(lake), pytest.raises(CorruptTableError) as caught:
        appender(BATCH).get_df_between_dates()
    assert caught.value.version == 10 and caught.value.log_file == str(log / commit_name(10)), str(caught.value)
    assert "is missing (the log has a gap there)" in str(caught.value) and "restore that file" in str(caught.value)
    with use_lake(lake), pytest.raises(NodeRunError):
        appender(BATCH).run()
    assert log_listing(lake, node.table_uri) == logged


def test_an_older_checkpoint_cut_short_ends_time_travel_at_the_next_one(tmp_path) -> None:
    """22 runs: checkpoints 9 and 19. Checkpoint 9 cut short breaks versions 9..18 only."""
    lake = Lake(tmp_path / "lake")
    with use_lake(lake):
        for _ in range(22):
            node = appender(BATCH)
            node.run()
    checkpoint = tmp_path / "lake" / "tables" / node.storage_hash / "_delta_log" / "00000000000000000009.checkpoint.parquet"
    cut_short(lake, str(checkpoint))

    assert vacuum_table(lake, node.storage_hash, dry_run=True)["oldest_readable_version"] == 19
    with use_lake(lake):
        assert appender(BATCH).get_df_between_dates(as_of=8).height == 27  # before it (9 runs): from the commits
        with pytest.raises(CorruptTableError) as caught:
            appender(BATCH).get_df_between_dates(as_of=12)
    message = str(caught.value)
    assert caught.value.version == 9 and caught.value.log_file == str(checkpoint), message
    # _last_checkpoint names checkpoint 19: only the damaged one is to be moved aside
    assert "move it out of _delta_log (keep it): the table is then read from commits 0..9" in message, message
    assert "reaches back to version 19 (the latest is 21)" in message


@pytest.mark.s3
def test_a_checkpoint_listed_but_gone_when_read_is_not_called_a_deleted_data_file(s3_lake: Lake, s3_server) -> None:
    """A log clean-up that deletes a checkpoint between a reader's listing and its read: delta-rs
    names the checkpoint as not found. lakenodes retries that (the next open starts from the newer
    checkpoint); when every retry meets it, the error is a log file's, and never the data file's
    advice ("deleted outside lakenodes ... read the table as_of a version from before the file was
    added"), which does not apply to a checkpoint. Here every GET of checkpoint 9 answers 404 while
    the listing still shows it: the error names checkpoint 9 and says how to read without it."""
    node = a_table_with_a_checkpoint(s3_lake)
    checkpoint_name = "00000000000000000009.checkpoint.parquet"
    logged = log_listing(s3_lake, node.table_uri)
    with FaultProxy(s3_server.endpoint_url, missing=1.0, methods=("GET",), paths=(checkpoint_name,)) as proxy:
        clear_caches()
        with use_lake(through(proxy, s3_lake, s3_server)), pytest.raises(CorruptTableError) as caught:
            appender(BATCH).get_df_between_dates()
        assert proxy.counts["missing"] >= 2, proxy.counts  # retried before it gave up
    message = str(caught.value)
    assert caught.value.version == 9 and caught.value.log_file.endswith(f"/_delta_log/{checkpoint_name}"), message
    assert "\n" not in message and "restore checkpoint 9 from a backup" in message, message
    assert "read from commits 0..9, all still in the log" in message, message
    assert "as_of a version from before the file was added" not in message, message
    assert log_listing(s3_lake, node.table_uri) == logged
    clear_caches()
    with use_lake(s3_lake):  # past the proxy the checkpoint reads: nothing was changed
        assert appender(BATCH).get_df_between_dates().height == 36


def test_a_checkpoint_trimmed_after_it_was_listed_is_reported_as_a_race_when_the_log_reads_whole(tmp_path) -> None:
    """The race itself: delta-rs listed checkpoint 9, a clean-up deleted it, the read found it gone
    (delta-rs' words, as it says them on S3). Looked at again, the log reads whole: the error says
    the file went while it was read and to read again, and names no backup to restore."""
    lake = Lake(tmp_path / "lake")
    node = a_table_with_a_checkpoint(lake)
    checkpoint = log_path(lake, node.table_uri, "00000000000000000009.checkpoint.parquet")
    said = DeltaError(f"Kernel error: Arrow error: External: Object at location {checkpoint} not found: Error "
                      "performing GET http://s3/b/k in 448µs - Server returned non-2xx status code: 404 Not Found")
    error = as_storage_error(said, node.table_uri, "open", lake)
    assert isinstance(error, UnreadableFileError) and error.file == checkpoint, repr(error)
    assert f"Delta log file {checkpoint} was listed, then missing when read" in str(error), str(error)
    assert "read the table again" in str(error) and "backup" not in str(error) and "\n" not in str(error)
    relative = "_delta_log/00000000000000000009.checkpoint.parquet"  # a text giving the path from the table root
    error = as_storage_error(DeltaError(f"Object at location {relative} not found: No such file or directory"),
                             node.table_uri, "open", lake)
    assert isinstance(error, UnreadableFileError) and "read the table again" in str(error), repr(error)
