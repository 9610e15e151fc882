"""A catalog damaged from outside (a folder or a Delta log deleted by hand, a partial sync) ends
each CLI command with one line naming the problem and what to do, exit 1, stored data untouched.

Real lakes in tmp_path, damaged on disk. Before the fixes, a lake whose ``_catalog`` (or the
``_delta_log`` of ``_catalog/tables``) was gone answered a lookup of its own table with "no table
with uid, identifier or storage hash ...; list tables with `lakenodes data-node list`", exit 2 (a
user's typo), and the list it pointed to was empty.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_cli import assert_one_line_error, cli
from test_unreadable_files import a_lake_of_two_days, damage

from lakenodes import Lake, clear_caches
from lakenodes.cli._groups import FAILURE


def files_of(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_size for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize("how", ["catalog folder", "tables log"])
def test_a_lookup_in_a_lake_whose_catalog_is_gone_says_so(tmp_path: Path, how: str) -> None:
    lake, node = a_lake_of_two_days(tmp_path)
    root = tmp_path / "lake"
    if how == "catalog folder":
        shutil.rmtree(root / "_catalog")
    else:
        for entry in (root / "_catalog" / "tables" / "_delta_log").iterdir():
            entry.unlink()
    clear_caches()
    stored = files_of(root)

    for ref in (node.storage_hash, "reliability_daily_batch"):
        result = cli("data-node", "detail", ref, lake=lake)
        assert_one_line_error(result, FAILURE, "StorageError", f"{ref!r} is not in the catalog",
                              f"{root}/_catalog/tables is missing", "restore", "run the DataNodes again")
    if how == "catalog folder":
        result = cli("updates", "runs", node.update_hash, lake=lake)
        assert_one_line_error(result, FAILURE, "StorageError", f"{root}/_catalog/updates is missing")
    result = cli("data-node", "list", lake=lake)  # was: 'no tables in <lake>' and nothing else
    assert result.exit_code == 0 and "no tables in" in result.stdout, (result.stdout, result.stderr)
    [warning] = result.stderr.strip().splitlines()
    assert warning.startswith("warning: the lake's tables are not in the catalog: ") and "restore" in warning, warning
    assert files_of(root) == stored  # nothing written, nothing deleted


def test_a_lookup_of_an_unknown_table_in_an_intact_lake_is_still_a_user_mistake(tmp_path: Path) -> None:
    lake, _ = a_lake_of_two_days(tmp_path)
    result = cli("data-node", "detail", "no_such_table", lake=lake)
    assert_one_line_error(result, 2, "no table with uid, identifier or storage hash 'no_such_table'")
    (tmp_path / "new").mkdir()
    result = cli("data-node", "list", lake=Lake(tmp_path / "new"))  # a new lake: no catalog, no tables
    assert result.exit_code == 0 and not result.stderr, result.stderr


def test_a_cut_short_catalog_commit_says_what_to_do(tmp_path: Path) -> None:
    lake, _ = a_lake_of_two_days(tmp_path)
    root = tmp_path / "lake"
    log = root / "_catalog" / "tables" / "_delta_log"
    last = max(log.glob("*.json"))
    with open(last, "r+b") as commit:  # the last log entry cut short (its last line half written)
        commit.truncate(last.stat().st_size - 40)
    clear_caches()
    stored = files_of(root)

    result = cli("data-node", "list", lake=lake)  # was: the problem, not what to do about it
    version = int(last.stem)
    assert_one_line_error(result, FAILURE, "CorruptTableError", f"commit {version} (_delta_log/{last.name})",
                          "restore that file from a backup", "move it out of _delta_log (keep it)",
                          f"return the table to version {version - 1}", str(root / "_catalog" / "tables"))
    assert files_of(root) == stored


def test_a_cut_short_claim_commit_is_named_not_a_json_traceback(tmp_path: Path) -> None:
    lake, node = a_lake_of_two_days(tmp_path)
    root = tmp_path / "lake"
    [first] = (root / "_catalog" / "claims").glob("identifiers/_default/*/_delta_log/00000000000000000000.json")
    with open(first, "r+b") as commit:
        commit.truncate(100)
    clear_caches()
    stored = files_of(root)

    # was: error: JSONDecodeError: Unterminated string starting at: line 1 column 92 (char 91)
    result = cli("data-node", "repoint", "reliability_daily_batch", node.storage_hash, lake=lake)
    assert_one_line_error(result, FAILURE, "CorruptTableError", f"commit 0 (_delta_log/{first.name})",
                          "as if never created", str(first.parent.parent))
    assert files_of(root) == stored


def test_run_query_on_a_table_whose_last_commit_is_cut_short_is_a_storage_error(tmp_path: Path) -> None:
    lake, node = a_lake_of_two_days(tmp_path)
    last = max((Path(node.table_uri) / "_delta_log").glob("*.json"))
    damage(last, "truncate")

    # was: exit 2 'execution_error: cannot open Delta table at ...: Kernel error: Json error: ... 0: <unknown> 1: ...'
    result = cli("data-node", "run-query", node.storage_hash, f"SELECT count(*) FROM {node.storage_hash}", lake=lake)
    line = assert_one_line_error(result, FAILURE, "storage_error", node.table_uri, f"_delta_log/{last.name}",
                                 "move it out of _delta_log")
    assert "<unknown>" not in line


def test_data_node_list_lists_the_tables_around_a_damaged_one(tmp_path: Path) -> None:
    lake, node = a_lake_of_two_days(tmp_path)
    last = max((Path(node.table_uri) / "_delta_log").glob("*.json"))
    damage(last, "truncate")

    result = cli("data-node", "list", "--json", lake=lake)  # was: exit 1, CorruptTableError, no list at all
    assert result.exit_code == 0, (result.stdout, result.stderr)
    [warning] = result.stderr.strip().splitlines()
    assert warning.startswith("warning: table reliability_daily_batch: ") and last.name in warning, warning
    document = json.loads(result.stdout)
    assert [row["storage_hash"] for row in document["results"]] == [node.storage_hash]
    assert document["results"][0]["row_count"] is None and document["warnings"] == [warning.removeprefix("warning: ")]
    assert "(unreadable)" in cli("data-node", "list", lake=lake).stdout
