"""The read snippets `lakenodes data-node detail` prints work as printed (placeholders filled in)."""

from __future__ import annotations

import ast
import json

import polars as pl
import pytest
from test_docs_snippets import duckdb_with_pypi_extensions
from typer.testing import CliRunner

from lakenodes import DataNode, DataNodeConfiguration, DataNodeMetaData
from lakenodes.cli import app
from lakenodes.testing import ACCESS_KEY, SECRET_KEY


class SnippetConfig(DataNodeConfiguration):
    node_metadata: DataNodeMetaData = DataNodeMetaData(identifier="snippet_source")


class SnippetNode(DataNode):
    config: SnippetConfig

    def dependencies(self) -> dict:
        return {}

    def update(self) -> pl.DataFrame:
        times = pl.datetime_range(pl.datetime(2026, 1, 1, time_zone="UTC"), pl.datetime(2026, 1, 3, time_zone="UTC"),
                                  "1d", eager=True)
        return pl.DataFrame({"time_index": times, "value": [1.0, 2.0, 3.0]})


def test_duckdb_snippet_reaches_the_lakes_s3_endpoint(s3_lake, tmp_path, monkeypatch):
    """DuckDB's credential_chain ignored AWS_ENDPOINT_URL and went to AWS; the printed secret names the endpoint."""
    SnippetNode(SnippetConfig()).run()
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    result = CliRunner().invoke(app, ["--lake", s3_lake.uri, "--json", "data-node", "detail", "snippet_source"],
                                env={k: v for k, v in s3_lake.storage_options.items()})
    assert result.exit_code == 0, result.output
    snippet = json.loads(result.output)["read_snippets"]["duckdb"]
    assert "credential_chain" not in snippet and "SECRET '<AWS_SECRET_ACCESS_KEY>'" in snippet
    sql = snippet.replace("<AWS_ACCESS_KEY_ID>", ACCESS_KEY).replace("<AWS_SECRET_ACCESS_KEY>", SECRET_KEY)
    con = duckdb_with_pypi_extensions(tmp_path / "extensions")
    code = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    *setup, query = [statement for statement in code.split(";") if statement.strip()]
    for statement in setup:
        con.execute(statement)
    rows = con.sql(query).fetchall()
    assert sorted(row[1] for row in rows) == [1.0, 2.0, 3.0]


def test_polars_snippet_runs_as_printed_with_the_variables_its_comment_names(s3_lake, monkeypatch):
    """Regression: against an http endpoint the polars snippet failed ("URL scheme is not allowed")
    in the environment its comment described; the comment now names AWS_ALLOW_HTTP."""
    SnippetNode(SnippetConfig()).run()
    result = CliRunner().invoke(app, ["--lake", s3_lake.uri, "--json", "data-node", "detail", "snippet_source"],
                                env={k: v for k, v in s3_lake.storage_options.items()})
    assert result.exit_code == 0, result.output
    snippet = json.loads(result.output)["read_snippets"]["polars"]
    assert "AWS_ALLOW_HTTP=true" in snippet.splitlines()[0]
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ALLOW_HTTP"):
        monkeypatch.setenv(key, s3_lake.storage_options.get(key, "true"))
    namespace: dict = {}
    exec(snippet, namespace)  # as a user pastes it
    assert sorted(namespace["df"]["value"].to_list()) == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("folder", ["o'brien \"data\" lake", "My Documents", "données"])
def test_snippets_run_as_printed_for_a_lake_path_with_quotes_or_spaces(tmp_path, folder):
    """Regression: a lake under a folder holding ' or " (/home/o'brien/...) printed snippets that
    were not valid Python or SQL (the path was pasted between quotes as it is), and under a space or
    a non-ASCII letter a polars snippet that failed (pl.scan_delta looks for percent-encoded names)."""
    from lakenodes import Lake, use_lake

    lake = Lake(str(tmp_path / folder))
    with use_lake(lake):
        SnippetNode(SnippetConfig()).run()
    result = CliRunner().invoke(app, ["--lake", lake.uri, "--json", "data-node", "detail", "snippet_source"])
    assert result.exit_code == 0, result.output
    snippets = json.loads(result.output)["read_snippets"]
    namespace: dict = {}
    exec(snippets["polars"], namespace)  # as a user pastes it
    assert sorted(namespace["df"]["value"].to_list()) == [1.0, 2.0, 3.0]
    con = duckdb_with_pypi_extensions(tmp_path / "extensions")
    *setup, query = [statement for statement in snippets["duckdb"].split(";\n") if statement.strip()]
    for statement in setup:
        con.execute(statement)
    assert sorted(row[1] for row in con.sql(query.rstrip(";")).fetchall()) == [1.0, 2.0, 3.0]
    spark_path = snippets["spark"].split(".load(", 1)[1].removesuffix(")")
    assert ast.literal_eval(spark_path) == lake.table_uri(SnippetNode(SnippetConfig(), lake=lake).storage_hash)


def test_polars_snippet_runs_as_printed_for_an_s3_prefix_with_spaces(s3_lake, monkeypatch):
    """Regression: under an S3 prefix holding a space or a non-ASCII letter the printed
    pl.scan_delta failed (it asks for the files under percent-encoded keys)."""
    from lakenodes import Lake, use_lake

    lake = Lake(f"{s3_lake.uri}/My Documents é", storage_options=s3_lake.storage_options)
    with use_lake(lake):
        SnippetNode(SnippetConfig()).run()
    result = CliRunner().invoke(app, ["--lake", lake.uri, "--json", "data-node", "detail", "snippet_source"],
                                env={k: v for k, v in s3_lake.storage_options.items()})
    assert result.exit_code == 0, result.output
    snippet = json.loads(result.output)["read_snippets"]["polars"]
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ALLOW_HTTP"):
        monkeypatch.setenv(key, s3_lake.storage_options.get(key, "true"))
    namespace: dict = {}
    exec(snippet, namespace)  # as a user pastes it
    assert sorted(namespace["df"]["value"].to_list()) == [1.0, 2.0, 3.0]
