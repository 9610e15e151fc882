"""A data table's Delta log damaged outside lakenodes (a commit cut short before a later checkpoint)
gives one line naming the damaged file and what to do, and time travel says how far back it really
reaches.

Real Delta tables on a local lake and on the moto S3 server, damaged through the lake's own
filesystem (the file or object rewritten with part of its bytes).
"""

from __future__ import annotations

import pytest
from deltalake import DeltaTable
from polars.testing import assert_frame_equal
from test_cli import assert_one_line_error, cli
from test_time_travel import build_history

from lakenodes import CorruptTableError, Lake, clear_caches
from lakenodes.cli._groups import FAILURE
from lakenodes.lake.location import lake_filesystem
from lakenodes.lake.maintenance import vacuum_table


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
    """Versions 0..4 (create, write, append, restatement, tail delete), a checkpoint of version 4,
    then the restatement's commit (3) cut short: the table reads, version 2 too, version 3 not."""
    history = build_history(any_lake)
    node, table = history.node, history.table
    DeltaTable(node.table_uri, storage_options=any_lake.storage_options or None).create_checkpoint()
    path = log_path(any_lake, node.table_uri, commit_name(3))
    filesystem, _ = lake_filesystem(any_lake, node.table_uri)
    with filesystem.open_input_stream(path) as stream:
        text = stream.read().decode()
    cut_short(any_lake, path, text.index('{"remove"') + 40 if where == "a remove line" else None)

    # was: 'time travel would reach back to version 0' (a binary search over a reach that is not
    # monotonic), and for a cut remove line a raw JSONDecodeError
    reach = vacuum_table(node.lake, node.storage_hash, dry_run=True)
    assert reach["oldest_readable_version"] == 4, reach
    assert_frame_equal(node.get_df_between_dates(), history.states[4])
    assert_frame_equal(node.get_df_between_dates(as_of=2), history.states[2])  # before the damage: still reads

    with pytest.raises(CorruptTableError) as caught:  # was: VersionUnavailableError 'reaches back to version 0'
        node.get_df_between_dates(as_of=3)
    error = caught.value
    assert error.version == 3 and error.log_file == path, str(error)
    for fragment in ("version 3 cannot be read", f"commit 3 (_delta_log/{commit_name(3)})", "restore that file from "
                     "a backup", "time travel reaches back to version 4 (the latest)"):
        assert fragment in str(error), str(error)
    assert "\n" not in str(error) and "move it out" not in str(error)  # not the last commit: never move it away
    with pytest.raises(CorruptTableError, match="commit 3"):
        table.diff(3)

    result = cli("data-node", "diff", node.storage_hash, "--from", "3", lake=any_lake, env=cli_env(any_lake))
    assert_one_line_error(result, FAILURE, "CorruptTableError", f"commit 3 (_delta_log/{commit_name(3)})",
                          "reaches back to version 4")
