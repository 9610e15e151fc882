"""The lake catalog: every table (``TableRecord``), identifier claim, updater and run.

Stored as append-only Delta tables under ``<root>/_catalog/`` (readable by DuckDB or Spark);
the latest row of a record is its current state.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any

import polars as pl
from deltalake import DeltaTable

from .._internal.arrow_rows import python_rows
from .._internal.caches import register_cache
from .._internal.deferred import pa, pc
from ..core.config import checked_identifier
from ..core.hashing import HashedAsUpdateHash, checked_namespace
from ..core.lookups import matches_lookups, prepared_lookups, split_lookup
from ..errors import ConfigurationError, IdentifierConflictError, NotFoundError
from ..lake.claims import CLAIM_KIND, claim, claim_owner, claim_uri, identifier_scope, reassign
from ..lake.ledger import RECORDED_AT, Ledger, read_unpartitioned
from ..lake.location import Lake, LakeKey, LakeLike, current_lake, lake_argument, lake_or_current
from ..lake.pending import Pending
from ..lake.store import TableStore
from .records import TableRecord

logger = logging.getLogger(__name__)

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


def all_tables(lake: Lake, include_deleted: bool = False, rows: pc.Expression | None = None) -> list[TableRecord]:
    """Every table record (``rows`` narrows the stored rows first, e.g. to one identifier)."""
    current = tables_ledger(lake).current()
    if rows is not None:
        current = current.filter(rows)
    tables = [TableRecord.from_row(row).bound_to(lake) for row in current.to_pylist()]
    return [table for table in tables if include_deleted or not table.deleted]


def table_identifiers(lake: Lake) -> dict[str, str | None]:
    """``{storage_hash: identifier}`` of every table, read from two stored columns: no record is built."""
    current = tables_ledger(lake).current().select(["storage_hash", "identifier", "deleted"])
    return {row["storage_hash"]: row["identifier"] for row in python_rows(current) if not row["deleted"]}


def dropped_tables(lake: Lake) -> set[str]:
    """Storage hashes of the tables dropped, or being dropped (``catalog.drop``), read from two stored columns."""
    current = tables_ledger(lake).current().select(["storage_hash", "deleted"])
    return {row["storage_hash"] for row in python_rows(current) if row["deleted"]}


def tables_version(lake: Lake) -> tuple[str, int] | None:
    """Identity and version of the catalog's table records (None before the first): it changes
    whenever a record is saved, so a derived view (the search index) knows when to catch up."""
    return tables_ledger(lake).version()


def tables_since(lake: Lake, seen_files: Collection[str]) -> tuple[list[TableRecord], list[str]]:
    """The table records saved since the catalog's data files were ``seen_files`` (the files of an
    earlier call; deleted records included), and its current data files."""
    rows, files = tables_ledger(lake).latest_since(seen_files)
    return [TableRecord.from_row(row).bound_to(lake) for row in rows.to_pylist()], files


_PUSHED_DOWN = ("uid", "storage_hash", "identifier", "source_class", "data_frequency_id")


def find_tables(lake: Lake, lookups: Mapping[str, Any]) -> list[TableRecord]:
    """Tables matching Django-style lookups (``identifier__contains``, ``labels__contains``, …)."""
    lookups = prepared_lookups(lookups)
    return [table for table in all_tables(lake, rows=_row_filter(lookups)) if matches_lookups(table, lookups)]


def _row_filter(lookups: Mapping[str, Any]) -> pc.Expression | None:
    """The part of ``lookups`` Arrow applies to stored rows exactly as ``matches_lookups`` would
    (``exact``/``contains`` with a string on plain string columns), so only matching rows become
    records; the full lookups are still checked on the records."""
    expression = None
    for key, expected in lookups.items():
        name, operator = split_lookup(key)
        if name not in _PUSHED_DOWN or not isinstance(expected, str) or operator not in ("exact", "contains"):
            continue
        condition = pc.field(name) == expected if operator == "exact" else pc.match_substring(pc.field(name), expected)
        expression = condition if expression is None else expression & condition
    return expression


def table_record(lake: Lake, storage_hash: str) -> TableRecord | None:
    rows = stored_table_rows(lake, storage_hash)
    return TableRecord.from_row(rows[0]).bound_to(lake) if rows else None


def stored_table_rows(lake: Lake, storage_hash: str) -> list[dict[str, Any]]:
    """The stored catalog row of the table ``storage_hash`` (none before it was first registered),
    as ``register_table`` compares a record with it: a run creating a table reads it ahead
    (``register_table(..., stored=)``), while its rows are written."""
    return tables_ledger(lake).latest(where={"storage_hash": storage_hash})


def save_table_record(lake: Lake, record: TableRecord) -> None:
    """Append the record's new state to the catalog (the search index catches up on its next search)."""
    tables_ledger(lake).append([record.to_row()])
    _known_records[(lake.cache_key, record.storage_hash)] = _digest(record)


