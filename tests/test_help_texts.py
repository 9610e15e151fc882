"""``help()`` is how a new user learns the public API in a REPL: the docstring of each main public
function must name every argument it takes (what it accepts is said there), so none is left to guessing."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest

from lakenodes import (
    APIDataNode,
    Asset,
    DataNode,
    Lake,
    TimeIndexMetaTable,
    UpdateStatistics,
    current_lake,
    hash_namespace,
    run_many,
    use_lake,
)

MAIN: list[Callable[..., Any]] = [
    DataNode.__init__, DataNode.run, DataNode.get_df_between_dates, DataNode.scan, DataNode.get_ranged_data_per_asset,
    DataNode.get_last_observation, UpdateStatistics.get_update_range_map_great_or_equal,
    UpdateStatistics.get_dimension_range_map_great_or_equal, UpdateStatistics.get_last_update_index_2d,
    UpdateStatistics.get_asset_earliest_multiindex_update, TimeIndexMetaTable.filter, TimeIndexMetaTable.get,
    TimeIndexMetaTable.description_search, TimeIndexMetaTable.column_search, TimeIndexMetaTable.delete_after_date,
    TimeIndexMetaTable.run_query, TimeIndexMetaTable.history, Lake.__init__, use_lake, APIDataNode.__init__,
    APIDataNode.build_from_identifier, run_many, Asset.filter, Asset.get, Asset.batch_get_or_register_custom_assets,
]


def named_arguments(function: Callable[..., Any]) -> list[str]:
    parameters = inspect.signature(function).parameters.values()
    return [p.name for p in parameters if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@pytest.mark.parametrize("function", MAIN, ids=[function.__qualname__ for function in MAIN])
def test_the_help_of_a_main_function_names_every_argument(function: Callable[..., Any]):
    text = inspect.getdoc(function) or ""
    missing = [name for name in named_arguments(function) if not re.search(rf"``{name}\b|\b{name}[:=,]", text)]
    assert not missing, f"help({function.__qualname__}) says nothing of {missing}"


def test_the_read_help_says_what_a_list_argument_accepts():
    """The string-as-list trap is named where a user looks first."""
    text = inspect.getdoc(DataNode.get_df_between_dates) or ""
    assert 'a bare ``"AAPL"`` (its letters) is refused' in text
    assert "a naive one is taken as UTC" in text and "an epoch int is refused" in text


def test_a_block_shown_without_with_says_how_to_use_it(tmp_path):
    """Regression: ``hash_namespace("ci")`` or ``use_lake(path)`` typed alone in a REPL does nothing, and the
    REPL showed ``<contextlib._GeneratorContextManager object at 0x...>``: the next node went to the
    production tables. Shown unentered, each now says to use it as a block; as a block it works as before."""
    assert repr(hash_namespace("ci")) == (
        "<hash_namespace('ci') changes nothing by itself: use it as a block, with hash_namespace('ci'): ...>")
    folder = str(tmp_path / "lake")
    assert f"use it as a block, with use_lake({folder!r}): ...>" in repr(use_lake(folder))
    with hash_namespace("ci") as namespace, use_lake(folder) as lake:
        assert namespace == "ci" and current_lake() == lake == Lake(folder)
