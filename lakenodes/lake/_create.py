"""Creating a data table: its version 0, committed once.

A table is created either empty (``create_empty``: its rows come in later commits, e.g. a
ledger's) or holding its first rows (``create_with_rows``) or its first data files
(``create_with_files``, a streamed write's): a run's first write is the table's version 0, one
commit as a raw ``write_deltalake`` of a new table makes (creating it empty first costs a
second commit and a table opening).

Either way version 0 lands once (one ``metaData.id``): delta-rs does not retry the commit, which
would otherwise commit a second CREATE at version 1 when another process won version 0. The loser
fails; its caller opens the winner's table and appends to it.

Example:
    >>> import pyarrow as pa, tempfile
    >>> uri = tempfile.mkdtemp()
    >>> rows = pa.table({"time_index": pa.array([0], pa.timestamp("us", "UTC")), "value": [1.0]})
    >>> create_with_rows(uri, "prices_1", rows, ("time_index",), None, [], {})
    >>> DeltaTable(uri).metadata().configuration == TABLE_CONFIGURATION
    True
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from deltalake import (
    ColumnProperties,
    CommitProperties,
    DeltaTable,
    Schema,
    Transaction,
    WriterProperties,
    write_deltalake,
)
from deltalake.transaction import AddAction, create_table_with_add_actions

from .._internal.deferred import pa

# A checkpoint every 10 commits (Spark's default; delta-rs' is 100): every fresh process (a cron
# job, another engine) replays the log since the last checkpoint, and a daily table's commits each
# add one file per identity: at 60 commits a fresh open took 77 ms without one, 35 ms with.
TABLE_CONFIGURATION = {"delta.setTransactionRetentionDuration": "interval 14 days", "delta.checkpointInterval": "10"}


def create_empty(uri: str, storage_hash: str, schema: pa.Schema, index_names: Sequence[str],
                 storage_options: dict[str, str] | None) -> DeltaTable:
    """Create the table at ``uri`` without rows (or return the one that appeared meanwhile);
    DeltaError when another process's version 0 won the race."""
    return DeltaTable.create(uri, schema, mode="ignore", **_table_properties(storage_hash, index_names),
                             storage_options=storage_options or None,
                             commit_properties=CommitProperties(max_commit_retries=0))


def create_with_rows(uri: str, storage_hash: str, rows: pa.Table, index_names: Sequence[str],
                     storage_options: dict[str, str] | None, app_transactions: list[Transaction],
                     custom_metadata: dict[str, str]) -> None:
    """Create the table at ``uri`` holding ``rows``, committed with ``app_transactions`` and
    ``custom_metadata``; DeltaError when a table is there already or another process's version 0
    won the race."""
    write_deltalake(uri, rows, mode="error", **_table_properties(storage_hash, index_names),
                    storage_options=storage_options or None, writer_properties=writer_properties(rows.schema),
                    commit_properties=_not_retried(app_transactions, custom_metadata))


def create_with_files(uri: str, storage_hash: str, schema: pa.Schema, adds: list[AddAction],
                      index_names: Sequence[str], storage_options: dict[str, str] | None,
                      app_transactions: list[Transaction], custom_metadata: dict[str, str]) -> None:
    """Create the table at ``uri`` holding the data files ``adds`` (written under it already, in
    ``schema``), as ``create_with_rows`` does its rows."""
    create_table_with_add_actions(uri, Schema.from_arrow(schema), adds, mode="error",
                                  **_table_properties(storage_hash, index_names), storage_options=storage_options or None,
                                  commit_properties=_not_retried(app_transactions, custom_metadata))


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth dictionary-encoding: text and binary (numbers and timestamps of a time
    series are nearly all distinct, where a dictionary costs Parquet writers 3x and saves nothing)."""
    return [field.name for field in schema if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
            or pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)]


def writer_properties(schema: pa.Schema) -> WriterProperties:
    """delta-rs writer settings for rows of ``schema``: a dictionary for ``dictionary_columns`` only.
    delta-rs encodes every column with one by default and keeps an encoder per column and partition
    being written: a first write of 500 assets x 500 days x 100 float columns (204 MB) peaked at
    5.0 GB of memory, 0.9 GB without (and took a third of the time)."""
    return WriterProperties(default_column_properties=ColumnProperties(dictionary_enabled=False),
                            column_properties={name: ColumnProperties(dictionary_enabled=True)
                                               for name in dictionary_columns(schema)})


def _not_retried(app_transactions: list[Transaction], custom_metadata: dict[str, str]) -> CommitProperties:
    return CommitProperties(max_commit_retries=0, app_transactions=app_transactions, custom_metadata=custom_metadata)


def _table_properties(storage_hash: str, index_names: Sequence[str]) -> dict[str, Any]:
    """Partitioned by the first identity dimension; the index names in the description, so any
    reader can recover them."""
    return {
        "partition_by": [index_names[1]] if len(index_names) > 1 else None,
        "name": storage_hash,
        "description": json.dumps({"index_names": list(index_names), "created_by": "lakenodes"}),
        "configuration": TABLE_CONFIGURATION,
    }
