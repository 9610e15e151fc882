"""docs/interop.md's time-travel snippets (the ```python blocks marked ``<!-- time-travel: NAME -->``):
polars', DuckDB's, daft's and Dask's own time travel read, at the version each stage of a table
left (``engine_tables.table_life``: first write, append, MERGE restatement, scoped tail deletes,
append, ``optimize --cross-section``; awkward identifiers such as ``#1``, ``?`` and ``日本``), exactly
the rows lakenodes' ``as_of`` read gives. polars on a local lake and on S3 (AWS variables in the
environment); the others locally (their S3 settings are their own sections of the doc). Spark's
``versionAsOf`` is tests/test_spark.py's."""

from __future__ import annotations

import pytest
from engine_tables import assert_same_rows, doc_snippets, table_life
from test_docs_snippets import as_polars

from lakenodes import Lake

SNIPPETS = doc_snippets("time-travel")
LOCAL_ONLY = ("duckdb", "daft", "dask")  # on S3 each needs the settings of its own section


def test_the_doc_has_the_snippets():
    assert set(SNIPPETS) == {"polars", "duckdb delta_scan", "duckdb attach", "daft", "dask"}


@pytest.mark.parametrize("any_lake", ["local", pytest.param("s3", marks=pytest.mark.s3)], indirect=True)
def test_engine_time_travel_reads_what_as_of_reads(aws_env: Lake) -> None:
    versions = []
    for stage in table_life(aws_env, "asset"):
        versions.append(stage.version)
        if stage.name == "optimize":  # the next stage, vacuum, deletes the files of the versions before
            break
    assert len(set(versions)) == len(versions) == 6
    node, index = stage.node, stage.index
    names = sorted(SNIPPETS) if aws_env.is_local else [n for n in sorted(SNIPPETS) if not n.startswith(LOCAL_ONLY)]
    for version in versions:
        expected = node.get_df_between_dates(as_of=version)
        for name in names:
            namespace = {"__name__": "docs_snippet", "TABLE_URI": node.table_uri, "VERSION": version}
            exec(compile(SNIPPETS[name], f"interop.md:{name}", "exec"), namespace)  # noqa: S102
            assert_same_rows(as_polars(namespace["df"]), expected, index, f"{name} at version {version}")
