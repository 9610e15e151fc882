"""Copy-paste code that reads a lakenodes table without lakenodes: polars, DuckDB and Spark.

Example:
    >>> print(read_snippets("/data/lake/tables/prices_0123")["polars"])
    import polars as pl
    df = pl.scan_delta("/data/lake/tables/prices_0123").collect()
"""

from __future__ import annotations

S3_PREFIX = "s3://"


def read_snippets(table_uri: str) -> dict[str, str]:
    """``{engine: code}`` reading the Delta table at ``table_uri`` (local or ``s3://``)."""
    remote = table_uri.startswith(S3_PREFIX)
    credentials = "# credentials and endpoint come from the standard AWS_* environment variables\n" if remote else ""
    duckdb_secret = "CREATE SECRET (TYPE s3, PROVIDER credential_chain);\n" if remote else ""
    spark_uri = "s3a://" + table_uri[len(S3_PREFIX):] if remote else table_uri
    return {
        "polars": f'{credentials}import polars as pl\ndf = pl.scan_delta("{table_uri}").collect()',
        "duckdb": f"{credentials.replace('#', '--')}INSTALL delta; LOAD delta;\n{duckdb_secret}"
                  f"SELECT * FROM delta_scan('{table_uri}') LIMIT 10;",
        "spark": f'df = spark.read.format("delta").load("{spark_uri}")',
    }
