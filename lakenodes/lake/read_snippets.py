"""Copy-paste code that reads a lakenodes table without lakenodes: polars, DuckDB and Spark.

Example:
    >>> print(read_snippets("/data/lake/tables/prices_0123")["polars"])
    import polars as pl
    df = pl.scan_delta("/data/lake/tables/prices_0123").collect()
    >>> print(read_snippets("s3://b/lake/tables/p_01", {"AWS_ENDPOINT_URL": "http://minio:9000"})["duckdb"])
    -- credentials and endpoint come from the standard AWS_* environment variables (and AWS_ALLOW_HTTP=true: the endpoint is http)
    LOAD httpfs; LOAD delta;
    CREATE SECRET lake_s3 (TYPE s3, KEY_ID '<AWS_ACCESS_KEY_ID>', SECRET '<AWS_SECRET_ACCESS_KEY>', REGION 'us-east-1', ENDPOINT 'minio:9000', URL_STYLE 'path', USE_SSL false);
    SELECT * FROM delta_scan('s3://b/lake/tables/p_01') LIMIT 10;
    >>> print(read_snippets("/data/lake/tables/prices_0123", version=4)["spark"])
    df = spark.read.format("delta").option("versionAsOf", 4).load("/data/lake/tables/prices_0123")
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

S3_PREFIX = "s3://"
DEFAULT_REGION = "us-east-1"


def read_snippets(table_uri: str, storage_options: Mapping[str, str] | None = None,
                  version: int | None = None) -> dict[str, str]:
    """``{engine: code}`` reading the Delta table at ``table_uri`` (local or ``s3://``), as it is
    now or, with ``version``, as it was at that version (each engine's own time travel).

    For S3 the DuckDB snippet names the lake's endpoint and region explicitly (DuckDB's
    ``credential_chain`` ignores ``AWS_ENDPOINT_URL`` and would go to AWS); secrets are shown as
    placeholders, never printed.
    """
    remote = table_uri.startswith(S3_PREFIX)
    plain_http = str((storage_options or {}).get("AWS_ENDPOINT_URL", "")).startswith("http://")
    credentials = ("# credentials and endpoint come from the standard AWS_* environment variables"
                   + (" (and AWS_ALLOW_HTTP=true: the endpoint is http)" if plain_http else "") + "\n") if remote else ""
    duckdb_secret = duckdb_s3_secret(storage_options or {}) + "\n" if remote else ""
    extensions = "LOAD httpfs; LOAD delta;" if remote else "INSTALL delta; LOAD delta;"
    spark_uri = "s3a://" + table_uri[len(S3_PREFIX):] if remote else table_uri
    at = {"polars": "", "duckdb": "", "spark": ""} if version is None else {
        "polars": f", version={version}", "duckdb": f", version => {version}",
        "spark": f'.option("versionAsOf", {version})'}
    return {
        "polars": credentials + (_polars_through_deltalake(table_uri, version) if polars_misreads(table_uri) else
                                 f'import polars as pl\ndf = pl.scan_delta({python_string(table_uri)}{at["polars"]}).collect()'),
        "duckdb": f"{credentials.replace('#', '--')}{extensions}\n{duckdb_secret}"
                  f"SELECT * FROM delta_scan({sql_string(table_uri)}{at['duckdb']}) LIMIT 10;",
        "spark": f'df = spark.read.format("delta"){at["spark"]}.load({python_string(spark_uri)})',
    }


# characters a URL's path percent-encodes; "#", "%", "[" and "]" are refused in lake locations
_URL_ENCODED = frozenset(' "<>`{}?')


def polars_misreads(table_uri: str) -> bool:
    """Whether ``pl.scan_delta`` (polars 2.1) cannot read the table at ``table_uri``: under a path
    that a URL percent-encodes (a space, a quote, a non-ASCII letter, ...) it looks for the table's
    files under their encoded names and fails (``FileNotFoundError``).

    Example:
        >>> polars_misreads("/home/me/My Documents/lake/tables/p_01"), polars_misreads("/data/lake/tables/p_01")
        (True, False)
    """
    return any(character in _URL_ENCODED or not character.isascii() for character in table_uri)


def _polars_through_deltalake(table_uri: str, version: int | None) -> str:
    """The polars read for a table ``pl.scan_delta`` cannot open: ``deltalake`` resolves its files,
    pyarrow's own filesystem reads them (docs/interop.md, pandas)."""
    uri, at = python_string(table_uri), "" if version is None else f", version={version}"
    # pyarrow parses an S3 location as a URL: percent-encoded there (it decodes the path it returns)
    located = python_string(quote(table_uri, safe=":/")) if table_uri.startswith(S3_PREFIX) else uri
    return ("# pl.scan_delta cannot read a table under this path (a space, quote or non-ASCII letter): "
            "deltalake finds its files\n"
            "import polars as pl\nimport pyarrow.fs as fs\nfrom deltalake import DeltaTable\n"
            f"filesystem, root = fs.FileSystem.from_uri({located})\n"
            f"dataset = DeltaTable({uri}{at}).to_pyarrow_dataset(filesystem=fs.SubTreeFileSystem(root, filesystem))\n"
            "df = pl.from_arrow(dataset.to_table())")


def python_string(text: str) -> str:
    """``text`` as a Python string literal, in double quotes (a lake folder may hold quotes).

    Example:
        >>> print(python_string('/home/o\\'brien/"lake"'))
        "/home/o'brien/\\"lake\\""
    """
    return json.dumps(text, ensure_ascii=False)  # JSON's escapes are Python's


def sql_string(text: str) -> str:
    """``text`` as an SQL string literal (a quote doubled).

    Example:
        >>> print(sql_string("/home/o'brien/lake"))
        '/home/o''brien/lake'
    """
    return "'" + text.replace("'", "''") + "'"


def duckdb_s3_secret(storage_options: Mapping[str, str]) -> str:
    """A DuckDB ``CREATE SECRET`` for the lake's S3 endpoint (canonical lakenodes option names)."""
    settings = [
        "TYPE s3", "KEY_ID '<AWS_ACCESS_KEY_ID>'", "SECRET '<AWS_SECRET_ACCESS_KEY>'",
        f"REGION '{storage_options.get('AWS_REGION') or DEFAULT_REGION}'",
    ]
    endpoint = storage_options.get("AWS_ENDPOINT_URL")
    if endpoint:
        url = urlsplit(endpoint)
        settings += [f"ENDPOINT '{url.netloc}'", "URL_STYLE 'path'", f"USE_SSL {str(url.scheme == 'https').lower()}"]
    return f"CREATE SECRET lake_s3 ({', '.join(settings)});"