# keyed by Lake.cache_key: two stores may each hold s3://lake/prod
_known_records: dict[tuple[LakeKey, str], str] = register_cache("catalog.known_records", {})
_known_updaters: set[tuple[LakeKey, str]] = register_cache("catalog.known_updaters", set())
_known_claims: set[tuple[LakeKey, str, str, str]] = register_cache("catalog.known_claims", set())


def forget_table(lake: Lake, storage_hash: str, update_hashes: Collection[str]) -> None:
    """Forget this process's registrations of a table (record, updaters, claim): its next run makes them again."""
    _known_records.pop((lake.cache_key, storage_hash), None)
    _known_updaters.difference_update({(lake.cache_key, update_hash) for update_hash in update_hashes})
    _known_claims.difference_update({key for key in _known_claims if key[0] == lake.cache_key and key[3] == storage_hash})


def _digest(record: TableRecord) -> str:
    return json.dumps(record.to_row(), sort_keys=True)


def register_table(lake: Lake, record: TableRecord, stored: Callable[[], list[dict[str, Any]]] | None = None,
                   table_id: str = "") -> bool:
    """Claim the record's identifier and store the record when it changed; True when written.
    A record registered once is marked beside ``_catalog/tables``: registering it again, from any
    process, is one request (a record changed since by someone else, e.g. its labels, stays as is).
    A record stored with another ``table_uri`` (the lake was moved or copied since: ``mv``, ``aws s3
    sync``) is stored again with this lake's, so engines reading ``_catalog/tables`` find the table.
    Under ``python -OO`` (no docstrings) a record keeps the ``source_doc`` stored.
    ``stored``: what gives ``stored_table_rows`` read ahead (else they are read here). ``table_id``:
    the Delta table's ``metaData.id``, part of what is remembered and marked, so a table dropped and
    created again (``catalog.drop``) is recorded again, never matched with its ``deleted`` record.

    Raises IdentifierConflictError naming the owner when another storage holds the identifier.
    """
    repointed_away = bool(record.identifier) and not claim_identifier(
        lake, record.identifier, record.namespace, record.storage_hash)
    if repointed_away:
        record = record.model_copy(update={"identifier": None})  # the table keeps no name
    key = (lake.cache_key, record.storage_hash)
    digest = f"{table_id}\n{_digest(record)}"  # a table dropped and created again has another id
    if _known_records.get(key) == digest:
        return False
    ledger, mark = tables_ledger(lake), f"{record.storage_hash}\n{digest}"
    if ledger.marked(mark):  # this very record was registered before, by any process: one request
        _known_records[key] = digest
        return False
    rows = stored() if stored is not None else stored_table_rows(lake, record.storage_hash)
    rows = [row for row in rows if not row.get("deleted")]  # a dropped table's: this one starts afresh
    if rows:  # as stored: a lake moved or copied since has its old table_uri saved again with the new one
        stored = TableRecord.from_row(rows[0])
        record = record.model_copy(update={"labels": sorted(set(stored.labels) | set(record.labels)),
                                           **_published_metadata(record, stored, repointed_away)})
        if record.source_doc is None and sys.flags.optimize >= 2:  # python -OO strips docstrings: keep the stored one
            record = record.model_copy(update={"source_doc": stored.source_doc})
        if _digest(stored) == _digest(record):
            _known_records[key] = digest
            ledger.mark(mark)
            return False
    save_table_record(lake, record)
    _known_records[key] = digest
    ledger.mark(mark)
    return True


def _published_metadata(record: TableRecord, stored: TableRecord, repointed_away: bool) -> dict[str, Any]:
    """The stored table-level metadata a run leaves unsaid (its updater declares no identifier,
    description or frequency: node_metadata is runtime-only, so a backfill job may omit it): the
    table keeps them. Only ``repoint_identifier`` takes a name away from a table."""
    names = ("description", "data_frequency_id") if repointed_away else ("identifier", "description", "data_frequency_id")
    return {name: getattr(stored, name) for name in names
            if getattr(record, name) is None and getattr(stored, name) is not None}


def identifier_claimed(lake: Lake, identifier: str, namespace: str, storage_hash: str) -> bool:
    """Whether this process saw ``storage_hash`` hold ``identifier`` in ``namespace`` (no I/O)."""
    return (lake.cache_key, namespace, identifier, storage_hash) in _known_claims


