"""A table's first commit: version 0, made exactly once (one ``metaData.id``) however many writers
race to create the table, alone or together with the first write's rows.

Every creator commits version 0 with ``mode="error"`` and no delta-rs retries: delta-rs would
otherwise retry a lost CREATE as a second CREATE at version 1 (a new ``metaData.id``). The losers
fail (``CommitFailedError``, or "table already exists" when it appeared before they committed)
and go on with the winner's table. A first write that creates the table in its own commit saves
the separate creation commit and the reopening of the table after it (two to three storage
round trips; most of the first write's overhead on S3).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError

from .._internal.deferred import pa
from ._storage_errors import storage_errors, table_not_created

logger = logging.getLogger(__name__)

TABLE_CONFIGURATION = {"delta.setTransactionRetentionDuration": "interval 14 days"}


def table_definition(storage_hash: str, index_names: Sequence[str]) -> dict[str, Any]:
    """The keyword arguments of every delta-rs call that creates the table of ``storage_hash``:
    partitioned by the first identity dimension, named by its hash, its index names in the
    description (so any reader can recover them), app transactions expiring after 14 days.

    Example:
        >>> table_definition("prices_0123", ["time_index", "unique_identifier"])["partition_by"]
        ['unique_identifier']
    """
    return {
        "partition_by": [index_names[1]] if len(index_names) > 1 else None,
        "name": storage_hash,
        "description": json.dumps({"index_names": list(index_names), "created_by": "lakenodes"}),
        "configuration": TABLE_CONFIGURATION,
    }


def first_commit(properties: CommitProperties | None = None) -> CommitProperties:
    """``properties`` (app transactions, commit metadata) for a commit that creates the table:
    never retried by delta-rs (see the module doc)."""
    if properties is None:
        return CommitProperties(max_commit_retries=0)
    return CommitProperties(max_commit_retries=0, app_transactions=properties.app_transactions,
                            custom_metadata=properties.custom_metadata)


def create_with_first_commit(uri: str, lake: Any, commit: Callable[[], None],
                             opened: Callable[[], DeltaTable | None]) -> None:
    """Run ``commit`` (a delta-rs call creating the table at ``uri`` with ``mode="error"`` and
    ``first_commit`` properties). When another creator won, raise ``CommitFailedError``: the
    caller's retry decides again from the winner's table. ``opened()``: the table, or None."""
    try:
        with storage_errors(uri, "create table", lake):
            commit()
    except CommitFailedError:
        raise
    except DeltaError as error:
        if opened() is None:  # it failed for a reason of its own
            raise
        raise CommitFailedError(f"the table was created concurrently: {error}") from error


def create_empty(uri: str, lake: Any, storage_hash: str, schema: pa.Schema, index_names: Sequence[str],
                 opened: Callable[[], DeltaTable | None]) -> DeltaTable:
    """The table at ``uri``, created without rows unless it exists (a concurrent creator winning
    the race is not an error: its table is returned)."""
    existing = opened()
    if existing is not None:
        return existing
    failure: DeltaError | None = None
    try:
        DeltaTable.create(uri, schema, mode="ignore", storage_options=lake.storage_options or None,
                          commit_properties=first_commit(), **table_definition(storage_hash, index_names))
    except DeltaError as error:  # another process created it between our check and our commit
        failure = error
        logger.debug("table %s created concurrently: %s", storage_hash, error)
    created = opened()
    if created is None:  # the creation failed for a reason of its own: name it
        raise table_not_created(uri, failure, lake) from failure
    return created
