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

from collections.abc import Mapping
from urllib.parse import urlsplit

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
        "polars": f'{credentials}import polars as pl\ndf = pl.scan_delta("{table_uri}"{at["polars"]}).collect()',
        "duckdb": f"{credentials.replace('#', '--')}{extensions}\n{duckdb_secret}"
                  f"SELECT * FROM delta_scan('{table_uri}'{at['duckdb']}) LIMIT 10;",
        "spark": f'df = spark.read.format("delta"){at["spark"]}.load("{spark_uri}")',
    }


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
