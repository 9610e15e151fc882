"""The catalog's ledgers (append-only Delta tables under ``<root>/_catalog/``: tables, updates,
runs, identifier claims) and this process's memory of what it registered in them.

Example:
    >>> tables_ledger(example.lake).name
    'tables'
"""

from __future__ import annotations

import functools
from collections.abc import Collection

from .._internal.caches import register_cache
from .._internal.deferred import pa
from ..lake.ledger import RECORDED_AT, Ledger
from ..lake.location import Lake, LakeKey


@functools.cache
def _schemas() -> dict[str, pa.Schema]:
    """The schemas of the catalog's ledgers (built on first use: pyarrow is imported lazily)."""
    ts = pa.timestamp("us", tz="UTC")
    return {
        "tables": pa.schema([
            ("uid", pa.string()), ("storage_hash", pa.string()), ("identifier", pa.string()),
            ("namespace", pa.string()), ("description", pa.string()), ("labels", pa.string()),
            ("data_frequency_id", pa.string()), ("index_names", pa.string()), ("columns", pa.string()),
            ("source_class", pa.string()), ("source_doc", pa.string()), ("build_configuration", pa.string()),
            ("table_uri", pa.string()), ("deleted", pa.bool_()),
        ]),
        "updates": pa.schema([
            ("update_hash", pa.string()), ("storage_hash", pa.string()), ("namespace", pa.string()),
            ("source_class", pa.string()), ("configuration", pa.string()),
        ]),
        "runs": pa.schema([
            ("run_id", pa.string()), ("update_hash", pa.string()), ("storage_hash", pa.string()),
            ("started_at", ts), ("finished_at", ts), ("status", pa.string()), ("rows_written", pa.int64()),
            ("error", pa.string()), ("host", pa.string()),
        ]),
        "claims": pa.schema([
            (RECORDED_AT, ts), ("kind", pa.string()), ("identifier", pa.string()), ("namespace", pa.string()),
            ("storage_hash", pa.string()),
        ]),
    }


def tables_ledger(lake: Lake) -> Ledger:
    return Ledger(lake, "tables", _schemas()["tables"], key=("storage_hash",))


def updates_ledger(lake: Lake) -> Ledger:
    return Ledger(lake, "updates", _schemas()["updates"], key=("update_hash",))


def runs_ledger(lake: Lake) -> Ledger:
    return Ledger(lake, "runs", _schemas()["runs"], key=("run_id",))


# keyed by Lake.cache_key: two stores may each hold s3://lake/prod
_known_records: dict[tuple[LakeKey, str], str] = register_cache("catalog.known_records", {})
_known_updaters: set[tuple[LakeKey, str]] = register_cache("catalog.known_updaters", set())
_known_claims: set[tuple[LakeKey, str, str, str]] = register_cache("catalog.known_claims", set())


def forget_table(lake: Lake, storage_hash: str, update_hashes: Collection[str], *, claims: bool = True) -> None:
    """Forget this process's registrations of a table (record, updaters and, unless not ``claims``,
    its identifier claims): its next run makes them again."""
    _known_records.pop((lake.cache_key, storage_hash), None)
    _known_updaters.difference_update({(lake.cache_key, update_hash) for update_hash in update_hashes})
    if claims:
        _known_claims.difference_update({key for key in _known_claims if key[0] == lake.cache_key and key[3] == storage_hash})
