"""The Python snippets of docs/interop.md marked ``<!-- test: run -->`` run, and read the right data.

A marked snippet is the fenced ```python block right after the marker. ``run`` runs it against
a local lake, ``run s3`` against a lake on the moto S3 server with the standard ``AWS_*``
variables set, as a user's shell would. ``sql s3`` marks a ```sql block run in DuckDB as written,
only its example values (``SQL_PLACEHOLDERS``) replaced by the moto server's. The test builds a real table first and gives the
snippet the doc's placeholders: ``LAKE_URI``, ``IDENTIFIER`` and ``TABLE_URI``. A snippet must
leave ``df`` (the whole table, compared exactly with what lakenodes reads) or ``uri`` (must be
``TABLE_URI``) behind.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from lakenodes import DataNode, DataNodeConfiguration, DataNodeMetaData, Lake, use_lake
from lakenodes.testing import ACCESS_KEY, REGION, SECRET_KEY

DOC = Path(__file__).resolve().parents[1] / "docs" / "interop.md"
IDENTIFIER = "docs_prices"
UIDS = ("BRK/B", "A B", "é=1%")
MARKER = re.compile(r"<!-- test: (?P<spec>[^>]*?) -->")
MARKED_BLOCK = re.compile(r"<!-- test: (?P<spec>[^>]*?) -->[ \t]*\n```(?P<lang>python|sql)\n(?P<code>.*?)\n```", re.S)
PYTHON_BLOCK = re.compile(r"^```python\n(?P<code>.*?)\n```", re.S | re.M)
LAKES = {"run": "local", "run s3": "s3", "sql s3": "s3"}
LANGUAGES = {"run": "python", "run s3": "python", "sql s3": "sql"}
# A tested SQL block uses these example values; the test substitutes the real ones (each must occur once).
SQL_PLACEHOLDERS = ("'AKIA…'", "'…'", "'eu-west-1'", "'minio.internal:9000'", "s3://my-bucket/lake/tables/<storage_hash>")


@dataclass(frozen=True)
class Snippet:
    line: int
    heading: str
    lake: str
    code: str
    language: str = "python"

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")
        return f"line{self.line}-{slug}-{self.lake}"


def runnable_snippets(text: str) -> list[Snippet]:
    snippets = []
    for match in MARKED_BLOCK.finditer(text):
        if match["spec"] not in LAKES or LANGUAGES[match["spec"]] != match["lang"]:
            raise ValueError(f"marker <!-- test: {match['spec']} --> above a {match['lang']} block; "
                             f"use one of {sorted(LAKES)} (sql s3 for SQL)")
        before = text[: match.start()]
        headings = re.findall(r"^#+ (.+)$", before, re.M)
        line = before.count("\n") + 2  # the ```python / ```sql line
        snippets.append(Snippet(line, headings[-1] if headings else "top", LAKES[match["spec"]], match["code"],
                                match["lang"]))
    return snippets


TEXT = DOC.read_text(encoding="utf-8")
ALL_SNIPPETS = runnable_snippets(TEXT)
SNIPPETS = [snippet for snippet in ALL_SNIPPETS if snippet.language == "python"]
SQL_SNIPPETS = [snippet for snippet in ALL_SNIPPETS if snippet.language == "sql"]


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
    assert len(MARKER.findall(TEXT)) == len(ALL_SNIPPETS), \
        "every <!-- test: ... --> must sit right above a ```python or ```sql block"
    assert {snippet.lake for snippet in SNIPPETS} == {"local", "s3"}
    assert {"polars", "pandas", "duckdb", "duckdb on s3"} <= {s.heading.lower() for s in SNIPPETS}
    assert [s.heading.lower() for s in SQL_SNIPPETS] == ["duckdb on s3"]


def duckdb_with_pypi_extensions(extension_dir: Path) -> Any:
    """A DuckDB connection where a plain ``LOAD httpfs; LOAD delta;`` works offline: the PyPI
    extension binaries are INSTALLed (by path) into a private extension directory first."""
    import duckdb

    con = duckdb.connect(config={"extension_directory": str(extension_dir),
                                 "autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for name in ("httpfs", "delta"):
        try:
            package = importlib.import_module(f"duckdb_extension_{name}")
        except ImportError as error:
            pytest.skip(f"{error}: install the DuckDB extension packages pinned in the test extra")
        binary = Path(package.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
        con.execute(f"INSTALL '{binary}'")
    return con


@pytest.mark.s3
@pytest.mark.parametrize("snippet", SQL_SNIPPETS, ids=lambda snippet: snippet.id)
def test_sql_snippet_as_written_reads_the_table(snippet: Snippet, s3_server, tmp_path, monkeypatch) -> None:
    """The doc's SQL, only its example key, secret, region, endpoint and table URI replaced, reads the
    rows lakenodes wrote on an S3-compatible (moto) server -- with no AWS_* variable to fall back on."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    lake = s3_server.new_lake()
    with use_lake(lake):
        node = DocsPrices(DocsPricesConfig())
        node.run()
        expected = node.get_df_between_dates()
    real = (f"'{ACCESS_KEY}'", f"'{SECRET_KEY}'", f"'{REGION}'", f"'{urlsplit(s3_server.endpoint_url).netloc}'",
            node.table_uri)
    sql = snippet.code
    for placeholder, value in zip(SQL_PLACEHOLDERS, real, strict=True):
        assert sql.count(placeholder) == 1, f"{snippet.id}: the example value {placeholder} must occur exactly once"
        sql = sql.replace(placeholder, value)

    con = duckdb_with_pypi_extensions(tmp_path / "duckdb_extensions")
    got = pl.from_arrow(con.execute(sql).to_arrow_table())  # the result of the last statement
    got = got.with_columns(pl.col("time_index").dt.convert_time_zone("UTC"))  # shown in the session's zone
    key = ["time_index", "unique_identifier"]
    assert got.height == 10  # the doc's LIMIT 10 of the 12 rows
    assert sorted(got.columns) == sorted(expected.columns)
    assert_frame_equal(got.select(expected.columns).sort(key), expected.join(got.select(key), on=key, how="semi"),
                       check_exact=True)


def test_every_python_block_compiles() -> None:
    blocks = PYTHON_BLOCK.findall(TEXT)
    assert len(blocks) > len(SNIPPETS)  # the Spark and scale-out examples too
    for code in blocks:
        compile(code, DOC.name, "exec")


@pytest.mark.slow
def test_the_pandas_snippet_exits_cleanly_in_fresh_processes(tmp_path) -> None:
    """deltalake's own reads (``to_pandas()``) abort the interpreter at exit now and then (exit
    134, "terminate called without an active exception": 3 runs in 15 here); the docs' route,
    pyarrow's own filesystem, exits 0 every time."""
    with use_lake(tmp_path / "lake"):
        node = DocsPrices(DocsPricesConfig())
        node.run()
    pandas_block = next(snippet for snippet in SNIPPETS if snippet.heading.lower() == "pandas"
                        and "DeltaTable" in snippet.code)
    script = tmp_path / "read.py"
    script.write_text(f"TABLE_URI = {node.table_uri!r}\n{pandas_block.code}\nassert len(df) == 12\n")
    codes = [subprocess.run([sys.executable, str(script)], capture_output=True, timeout=120).returncode
             for _ in range(12)]
    assert codes == [0] * 12
