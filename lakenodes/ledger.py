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
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import DeltaError

from .lake import Lake, lake_filesystem
from .storage import DEFAULT_RETRY, RetryPolicy, TableStore, data_file_path

logger = logging.getLogger(__name__)

RECORDED_AT = "recorded_at"


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


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
        # idempotent: an attempt whose commit landed but whose answer was lost is not appended twice
        write_id = f"lakenodes-{uuid.uuid4().hex}"
        properties = CommitProperties(app_transactions=[Transaction(write_id, 1)])
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            table = self._store.ensure_created(self.schema, ("recorded_at",))
            if attempts > 1 and table.transaction_version(write_id) is not None:
                return
            write_deltalake(table, data, mode="append", commit_properties=properties)

        self._store.with_retries(attempt, what=f"catalog append to {self.name}")

    def read(self) -> pa.Table:
        """Every row ever appended (empty table when nothing was)."""
        table = self._store.table()
        if table is None:
            return self.schema.empty_table()
        data = read_unpartitioned(self.lake, table)
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


CLAIM_KIND = "kind"


def claim(lake: Lake, scope: str, name: str, row: Mapping[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """Claim ``name`` within ``scope`` for ``row``; return the current owner's row.

    The first commit (version 0) of a Delta table is put-if-absent, so when several processes
    claim the same name at once exactly one version 0 lands: its row is the claim. A loser's
    write is never retried at a later version, and even if one landed there it would not count.
    Later ``reassign`` rows repoint the claim (the latest one wins).
    """
    uri = claim_uri(lake, scope, name)
    data = pa.Table.from_pylist([{RECORDED_AT: utcnow(), CLAIM_KIND: "claim", **row}], schema=schema)
    try:
        write_deltalake(uri, data, mode="error", storage_options=lake.storage_options or None,
                        commit_properties=CommitProperties(max_commit_retries=0))
    except (DeltaError, OSError) as error:
        logger.debug("claim %s/%s already exists or raced: %s", scope, name, error)
    for _ in range(DEFAULT_RETRY.attempts):
        owner = claim_owner(lake, scope, name)
        if owner is not None:
            return owner
        time.sleep(0.05)
    raise RuntimeError(f"could not claim or read {scope} {name!r}")


def reassign(lake: Lake, scope: str, name: str, row: Mapping[str, Any], schema: pa.Schema) -> None:
    """Point an existing claim at a new owner (an appended ``reassign`` row; the latest wins)."""
    data = pa.Table.from_pylist([{RECORDED_AT: utcnow(), CLAIM_KIND: "reassign", **row}], schema=schema)
    write_deltalake(claim_uri(lake, scope, name), data, mode="append", storage_options=lake.storage_options or None)


def claim_owner(lake: Lake, scope: str, name: str) -> dict[str, Any] | None:
    """The current owner row of a claim (latest reassignment, else the version-0 claim), or None."""
    uri, options = claim_uri(lake, scope, name), lake.storage_options or None
    table = TableStore(lake, name, uri=uri).table()
    if table is None:
        return None
    rows = read_unpartitioned(lake, table).sort_by([(RECORDED_AT, "ascending")]).to_pylist()
    reassigned = [row for row in rows if row.get(CLAIM_KIND) == "reassign"]
    if reassigned:
        return reassigned[-1]
    if table.version() > 0:  # the claim is what version 0 committed, whatever landed later
        rows = read_unpartitioned(lake, DeltaTable(uri, version=0, storage_options=options)).to_pylist()
    return rows[0] if rows else None


def read_unpartitioned(lake: Lake, table: DeltaTable) -> pa.Table:
    """All rows of a small unpartitioned table, read with a native pyarrow filesystem.

    (delta-rs's own pyarrow dataset goes through a Python filesystem handler that can abort the
    interpreter at exit; native filesystems do not.)
    """
    schema = pa.schema(table.schema().to_arrow())
    paths = pa.table(table.get_add_actions(flatten=True)).column("path").to_pylist()
    if not paths:
        return schema.empty_table()
    filesystem, root = lake_filesystem(lake, table.table_uri)
    files = [f"{root}/{data_file_path(path)}" for path in paths]
    return pds.dataset(files, schema=schema, format="parquet", filesystem=filesystem).to_table()


def claim_uri(lake: Lake, scope: str, name: str) -> str:
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]
    return lake.catalog_uri(f"claims/{scope}/{digest}")
