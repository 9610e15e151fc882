"""docs/interop.md's time-travel snippets (the ```python blocks marked ``<!-- time-travel: NAME -->``):
polars' and DuckDB's own time travel read, for every version of a table after appends, a
restatement and a tail delete, exactly the rows lakenodes' ``as_of`` read gives. polars on a
local lake and on S3 (AWS variables in the environment), DuckDB locally (its S3 secret is
docs/interop.md's "DuckDB on S3")."""

from __future__ import annotations

import pytest
from engine_tables import doc_snippets
from polars.testing import assert_frame_equal
from test_docs_snippets import as_polars
from test_time_travel import build_history

SNIPPETS = doc_snippets("time-travel")


@pytest.fixture
def history(any_lake):
    """test_time_travel's table: versions 1..4 (write, append, restatement, tail delete)."""
    return build_history(any_lake)


def test_the_doc_has_the_snippets():
    assert set(SNIPPETS) == {"polars", "duckdb delta_scan", "duckdb attach"}


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_engine_time_travel_reads_what_as_of_reads(history, name, request, monkeypatch):
    node = history.node
    if not node.lake.is_local:
        if name.startswith("duckdb"):
            pytest.skip("DuckDB needs its S3 secret (docs/interop.md, DuckDB on S3); polars covers S3")
        for key, value in request.getfixturevalue("s3_server").env.items():
            monkeypatch.setenv(key, value)
    for version in range(1, history.latest + 1):
        expected = node.get_df_between_dates(as_of=version)
        namespace = {"__name__": "docs_snippet", "TABLE_URI": node.table_uri, "VERSION": version}
        exec(compile(SNIPPETS[name], f"interop.md:{name}", "exec"), namespace)  # noqa: S102
        got = as_polars(namespace["df"]).select(expected.columns).sort(["time_index", "unique_identifier"])
        try:
            assert_frame_equal(got, expected, check_exact=True)
        except AssertionError as error:
            raise AssertionError(f"{name} at version {version}: {error}") from None