def claim_identifier(lake: Lake, identifier: str, namespace: str, storage_hash: str) -> bool:
    """Claim ``identifier`` in ``namespace`` for ``storage_hash``; re-claiming your own is a no-op.

    Returns True when ``storage_hash`` holds the identifier, False when it held it once and the
    identifier was since repointed elsewhere (``repoint_identifier``): that table keeps its data
    but no longer its name. Raises IdentifierConflictError when another storage holds it and
    ``storage_hash`` never did.
    """
    if identifier_claimed(lake, identifier, namespace, storage_hash):
        return True
    owner = claim(
        lake, identifier_scope(namespace), identifier,
        {"identifier": identifier, "namespace": namespace, "storage_hash": storage_hash}, _schemas()["claims"],
    )
    if owner["storage_hash"] != storage_hash:
        if storage_hash in _identifier_holders(lake, identifier, namespace):
            return False
        where = f" in namespace {namespace!r}" if namespace else ""
        raise IdentifierConflictError(
            f"identifier {identifier!r}{where} is already used by table {owner['storage_hash']}; "
            "choose another identifier (e.g. add a project suffix), or give it to this table before its first run: "
            f"lakenodes.repoint_identifier({identifier!r}, node) (docs/identity.md)"
        )
    _known_claims.add((lake.cache_key, namespace, identifier, storage_hash))
    return True


def _identifier_holders(lake: Lake, identifier: str, namespace: str) -> set[str]:
    """Every storage an identifier ever pointed at: its first claim (version 0, as in
    ``claims.claim_owner``) and each ``repoint_identifier`` target."""
    uri = claim_uri(lake, identifier_scope(namespace), identifier)
    table = TableStore(lake, identifier, uri=uri).table()
    if table is None:
        return set()
    rows = python_rows(read_unpartitioned(lake, table))
    holders = {row["storage_hash"] for row in rows if row.get(CLAIM_KIND) == "reassign"}
    if table.version() > 0:
        table = DeltaTable(uri, version=0, storage_options=lake.storage_options or None)
    first = python_rows(read_unpartitioned(lake, table))
    return holders | {row["storage_hash"] for row in first[:1]}


def repoint_identifier(identifier: str, target: Any, *, namespace: str | None = None, lake: LakeLike | None = None) -> None:
    """Point a published identifier at another table without changing any hash.

    ``target`` is the storage hash of a table in the lake, or a DataNode, whose table need not exist
    yet: repointing to a node before its first run is how a new version of a table (a schema change
    is a new table) takes over the name (docs/identity.md). For a node, ``namespace`` and ``lake``
    default to the node's.
    """
    identifier = checked_identifier(identifier)
    node = target if isinstance(target, HashedAsUpdateHash) else None
    if node is None and not isinstance(target, str):
        raise ConfigurationError(f"repoint_identifier takes a DataNode or a storage hash, got {type(target).__name__}")
    storage_hash = target.storage_hash if node is not None else target
    if namespace is None:
        namespace = node.hash_namespace if node is not None else ""
    namespace = checked_namespace(namespace)
    lake = lake_argument(lake) or (node.lake if node is not None else current_lake())
    record = table_record(lake, storage_hash)
    if record is None and node is None:
        raise NotFoundError(f"no table with storage hash {storage_hash!r} in {lake.uri}; to repoint the identifier "
                            "to a node whose table is not written yet, pass the node itself")
    if node is not None:
        _check_publishes(identifier, node)
    elif record.identifier not in (None, identifier) and resolve_identifier(lake, record.identifier, namespace) == \
            storage_hash:
        raise ConfigurationError(
            f"table {storage_hash} is published as {record.identifier!r}, and its updater claims that name on every "
            f"run: give its node node_metadata identifier={identifier!r} (no hash changes), then repoint from "
            f"Python: repoint_identifier({identifier!r}, node)")
    previous = resolve_identifier(lake, identifier, namespace)
    _known_claims.difference_update({key for key in _known_claims if key[:3] == (lake.cache_key, namespace, identifier)})
    reassign(lake, identifier_scope(namespace), identifier,
             {"identifier": identifier, "namespace": namespace, "storage_hash": storage_hash}, _schemas()["claims"])
    if record is not None:  # else the node's first run records its table under the identifier
        save_table_record(lake, record.model_copy(update={"identifier": identifier, "namespace": namespace}))
    if previous and previous != storage_hash:
        old = table_record(lake, previous)
        if old is not None and old.identifier == identifier:
            save_table_record(lake, old.model_copy(update={"identifier": None}))


