"""The lake catalog: every table (``TimeIndexMetaTable``), identifier claim, updater and run.

Stored as append-only Delta tables under ``<root>/_catalog/`` (readable by DuckDB or Spark);
the latest row of a record is its current state.
"""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .errors import IdentifierConflictError, LakenodesUserError, NotFoundError
from .lake import Lake, current_lake
from .ledger import (
    CLAIM_KIND,
    RECORDED_AT,
    Ledger,
    claim,
    claim_owner,
    claim_uri,
    read_unpartitioned,
    reassign,
)
from .lookups import exactly_one, matches_lookups, split_lookup
from .storage import TableStore

logger = logging.getLogger(__name__)

_TS = pa.timestamp("us", tz="UTC")
TABLES_SCHEMA = pa.schema([
    ("uid", pa.string()), ("storage_hash", pa.string()), ("identifier", pa.string()),
    ("namespace", pa.string()), ("description", pa.string()), ("labels", pa.string()),
    ("data_frequency_id", pa.string()), ("index_names", pa.string()), ("columns", pa.string()),
    ("source_class", pa.string()), ("source_doc", pa.string()), ("build_configuration", pa.string()),
    ("table_uri", pa.string()), ("deleted", pa.bool_()),
])
UPDATES_SCHEMA = pa.schema([
    ("update_hash", pa.string()), ("storage_hash", pa.string()), ("namespace", pa.string()),
    ("source_class", pa.string()), ("configuration", pa.string()),
])
RUNS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("update_hash", pa.string()), ("storage_hash", pa.string()),
    ("started_at", _TS), ("finished_at", _TS), ("status", pa.string()), ("rows_written", pa.int64()),
    ("error", pa.string()), ("host", pa.string()),
])
CLAIM_SCHEMA = pa.schema([
    (RECORDED_AT, _TS), ("kind", pa.string()), ("identifier", pa.string()), ("namespace", pa.string()), ("storage_hash", pa.string()),
])
_JSON_FIELDS = ("labels", "index_names", "columns", "build_configuration")


