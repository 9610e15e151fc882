"""The Python snippets of docs/interop.md marked ``<!-- test: run -->`` run, and read the right data.

A marked snippet is the fenced ```python block right after the marker. ``run`` runs it against
a local lake, ``run s3`` against a lake on the moto S3 server with the standard ``AWS_*``
variables set, as a user's shell would. The test builds a real table first and gives the
snippet the doc's placeholders: ``LAKE_URI``, ``IDENTIFIER`` and ``TABLE_URI``. A snippet must
leave ``df`` (the whole table, compared exactly with what lakenodes reads) or ``uri`` (must be
``TABLE_URI``) behind.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from lakenodes import DataNode, DataNodeConfiguration, DataNodeMetaData, Lake, use_lake

DOC = Path(__file__).resolve().parents[1] / "docs" / "interop.md"
IDENTIFIER = "docs_prices"
UIDS = ("BRK/B", "A B", "é=1%")
MARKER = re.compile(r"<!-- test: (?P<spec>[^>]*?) -->")
MARKED_BLOCK = re.compile(r"<!-- test: (?P<spec>[^>]*?) -->[ \t]*\n```python\n(?P<code>.*?)\n```", re.S)
PYTHON_BLOCK = re.compile(r"^```python\n(?P<code>.*?)\n```", re.S | re.M)
LAKES = {"run": "local", "run s3": "s3"}


@dataclass(frozen=True)
class Snippet:
    line: int
    heading: str
    lake: str
    code: str

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")
        return f"line{self.line}-{slug}-{self.lake}"


def runnable_snippets(text: str) -> list[Snippet]:
    snippets = []
    for match in MARKED_BLOCK.finditer(text):
        if match["spec"] not in LAKES:
            raise ValueError(f"unknown marker <!-- test: {match['spec']} -->; use one of {sorted(LAKES)}")
        before = text[: match.start()]
        headings = re.findall(r"^#+ (.+)$", before, re.M)
        line = before.count("\n") + 2  # the ```python line
        snippets.append(Snippet(line, headings[-1] if headings else "top", LAKES[match["spec"]], match["code"]))
    return snippets


TEXT = DOC.read_text(encoding="utf-8")
SNIPPETS = runnable_snippets(TEXT)


# -- the table the snippets read --------------------------------------------------------------------
class DocsPricesConfig(DataNodeConfiguration):
    node_metadata: DataNodeMetaData | None = DataNodeMetaData(identifier=IDENTIFIER, description="docs prices")


class DocsPrices(DataNode):
    """Daily closes of three assets with awkward identifiers, at µs timestamps."""

    def dependencies(self) -> dict:
        return {}

    def update(self) -> pl.DataFrame:
        rows = [
            {"time_index": dt.datetime(2024, 3, day, 16, 0, tzinfo=dt.UTC) + dt.timedelta(microseconds=k * 7 + day),
             "unique_identifier": uid, "close": math.nan if (day, k) == (2, 1) else 100.0 + day + k / 8,
             "volume": day * 1000 + k}
            for day in range(1, 5) for k, uid in enumerate(UIDS)
        ]
        return pl.DataFrame(rows, schema={"time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String,
                                          "close": pl.Float64, "volume": pl.Int64})


def as_polars(value: Any) -> pl.DataFrame:
    if isinstance(value, pl.DataFrame):
        return value
    if isinstance(value, pa.Table):
        return pl.from_arrow(value)
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        if not isinstance(value.index, pd.RangeIndex):
            value = value.reset_index()
        return pl.from_pandas(value, nan_to_null=False)  # pandas NaN stays NaN, as stored
    raise AssertionError(f"df is a {type(value).__name__}, not a polars, pandas or Arrow frame")


@pytest.fixture
def snippet_lake(request, tmp_path, monkeypatch) -> Lake:
    """A lake holding the docs table; for S3 the AWS_* variables are set as a user's shell would."""
    snippet: Snippet = request.param
    if snippet.lake == "s3":
        server = request.getfixturevalue("s3_server")
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        return server.new_lake()
    return Lake(tmp_path / "lake")


@pytest.mark.parametrize("snippet_lake", [
    pytest.param(snippet, id=snippet.id, marks=[pytest.mark.s3] if snippet.lake == "s3" else [])
    for snippet in SNIPPETS
], indirect=True)
def test_runnable_snippet(snippet_lake: Lake, request) -> None:
    snippet: Snippet = request.node.callspec.params["snippet_lake"]
    with use_lake(snippet_lake):
        node = DocsPrices(DocsPricesConfig())
        node.run()
        expected = node.get_df_between_dates()
    assert expected.height == 12

    namespace = {"__name__": "docs_snippet", "LAKE_URI": snippet_lake.uri, "IDENTIFIER": IDENTIFIER,
                 "TABLE_URI": node.table_uri}
    try:
        exec(compile(snippet.code, f"{DOC.name}:{snippet.line}", "exec"), namespace)  # noqa: S102
    except ImportError as error:
        if "duckdb_extension" in str(error):
            pytest.skip(f"{error}: install the DuckDB extension packages pinned in the test extra")
        raise

    checked = []
    if "df" in namespace:
        got = as_polars(namespace["df"])
        assert sorted(got.columns) == sorted(expected.columns)
        got = got.select(expected.columns).sort(["time_index", "unique_identifier"])
        assert_frame_equal(got, expected, check_exact=True)
        checked.append("df")
    if "uri" in namespace:
        assert namespace["uri"] == node.table_uri
        checked.append("uri")
    assert checked, f"{snippet.id}: a runnable snippet must leave `df` (the table) or `uri` (TABLE_URI) to check"


def test_markers_are_well_formed_and_cover_both_lakes() -> None:
    assert len(MARKER.findall(TEXT)) == len(SNIPPETS), "every <!-- test: ... --> must sit right above a ```python block"
    assert {snippet.lake for snippet in SNIPPETS} == {"local", "s3"}
    assert {"polars", "pandas", "duckdb", "duckdb on s3"} <= {s.heading.lower() for s in SNIPPETS}


def test_every_python_block_compiles() -> None:
    blocks = PYTHON_BLOCK.findall(TEXT)
    assert len(blocks) > len(SNIPPETS)  # the Spark and scale-out examples too
    for code in blocks:
        compile(code, DOC.name, "exec")