def _check_publishes(identifier: str, node: Any) -> None:
    """Refuse a node that publishes another name (or none): its runs would record its table under
    that, and ``identifier`` would point at a table no catalog record names."""
    metadata = node.get_table_metadata()
    own = metadata.identifier if metadata is not None else None
    if own != identifier:
        publishes = f"publishes identifier {own!r}" if own else "publishes no identifier"
        raise ConfigurationError(
            f"{type(node).__name__} {publishes}: give it node_metadata identifier={identifier!r} "
            f"(no hash changes) before repointing {identifier!r} to it")


def resolve_identifier(lake: Lake, identifier: str, namespace: str = "") -> str | None:
    """Storage hash an identifier points at in ``namespace`` (None when unclaimed)."""
    owner = claim_owner(lake, identifier_scope(namespace), identifier)
    return owner["storage_hash"] if owner else None


def updater_registered(lake: Lake, update_hash: str) -> bool:
    """Whether this process registered (or found) the updater already: ``register_updater`` is then a no-op."""
    return (lake.cache_key, update_hash) in _known_updaters


def register_updater(lake: Lake, update_hash: str, storage_hash: str, namespace: str, source_class: str,
                     configuration: Mapping[str, Any]) -> None:
    """Record the updater once (the first record of an ``update_hash`` stands), then mark it in
    ``_catalog/updates/_lakenodes/marks/`` so a fresh process finds it with one request."""
    key = (lake.cache_key, update_hash)
    if key in _known_updaters:
        return
    ledger = updates_ledger(lake)
    if not ledger.marked(update_hash):  # a fresh process: one request instead of reading every updater
        if not ledger.latest(where={"update_hash": update_hash}):
            ledger.append([{
                "update_hash": update_hash, "storage_hash": storage_hash, "namespace": namespace,
                "source_class": source_class, "configuration": json.dumps(configuration, sort_keys=True, default=str),
            }])
        ledger.mark(update_hash)
    _known_updaters.add(key)


def record_run(lake: Lake, *rows: Mapping[str, Any], pending: bool = False) -> None:
    """Record ``rows`` in ``_catalog/runs`` in one write: ``pending``, one small file folded in now and then
    (:mod:`lakenodes.lake.pending`), the cheap record of a success; else at once, with every pending
    run, in one Delta commit (a failed or skipped run: any engine sees it right away)."""
    runs = Pending(runs_ledger(lake))
    if pending:
        runs.put(rows)
    else:
        runs.fold(rows)


def _runs(lake: Lake, update_hash: str | None = None) -> list[dict[str, Any]]:
    """Every recorded run, folded or pending (of ``update_hash`` only, when given), sorted by start.
    The lake's runs of every updater are filtered first: only the rows kept become Python objects."""
    runs = pl.from_arrow(Pending(runs_ledger(lake)).rows())
    if update_hash is not None:
        runs = runs.filter(pl.col("update_hash") == update_hash)
    return runs.sort("started_at", maintain_order=True).to_dicts()  # as python_rows: no pandas import


def _last_runs(lake: Lake) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """The last run (by start; of runs started together, the last recorded) and the number of runs
    of each updater, counted as Arrow: one row per updater becomes Python objects, not every run."""
    rows = Pending(runs_ledger(lake)).rows()
    order = pl.from_arrow(rows.select(["update_hash", "started_at"])).with_row_index("row").sort(["started_at", "row"])
    last = order.group_by("update_hash").agg(pl.len().alias("runs"), pl.col("row").last())
    runs = {run["update_hash"]: run for run in python_rows(rows.take(last["row"].to_arrow()))}
    return runs, dict(zip(last["update_hash"].to_list(), last["runs"].to_list(), strict=True))


def update_processes(lake: LakeLike | None = None) -> list[dict[str, Any]]:
    """Every updater with its storage and last run (status, rows, times, error)."""
    lake = lake_or_current(lake)
    runs, counts = _last_runs(lake)
    result = []
    for updater in sorted(updates_ledger(lake).latest(), key=lambda r: r[RECORDED_AT]):
        last = runs.get(updater["update_hash"], {})
        result.append({
            **{k: updater[k] for k in ("update_hash", "storage_hash", "namespace", "source_class")},
            "registered_at": updater[RECORDED_AT],
            "runs": counts.get(updater["update_hash"], 0),
            "last_run_at": last.get("started_at"),
            "last_status": last.get("status"),
            "last_rows_written": last.get("rows_written"),
            "last_error": last.get("error"),
        })
    return result


def run_history(lake: LakeLike | None = None, update_hash: str | None = None) -> list[dict[str, Any]]:
    return _runs(lake_or_current(lake), update_hash or None)