def table_uid(storage_hash: str) -> str:
    """Stable uid of a table: the same storage hash always gets the same uid."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lakenodes:{storage_hash}"))


class ColumnMetadata(BaseModel):
    column_name: str
    dtype: str
    label: str | None = None
    description: str | None = None


class TimeIndexMetaTable(BaseModel):
    """Catalog record of one stored table.

    Example:
        >>> tables = TimeIndexMetaTable.filter(identifier__contains="simulated_prices")  # doctest: +SKIP
        >>> tables[0].table_uri  # doctest: +SKIP
        '/path/to/lake/tables/simulatedprices_...'
    """

    model_config = ConfigDict(extra="ignore")

    uid: str
    storage_hash: str
    identifier: str | None = None
    namespace: str = ""
    description: str | None = None
    labels: list[str] = Field(default_factory=list)
    data_frequency_id: str | None = None
    index_names: list[str] = Field(default_factory=list)
    columns: list[ColumnMetadata] = Field(default_factory=list)
    source_class: str | None = None
    source_doc: str | None = None
    build_configuration: dict[str, Any] = Field(default_factory=dict)
    table_uri: str
    recorded_at: datetime.datetime | None = None
    deleted: bool = False

    # -- lookups --------------------------------------------------------------------------------
    @classmethod
    def filter(cls, *, lake: Lake | None = None, **lookups: Any) -> list[TimeIndexMetaTable]:
        """Tables matching Django-style lookups (``identifier__contains``, ``labels__contains``, …)."""
        lake = lake or current_lake()
        return [table for table in all_tables(lake, rows=_row_filter(lookups)) if matches_lookups(table, lookups)]

    @classmethod
    def get(cls, *, lake: Lake | None = None, **lookups: Any) -> TimeIndexMetaTable:
        """The one table matching ``lookups``; ``identifier=`` looks in the empty namespace unless
        ``namespace=`` is given. Raises NotFoundError / LakenodesUserError when not exactly one."""
        if "identifier" in lookups:
            lookups.setdefault("namespace", "")
        return exactly_one(cls.filter(lake=lake, **lookups), lookups, "table")

    # -- search ---------------------------------------------------------------------------------
    @classmethod
    def description_search(
        cls, q: str, *, trigram_k: int = 200, embed_k: int = 200, w_trgm: float = 0.65, w_emb: float = 0.35,
        embedding_model: Any = None, limit: int = 20, offset: int = 0, lake: Lake | None = None, **filters: Any,
    ) -> dict[str, Any]:
        """Semantic table discovery blending trigram and embedding similarity.

        Returns ``{count, next, previous, results}`` with table metadata (not rows). Filters:
        ``namespace``, ``labels__contains``, ``identifier__contains``, ``data_frequency_id``.

        Example:
            >>> TimeIndexMetaTable.description_search("daily close price", namespace="")  # doctest: +SKIP
        """
        from .search import search_tables

        return search_tables(
            lake or current_lake(), q, mode="description", trigram_k=trigram_k, embed_k=embed_k,
            w_trgm=w_trgm, w_emb=w_emb, embedding_model=embedding_model, limit=limit, offset=offset,
            filters=filters,
        )

    @classmethod
    def column_search(
        cls, q: str, *, limit: int = 20, offset: int = 0, lake: Lake | None = None, **filters: Any
    ) -> dict[str, Any]:
        """Schema-oriented discovery: tables ranked by their best matching column name or metadata.

        Example:
            >>> TimeIndexMetaTable.column_search("implied_volatility")  # doctest: +SKIP
        """
        from .search import search_tables

        return search_tables(lake or current_lake(), q, mode="column", limit=limit, offset=offset, filters=filters)

    def refresh_table_search_index(self) -> None:
        """Re-index this table from its current catalog record (metadata, columns, source class)."""
        from .search import search_index, table_document

        current = table_record(self.lake, self.storage_hash) or self
        search_index(self.lake).upsert_tables([table_document(current)])
        logger.info("search index refreshed for %s", self.identifier or self.storage_hash)

    @classmethod
    def rebuild_search_index(cls, *, lake: Lake | None = None, embedding_model: Any = None) -> int:
        """Rebuild the whole search index from the catalog; returns the number of tables indexed."""
        from .search import rebuild_index

        return rebuild_index(lake or current_lake(), embedding_model)

    # -- metadata changes (labels never touch identity) ---------------------------------------
    def add_label(self, label: str, *, lake: Lake | None = None) -> TimeIndexMetaTable:
        if label not in self.labels:
            self.labels = [*self.labels, label]
            save_table_record(lake or self.lake, self)
        return self

    def remove_label(self, label: str, *, lake: Lake | None = None) -> TimeIndexMetaTable:
        if label in self.labels:
            self.labels = [existing for existing in self.labels if existing != label]
            save_table_record(lake or self.lake, self)
        return self

    # -- table operations -------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Current first/last ``time_index`` overall and per identity, from Delta metadata."""
        from .statistics import read_progress
        from .storage import TableStore

        table = TableStore(self.lake, self.storage_hash).table()
        if table is None:
            return {"last_time_index_value": None, "earliest_index_value": None, "row_count": 0,
                    "multi_index_stats": None, "multi_index_column_stats": None}
        progress = read_progress(table, self.lake)
        per_identity = None
        if progress.index_names[1:]:
            per_identity = {}
            for identity, last in sorted(progress.last.items()):
                level = per_identity
                for value in identity[:-1]:
                    level = level.setdefault(value, {})
                level[identity[-1]] = {"min": _iso(progress.first.get(identity)), "max": _iso(last)}
        return {
            "last_time_index_value": _iso(progress.max_time),
            "earliest_index_value": _iso(progress.min_time),
            "row_count": progress.row_count,
            "multi_index_stats": per_identity,
            "multi_index_column_stats": None,
        }

    def run_query(
        self, sql: str, max_rows: int = 1000, *, timeout_s: float | None = None,
        memory_limit: int | str | None = None,
    ) -> dict[str, Any]:
        """Run one read-only SELECT/WITH over this table (by identifier or storage hash).

        Returns the envelope ``{ok, query_id, meta_table_uid, results, truncated, max_rows,
        row_count, error}``; anything but a single read of this table is refused, never executed.
        ``timeout_s`` / ``memory_limit`` (default: ``LAKENODES_SQL_TIMEOUT`` /
        ``LAKENODES_SQL_MEMORY_LIMIT``, else 30 s / 1 GiB) stop runaway queries (see lakenodes.sql).

        Example:
            >>> table.run_query("SELECT count(*) AS n FROM " + table.storage_hash)  # doctest: +SKIP
        """
        from .sql import TABLE_NAME_PATTERN, run_readonly_query

        names = [name for name in (self.storage_hash, self.identifier) if name and TABLE_NAME_PATTERN.match(name)]
        return run_readonly_query(
            self.table_uri, sql, table_names=names, storage_options=self.lake.storage_options or None,
            max_rows=max_rows, meta_table_uid=self.uid, timeout_s=timeout_s, memory_limit=memory_limit,
        )

    def delete_after_date(
        self,
        after_date: Any,
        *,
        dimension_filters: Mapping[str, Sequence[str] | str] | None = None,
        index_coordinates: Sequence[Mapping[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Delete rows with ``time_index >= after_date`` (inclusive), optionally only for some
        identities; returns ``{ok, meta_table_uid, deleted_count, table_empty, dimension_filters, stats}``.

        Example:
            >>> table.delete_after_date("2026-04-01T00:00:00Z", dimension_filters={"unique_identifier": ["AAPL"]})  # doctest: +SKIP
        """
        from .node import parse_datetime
        from .storage import TableStore

        cutoff = parse_datetime(after_date, "after_date")
        if cutoff is None:
            raise LakenodesUserError("after_date is required (an ISO-8601 date or datetime)")
        filters = {dim: [values] if isinstance(values, str) else list(values)
                   for dim, values in (dimension_filters or {}).items()}
        dims = set(self.index_names[1:])
        for dim in [*filters, *[d for coordinate in index_coordinates or [] for d in coordinate]]:
            if dim not in dims:
                raise LakenodesUserError(
                    f"{dim!r} is not an identity dimension of {self.identifier or self.storage_hash}; "
                    f"its dimensions are {sorted(dims)}"
                )
        if any(not values for values in filters.values()):
            raise LakenodesUserError("dimension_filters values must be non-empty lists")
        deleted = TableStore(self.lake, self.storage_hash).delete_after(
            cutoff, dimension_filters=filters, coordinates=index_coordinates
        )
        stats = self.stats()
        logger.info("deleted %d rows at or after %s from %s", deleted, cutoff, self.storage_hash)
        return {
            "ok": True,
            "meta_table_uid": self.uid,
            "deleted_count": deleted,
            "table_empty": stats["row_count"] == 0,
            "dimension_filters": filters or None,
            "stats": {key: stats[key] for key in
                      ("last_time_index_value", "earliest_index_value", "multi_index_stats", "multi_index_column_stats")},
        }

    _lake: Lake | None = PrivateAttr(default=None)

    @property
    def lake(self) -> Lake:
        """The lake this record was read from (its tables live there, wherever the lake was moved)."""
        if self._lake is not None:
            return self._lake
        root = self.table_uri.rsplit("/tables/", 1)[0]
        current = current_lake()
        return current if current.uri == root else Lake(root)

    def bound_to(self, lake: Lake) -> TimeIndexMetaTable:
        """This record as read from ``lake``: its table URI is rebased onto the lake's root."""
        self.table_uri = lake.table_uri(self.storage_hash)
        self._lake = lake
        return self

    def to_row(self) -> dict[str, Any]:
        row = self.model_dump(exclude={"recorded_at"})
        row["columns"] = [column.model_dump() for column in self.columns]
        for name in _JSON_FIELDS:
            row[name] = json.dumps(row[name], sort_keys=True, default=str)
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TimeIndexMetaTable:
        data = dict(row)
        for name in _JSON_FIELDS:
            data[name] = json.loads(data[name]) if data.get(name) else None
        data = {key: value for key, value in data.items() if value is not None}
        return cls(**data)


def _iso(value: datetime.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _tables_ledger(lake: Lake) -> Ledger:
    return Ledger(lake, "tables", TABLES_SCHEMA, key=("storage_hash",))


def updates_ledger(lake: Lake) -> Ledger:
    return Ledger(lake, "updates", UPDATES_SCHEMA, key=("update_hash",))


def runs_ledger(lake: Lake) -> Ledger:
    return Ledger(lake, "runs", RUNS_SCHEMA, key=("run_id",))


def all_tables(lake: Lake, include_deleted: bool = False, rows: pc.Expression | None = None) -> list[TimeIndexMetaTable]:
    """Every table record (``rows`` narrows the stored rows first, e.g. to one identifier)."""
    current = _tables_ledger(lake).current()
    if rows is not None:
        current = current.filter(rows)
    tables = [TimeIndexMetaTable.from_row(row).bound_to(lake) for row in current.to_pylist()]
    return [table for table in tables if include_deleted or not table.deleted]


_PUSHED_DOWN = ("uid", "storage_hash", "identifier", "source_class", "data_frequency_id")


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


def table_record(lake: Lake, storage_hash: str) -> TimeIndexMetaTable | None:
    rows = _tables_ledger(lake).latest(where={"storage_hash": storage_hash})
    return TimeIndexMetaTable.from_row(rows[0]).bound_to(lake) if rows else None


def save_table_record(lake: Lake, record: TimeIndexMetaTable) -> None:
    """Append the record's new state to the catalog (the search index catches up on its next search)."""
    _tables_ledger(lake).append([record.to_row()])
    _known_records[(lake.uri, record.storage_hash)] = _digest(record)


_known_records: dict[tuple[str, str], str] = {}
_known_updaters: set[tuple[str, str]] = set()
_known_claims: set[tuple[str, str, str, str]] = set()


def _digest(record: TimeIndexMetaTable) -> str:
    return json.dumps(record.to_row(), sort_keys=True)


def register_table(lake: Lake, record: TimeIndexMetaTable) -> bool:
    """Claim the record's identifier and store the record when it changed; True when written.

    Raises IdentifierConflictError naming the owner when another storage holds the identifier.
    """
    if record.identifier and not claim_identifier(lake, record.identifier, record.namespace, record.storage_hash):
        record = record.model_copy(update={"identifier": None})  # repointed away: the table keeps no name
    key = (lake.uri, record.storage_hash)
    digest = _digest(record)
    if _known_records.get(key) == digest:
        return False
    stored = table_record(lake, record.storage_hash)
    if stored is not None:
        record = record.model_copy(update={"labels": sorted(set(stored.labels) | set(record.labels))})
        digest = _digest(record)
        if _digest(stored) == digest:
            _known_records[key] = digest
            return False
    save_table_record(lake, record)
    return True


def claim_identifier(lake: Lake, identifier: str, namespace: str, storage_hash: str) -> bool:
    """Claim ``identifier`` in ``namespace`` for ``storage_hash``; re-claiming your own is a no-op.

    Returns True when ``storage_hash`` holds the identifier, False when it held it once and the
    identifier was since repointed elsewhere (``repoint_identifier``): that table keeps its data
    but no longer its name. Raises IdentifierConflictError when another storage holds it and
    ``storage_hash`` never did.
    """
    key = (lake.uri, namespace, identifier, storage_hash)
    if key in _known_claims:
        return True
    owner = claim(
        lake, _identifier_scope(namespace), identifier,
        {"identifier": identifier, "namespace": namespace, "storage_hash": storage_hash}, CLAIM_SCHEMA,
    )
    if owner["storage_hash"] != storage_hash:
        if storage_hash in _identifier_holders(lake, identifier, namespace):
            return False
        where = f" in namespace {namespace!r}" if namespace else ""
        raise IdentifierConflictError(
            f"identifier {identifier!r}{where} is already used by table {owner['storage_hash']}; "
            "choose another identifier (e.g. add a project suffix) or repoint it explicitly"
        )
    _known_claims.add(key)
    return True


def _identifier_holders(lake: Lake, identifier: str, namespace: str) -> set[str]:
    """Every storage an identifier ever pointed at: its first claim (version 0, as in
    ``ledger.claim_owner``) and each ``repoint_identifier`` target."""
    uri = claim_uri(lake, _identifier_scope(namespace), identifier)
    table = TableStore(lake, identifier, uri=uri).table()
    if table is None:
        return set()
    rows = read_unpartitioned(lake, table).to_pylist()
    holders = {row["storage_hash"] for row in rows if row.get(CLAIM_KIND) == "reassign"}
    if table.version() > 0:
        table = DeltaTable(uri, version=0, storage_options=lake.storage_options or None)
    first = read_unpartitioned(lake, table).to_pylist()
    return holders | {row["storage_hash"] for row in first[:1]}


def repoint_identifier(identifier: str, storage_hash: str, *, namespace: str = "", lake: Lake | None = None) -> None:
    """Point a published identifier at another storage without changing any hash."""
    lake = lake or current_lake()
    target = table_record(lake, storage_hash)
    if target is None:
        raise NotFoundError(f"no table with storage hash {storage_hash!r} in {lake.uri}")
    previous = resolve_identifier(lake, identifier, namespace)
    _known_claims.difference_update({key for key in _known_claims if key[:3] == (lake.uri, namespace, identifier)})
    reassign(lake, _identifier_scope(namespace), identifier,
             {"identifier": identifier, "namespace": namespace, "storage_hash": storage_hash}, CLAIM_SCHEMA)
    save_table_record(lake, target.model_copy(update={"identifier": identifier, "namespace": namespace}))
    if previous and previous != storage_hash:
        old = table_record(lake, previous)
        if old is not None and old.identifier == identifier:
            save_table_record(lake, old.model_copy(update={"identifier": None}))


def resolve_identifier(lake: Lake, identifier: str, namespace: str = "") -> str | None:
    """Storage hash an identifier points at in ``namespace`` (None when unclaimed)."""
    owner = claim_owner(lake, _identifier_scope(namespace), identifier)
    return owner["storage_hash"] if owner else None


def _identifier_scope(namespace: str) -> str:
    return f"identifiers/{namespace or '_default'}"


def register_updater(lake: Lake, update_hash: str, storage_hash: str, namespace: str, source_class: str,
                     configuration: Mapping[str, Any]) -> None:
    key = (lake.uri, update_hash)
    if key in _known_updaters:
        return
    ledger = updates_ledger(lake)
    if not ledger.latest(where={"update_hash": update_hash}):
        ledger.append([{
            "update_hash": update_hash, "storage_hash": storage_hash, "namespace": namespace,
            "source_class": source_class, "configuration": json.dumps(configuration, sort_keys=True, default=str),
        }])
    _known_updaters.add(key)


def record_run(lake: Lake, row: Mapping[str, Any]) -> None:
    runs_ledger(lake).append([row])


def update_processes(lake: Lake | None = None) -> list[dict[str, Any]]:
    """Every updater with its storage and last run (status, rows, times, error)."""
    lake = lake or current_lake()
    runs: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for run in sorted(runs_ledger(lake).read().to_pylist(), key=lambda r: r["started_at"]):
        runs[run["update_hash"]] = run
        counts[run["update_hash"]] = counts.get(run["update_hash"], 0) + 1
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


def run_history(lake: Lake | None = None, update_hash: str | None = None) -> list[dict[str, Any]]:
    rows = runs_ledger(lake or current_lake()).read().to_pylist()
    if update_hash:
        rows = [row for row in rows if row["update_hash"] == update_hash]
    return sorted(rows, key=lambda row: row["started_at"])


def columns_metadata(schema: pa.Schema, index_names: Sequence[str], records: Sequence[Any] | None) -> list[ColumnMetadata]:
    from .frames import logical_dtype

    declared = {record.column_name: record for record in records or []}
    columns = []
    for field in schema:
        record = declared.get(field.name)
        columns.append(ColumnMetadata(
            column_name=field.name,
            dtype=logical_dtype(field.type),
            label=record.label if record else None,
            description=record.description if record else ("index" if field.name in index_names else None),
        ))
    return columns
