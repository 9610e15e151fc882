"""Append-only Delta tables under ``<root>/_catalog/``: lakenodes' own metadata store.

Every change is a blind append (conflict-free in Delta); the current state of a record is its
latest row. ``claim`` turns Delta's put-if-absent first commit into a race-safe lock-free
"first writer wins" primitive.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError

from .lake import Lake
from .storage import DEFAULT_RETRY, RetryPolicy, TableStore

logger = logging.getLogger(__name__)

RECORDED_AT = "recorded_at"


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class Ledger:
    """One append-only catalog table; rows carry ``recorded_at`` and the latest row per key wins.

    Example:
        >>> schema = pa.schema([("name", pa.string()), ("value", pa.string())])
        >>> ledger = Ledger(Lake("/tmp/my-lake"), "notes", schema, key=("name",))
        >>> ledger.uri.endswith("_catalog/notes")
        True
    """

    def __init__(self, lake: Lake, name: str, schema: pa.Schema, key: Sequence[str], retry: RetryPolicy = DEFAULT_RETRY):
        self.lake = lake
        self.name = name
        self.key = tuple(key)
        self.schema = schema.append(pa.field(RECORDED_AT, pa.timestamp("us", tz="UTC"))) \
            if RECORDED_AT not in schema.names else schema
        self.uri = lake.catalog_uri(name)
        self._store = TableStore(lake, name, uri=self.uri, retry=retry)

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append rows (``recorded_at`` is filled in) as one commit, retrying on conflicts."""
        if not rows:
            return
        now = utcnow()
        data = pa.Table.from_pylist([{RECORDED_AT: now, **row} for row in rows], schema=self.schema)

        def attempt() -> None:
            table = self._store.ensure_created(self.schema, ("recorded_at",))
            write_deltalake(table, data, mode="append")

        self._store.with_retries(attempt, what=f"catalog append to {self.name}")

    def read(self) -> pa.Table:
        """Every row ever appended (empty table when nothing was)."""
        table = self._store.table()
        if table is None:
            return self.schema.empty_table()
        data = table.to_pyarrow_dataset().to_table()
        return data.select([name for name in self.schema.names if name in data.column_names])

    def latest(self, where: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The latest row of every key (optionally only rows whose columns equal ``where``)."""
        data = self.read()
        for column, value in (where or {}).items():
            data = data.filter(pc.equal(data[column], value))
        if data.num_rows == 0:
            return []
        data = data.sort_by([(RECORDED_AT, "ascending")])
        latest: dict[tuple, dict[str, Any]] = {}
        for row in data.to_pylist():
            latest[tuple(row[k] for k in self.key)] = row
        return list(latest.values())


def claim(lake: Lake, scope: str, name: str, row: Mapping[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """Claim ``name`` within ``scope`` for ``row``; return the current owner's row.

    The first commit of a Delta table is put-if-absent, so when several processes claim the
    same name at once exactly one first commit lands; the others read the winner's row.
    Later rows (appended with ``reassign``) repoint the claim; the latest row is the owner.
    """
    uri = claim_uri(lake, scope, name)
    data = pa.Table.from_pylist([{RECORDED_AT: utcnow(), **row}], schema=schema)
    try:
        write_deltalake(uri, data, mode="error", storage_options=lake.storage_options or None)
        return dict(row)
    except (DeltaError, OSError) as error:
        logger.debug("claim %s/%s already exists or raced: %s", scope, name, error)
    for _ in range(DEFAULT_RETRY.attempts):
        owner = claim_owner(lake, scope, name)
        if owner is not None:
            return owner
        time.sleep(0.05)
    raise RuntimeError(f"could not claim or read {scope} {name!r}")


def reassign(lake: Lake, scope: str, name: str, row: Mapping[str, Any], schema: pa.Schema) -> None:
    """Point an existing claim at a new owner (an append: the latest row wins)."""
    data = pa.Table.from_pylist([{RECORDED_AT: utcnow(), **row}], schema=schema)
    write_deltalake(claim_uri(lake, scope, name), data, mode="append", storage_options=lake.storage_options or None)


def claim_owner(lake: Lake, scope: str, name: str) -> dict[str, Any] | None:
    """The current owner row of a claim, or None when nobody claimed it."""
    try:
        table = DeltaTable(claim_uri(lake, scope, name), storage_options=lake.storage_options or None)
    except TableNotFoundError:
        return None
    rows = table.to_pyarrow_dataset().to_table().sort_by([(RECORDED_AT, "ascending")]).to_pylist()
    return rows[-1] if rows else None


def claim_uri(lake: Lake, scope: str, name: str) -> str:
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]
    return lake.catalog_uri(f"claims/{scope}/{digest}")
