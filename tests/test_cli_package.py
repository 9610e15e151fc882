"""The CLI package's seams: `main()` in-process, one `search` command under two spellings,
`lakenodes run path/file.py:Class` leaves sys.path as it was, and the library checks the
commands call (lookup parsing, identity dimensions, vacuum retention)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lakenodes import LakenodesUserError
from lakenodes.cli import app, main
from lakenodes.core.lookup_parsing import parse_dimension_filters, parse_label, parse_lookups
from lakenodes.lake.retention import MIN_RETENTION_HOURS, check_retention
from lakenodes.runtime.launch import loaded_node_class

REPO = Path(__file__).resolve().parent.parent
NODES = textwrap.dedent('''
    from lakenodes import DataNode

    class Plain(DataNode):
        def dependencies(self):
            return {}
''')


def test_main_in_process_returns_the_exit_code(capsys):
    assert main(["--version"], standalone_mode=False) == 0
    assert capsys.readouterr().out.startswith("lakenodes ")
    assert main(["data-node", "detail"], standalone_mode=False) == 2
    assert capsys.readouterr().err.startswith("error: Missing argument")


def test_search_is_one_command_under_two_spellings():
    import typer

    root = typer.main.get_command(app)
    context = root.make_context("lakenodes", ["data-node"], resilient_parsing=True)
    data_node = root.get_command(context, "data-node")
    with context:
        sub_context = data_node.make_context("data-node", [], parent=context, resilient_parsing=True)
        assert data_node.get_command(sub_context, "search") is root.get_command(context, "search")
        assert "search" in data_node.list_commands(sub_context)


def test_loading_a_file_leaves_sys_path_as_it_was(tmp_path):
    (tmp_path / "cli_package_nodes.py").write_text(NODES)
    before = list(sys.path)
    try:
        with loaded_node_class(f"{tmp_path / 'cli_package_nodes.py'}:Plain") as node_class:
            assert node_class.__name__ == "Plain" and str(tmp_path) in sys.path
        assert sys.path == before
        with pytest.raises(LakenodesUserError, match="does not exist"):
            with loaded_node_class(f"{tmp_path / 'cli_package_nodes.py'}:Nope"):
                pass
        assert sys.path == before
    finally:
        sys.modules.pop("cli_package_nodes", None)


def test_lookup_and_dimension_parsing():
    assert parse_lookups(['ticker__in=["A", "B"]', "x__isnull=yes"]) == {"ticker__in": ["A", "B"], "x__isnull": True}
    with pytest.raises(LakenodesUserError, match="given twice"):
        parse_lookups(["a=1", "a=2"])
    with pytest.raises(LakenodesUserError, match="unknown lookup operator"):
        parse_lookups(["a__near=1"])
    index = ["time_index", "unique_identifier"]
    assert parse_dimension_filters(["unique_identifier=A", "unique_identifier=B"], index, "t") == {
        "unique_identifier": ["A", "B"]}
    with pytest.raises(LakenodesUserError, match="ticker is not an identity dimension of t"):
        parse_dimension_filters(["ticker=A"], index, "t")
    with pytest.raises(LakenodesUserError, match="LABEL must not be empty"):
        parse_label("  ")


def test_retention_checks():
    assert check_retention(MIN_RETENTION_HOURS, force_unsafe=False) is None
    assert "UNSAFE" in check_retention(0, force_unsafe=True)
    with pytest.raises(LakenodesUserError, match="--force-unsafe-retention"):
        check_retention(1, force_unsafe=False, force_name="--force-unsafe-retention")
    with pytest.raises(LakenodesUserError, match=">= 0"):
        check_retention(-1, force_unsafe=True)


def _commands(command, context, prefix: str = "") -> list[tuple[str, Any]]:
    """``("group command", command)`` of every command the CLI lists (hidden spellings aside)."""
    found = []
    for name in command.list_commands(context):
        sub = command.get_command(context, name)
        if sub is None or sub.hidden:
            continue
        with sub.make_context(name, [], parent=context, resilient_parsing=True) as sub_context:
            nested = hasattr(sub, "list_commands")
            found += _commands(sub, sub_context, f"{prefix}{name} ") if nested else [(f"{prefix}{name}", sub)]
    return found


def _every_command() -> list[tuple[str, Any]]:
    import typer

    root = typer.main.get_command(app)
    with root.make_context("lakenodes", [], resilient_parsing=True) as context:
        return _commands(root, context)


def test_the_docs_name_every_command():
    """Regression: `data-node org-unique-identifiers`, `data-node remove-label` and `data-node search`
    were named nowhere in the README or docs/: a user reading them could not find those commands."""
    docs = "\n".join(path.read_text() for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))])
    paths = [path for path, _ in _every_command()]
    assert "data-node org-unique-identifiers" in paths and "updates clean" in paths
    assert [path for path in paths if (path if " " in path else f"lakenodes {path}") not in docs] == []


def test_every_usage_line_brackets_an_optional_argument_once():
    """Regression: typer 0.27 brackets an optional argument's metavar itself, so `lakenodes optimize
    --help` showed `Usage: lakenodes optimize [OPTIONS] [[UID]...]...` and `updates runs` showed
    `[[UPDATE_HASH]]` (metavars written bracketed for earlier typers)."""
    usages = {}
    for path, command in _every_command():
        with command.make_context(path, [], resilient_parsing=True) as context:
            usages[path] = command.get_usage(context)
    assert [path for path, usage in usages.items() if "[[" in usage or "]]" in usage] == []
    assert usages["optimize"].endswith("[UID]...") and usages["updates runs"].endswith("[UPDATE_HASH]")


def test_every_command_says_what_it_does_and_what_each_argument_is():
    """Regression: `lakenodes assets --help` summarised `assets list` as "Registered assets (optionally
    filtered, e.g." (its first sentence cut at "e.g."), `data-node add-label --help` showed `label <str>
    [required]` with no word on it, and `data-node detail --help` showed reST ``--as-of``."""
    for path, command in _every_command():
        summary = command.get_short_help_str(limit=1000)
        assert summary and summary.count("(") == summary.count(")"), (path, summary)
        assert "``" not in (command.help or ""), path
        for parameter in command.params:
            assert getattr(parameter, "help", None) or parameter.hidden, (path, parameter.name)
