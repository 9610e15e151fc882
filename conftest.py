"""Docstring examples (``--doctest-modules`` over ``lakenodes/``) get ``example``: a temporary lake
holding one small published table, built on first use. For the whole session, ``tempfile`` makes
its folders under pytest's temporary folder. Tests have their own fixtures (tests/)."""

from __future__ import annotations

import datetime
import functools
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


class DocExample:
    """``example.lake`` (a temporary lake), ``example.node`` (a 2-asset daily node, run once) and
    ``example.table`` (its ``TimeIndexMetaTable``). ``folder`` makes the lake's folder: pytest's
    temporary folders, which it removes after a few sessions (``tempfile.mkdtemp`` left one behind
    per test process, for good)."""

    def __init__(self, folder: Callable[[], Path]) -> None:
        self._folder = folder

    @functools.cached_property
    def lake(self):
        return self.node.lake  # with its table, whichever example runs first

    @functools.cached_property
    def node(self):
        import polars as pl

        from lakenodes import DataNode, DataNodeConfiguration, DataNodeMetaData, Lake

        class ExamplePrices(DataNode):
            """Daily close prices of two assets (a docstring example)."""

            def dependencies(self):
                return {}

            def get_asset_list(self):
                return ["AAPL", "MSFT"]

            def update(self):
                days = [datetime.datetime(2026, 3, d, tzinfo=datetime.UTC) for d in (30, 31)] + \
                       [datetime.datetime(2026, 4, d, tzinfo=datetime.UTC) for d in (1, 2)]
                return pl.DataFrame({
                    "time_index": days * 2,
                    "unique_identifier": ["AAPL"] * 4 + ["MSFT"] * 4,
                    "close": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
                })

        config = DataNodeConfiguration(node_metadata=DataNodeMetaData(
            identifier="example_prices", description="daily close price of two example assets"))
        node = ExamplePrices(config, lake=Lake(self._folder()))
        node.run()
        return node

    @functools.cached_property
    def table(self):
        from lakenodes import TimeIndexMetaTable

        return TimeIndexMetaTable.get(storage_hash=self.node.storage_hash, lake=self.lake)


@pytest.fixture(autouse=True, scope="session")
def _doctest_example(doctest_namespace, tmp_path_factory: pytest.TempPathFactory) -> None:
    doctest_namespace["example"] = DocExample(lambda: tmp_path_factory.mktemp("doctest-lake"))


@pytest.fixture(autouse=True, scope="session")
def _temporary_folders_under_pytest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The docstring examples and the docs' code the tests run make their lakes with
    ``tempfile.mkdtemp()``, as a reader would; under pytest those folders go in one folder of
    pytest's own, which it removes after a few sessions (in /tmp they stayed: ~40 per suite run)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("tempfile")))
        yield
