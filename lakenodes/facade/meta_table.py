"""``lakenodes.TimeIndexMetaTable``: a catalog record (:class:`lakenodes.catalog.records.TableRecord`)
with the seeds' methods: lookups, search, read-only SQL, tail deletes, labels and statistics.

Example:
    >>> import tempfile
    >>> from lakenodes import Lake
    >>> lake = Lake(tempfile.mkdtemp())
    >>> TimeIndexMetaTable.filter(identifier__contains="simulated_prices", lake=lake)
    []
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

from .._internal.datetimes import iso_z, parse_datetime
from .._internal.deferred import DeferredModule
from ..catalog.catalog import find_tables, save_table_record, table_record
from ..catalog.drop import drop_table
from ..catalog.records import TableRecord
from ..core.lookup_parsing import parse_new_label
from ..core.lookups import exactly_one
from ..errors import LakenodesUserError, VersionUnavailableError
from ..lake.diff import TableDiff, diff_versions
from ..lake.location import LakeLike, lake_argument, lake_or_current
from ..lake.progress import NO_TABLE, persisted_progress, read_progress
from ..lake.restore import refuse_catalog_table, restore_table
from ..lake.sql import TABLE_NAME_PATTERN, run_readonly_query
from ..lake.store import TableStore
from ..lake.versions import table_history
from ..nodes.api_node import APIDataNode
from ..nodes.read_arguments import flag_argument, identity_filters, identity_value

if TYPE_CHECKING:
    from .. import search
else:  # LanceDB's search stack loads on the first search (a cron job's `lakenodes run` never searches)
    search = DeferredModule("lakenodes.search")

logger = logging.getLogger(__name__)


class TimeIndexMetaTable(TableRecord):
    """Catalog record of one stored table, with the seeds' methods.

    Example:
        >>> import tempfile
        >>> from lakenodes import Lake
        >>> TimeIndexMetaTable.filter(labels__contains="fx", lake=Lake(tempfile.mkdtemp()))
        []
    """

    @classmethod
    def of(cls, record: TableRecord) -> Self:
        """``record`` (as the catalog returns it) as a ``TimeIndexMetaTable`` bound to the same lake."""
        if isinstance(record, cls):
            return record
        table = cls.model_construct(_fields_set=record.model_fields_set,
                                    **{name: getattr(record, name) for name in TableRecord.model_fields})
        table._lake = record._lake
        return table

    # -- lookups --------------------------------------------------------------------------------
    @classmethod
    def filter(cls, *, lake: LakeLike | None = None, **lookups: Any) -> list[Self]:
        """Tables matching Django-style lookups (``identifier__contains``, ``labels__contains``, …;
        ``__in`` takes a list); ``lake``: a Lake, a folder path or an s3:// URI (None: the lake in effect)."""
        return [cls.of(table) for table in find_tables(lake_or_current(lake), lookups)]

    @classmethod
    def get(cls, *, lake: LakeLike | None = None, **lookups: Any) -> Self:
        """The one table matching ``lookups``; ``identifier=`` looks in the empty namespace unless
        ``namespace=`` is given (``lake``: as for ``filter``). Raises NotFoundError / LakenodesUserError
        when not exactly one."""
        if "identifier" in lookups:
            lookups.setdefault("namespace", "")
        return exactly_one(cls.filter(lake=lake, **lookups), lookups, "table")

    # -- search ---------------------------------------------------------------------------------
    @classmethod
    def description_search(
        cls, q: str, *, trigram_k: int = 200, embed_k: int = 200, w_trgm: float = 0.65, w_emb: float = 0.35,
        embedding_model: Any = None, q_embedding: Any = None, limit: int = 20, offset: int = 0,
        lake: LakeLike | None = None, **filters: Any,
    ) -> dict[str, Any]:
        """Semantic table discovery blending trigram and embedding similarity.

        Returns ``{count, next, previous, results}`` with table metadata (not rows), each result also
        under the seeds' names ``cadence`` and ``physical_table_name``. Filters: any catalog lookup
        (``namespace``, ``labels__contains``, ``identifier__contains``, ``data_frequency_id``,
        ``source_class``...). ``q``: the query text (a string). ``trigram_k``, ``embed_k``: how many
        candidates each ranking contributes (ints >= 0); ``w_trgm``, ``w_emb``: their weights (numbers
        >= 0); ``embedding_model``: a spec such as ``"minilm"`` or ``"hashing"`` (None: the index's own);
        ``q_embedding``: the query's vector, computed with the index's embedder; ``limit``, ``offset``:
        the page (ints); ``lake``: as for ``filter``.

        Example (``example``: a temporary lake with one table, see conftest.py):
            >>> page = TimeIndexMetaTable.description_search("daily close price", lake=example.lake)
            >>> [hit["identifier"] for hit in page["results"]]
            ['example_prices']
        """
        return search.search_tables(
            lake_or_current(lake), q, mode="description", trigram_k=trigram_k, embed_k=embed_k,
            w_trgm=w_trgm, w_emb=w_emb, embedding_model=embedding_model, q_embedding=q_embedding, limit=limit,
            offset=offset, filters=filters,
        )

    @classmethod
    def column_search(
        cls, q: str, *, embedding_model: Any = None, q_embedding: Any = None, limit: int = 20, offset: int = 0,
        lake: LakeLike | None = None, **filters: Any,
    ) -> dict[str, Any]:
        """Schema-oriented discovery: tables ranked by their best matching column name or metadata
        (the same filters as :meth:`description_search`; ``q``, ``embedding_model``, ``q_embedding``,
        ``limit``, ``offset`` and ``lake`` likewise).

        Example (``example``: a temporary lake with one table, see conftest.py):
            >>> sorted(TimeIndexMetaTable.column_search("close", lake=example.lake))
            ['count', 'next', 'previous', 'results']
        """
        return search.search_tables(lake_or_current(lake), q, mode="column", embedding_model=embedding_model,
                                    q_embedding=q_embedding, limit=limit, offset=offset, filters=filters)

    def refresh_table_search_index(self) -> None:
        """Re-index this table from its current catalog record (metadata, columns, source class)."""
        current = table_record(self.lake, self.storage_hash) or self
        search.refresh_tables(self.lake, [current])
        logger.info("search index refreshed for %s", self.identifier or self.storage_hash)

    @classmethod
    def rebuild_search_index(cls, *, lake: LakeLike | None = None, embedding_model: Any = None) -> int:
        """Rebuild the whole search index from the catalog, with ``embedding_model`` (a spec such as
        ``"minilm"``, ``"hashing"``, ``"sentence-transformers:<path>"``; None keeps the index's own);
        returns the number of tables indexed."""
        return search.rebuild_index(lake_or_current(lake), embedding_model)

    # -- metadata changes (labels never touch identity) ---------------------------------------
    def add_label(self, label: str, *, lake: LakeLike | None = None) -> Self:
        label = parse_new_label(label, name="label")
        if label not in self.labels:
            self.labels = [*self.labels, label]
            save_table_record(lake_argument(lake) or self.lake, self)
        return self

    def remove_label(self, label: str, *, lake: LakeLike | None = None) -> Self:
        if label in self.labels:
            self.labels = [existing for existing in self.labels if existing != label]
            save_table_record(lake_argument(lake) or self.lake, self)
        return self

    # -- table operations -------------------------------------------------------------------------
    def stats(self, *, as_of: Any = None, earliest: bool = True) -> dict[str, Any]:
        """First/last ``time_index`` overall and per identity, from Delta metadata: of the current
        version, or of the table as it was at ``as_of`` (a version or a datetime, as for reads);
        ``version`` names the table version described (None before the table exists). With
        ``earliest=False`` the first times are not looked up (``earliest_index_value`` and
        ``multi_index_stats`` are None): a process that has not opened the table reads its persisted
        progress then, no log replay (``data-node list`` over a lake of 1,000 tables)."""
        store = TableStore(self.lake, self.storage_hash)
        progress = None
        if as_of is None and not earliest and not store.is_open():
            progress = persisted_progress(self.lake, store.uri, lambda: read_progress(store.table(), self.lake).first)
        if progress is None:
            table = store.table_as_of(as_of)
            progress = NO_TABLE if table is None else read_progress(table, self.lake)
        if progress is NO_TABLE:
            return {"last_time_index_value": None, "earliest_index_value": None, "row_count": 0,
                    "multi_index_stats": None, "multi_index_column_stats": None, "version": None}
        per_identity = None
        if progress.index_names[1:] and earliest:
            per_identity = {}
            for identity, last in sorted(progress.last.items()):
                level = per_identity
                for value in identity[:-1]:
                    level = level.setdefault(value, {})
                level[identity[-1]] = {"min": iso_z(progress.first.get(identity)), "max": iso_z(last)}
        return {
            "last_time_index_value": iso_z(progress.max_time),
            "earliest_index_value": iso_z(progress.min_time) if earliest else None,
            "row_count": progress.row_count,
            "multi_index_stats": per_identity,
            "multi_index_column_stats": None,
            "version": progress.version,
        }

    def run_query(
        self, sql: str, max_rows: int = 1000, *, timeout_s: float | None = None,
        memory_limit: int | str | None = None, as_of: Any = None,
    ) -> dict[str, Any]:
        """Run ``sql``, one read-only SELECT/WITH over this table (by identifier or storage hash), returning
        at most ``max_rows`` rows (an int from 1 up; ``truncated`` says when more matched).

        Returns the envelope ``{ok, query_id, meta_table_uid, results, truncated, max_rows,
        row_count, error}`` (JSON-ready rows: NaN and infinities as the strings ``"NaN"``,
        ``"Infinity"``, ``"-Infinity"``; null is a missing value); anything but a single read of this
        table is refused, never executed.
        ``timeout_s`` / ``memory_limit`` (default: ``LAKENODES_SQL_TIMEOUT`` /
        ``LAKENODES_SQL_MEMORY_LIMIT``, else 30 s / 1 GiB) stop runaway queries (see lakenodes.lake.sql).
        ``as_of`` (a version or a datetime, as for reads) queries the table as it was then; a moment
        before the table existed, or a version that cannot be read, raises VersionUnavailableError.

        Example (``example``: a temporary lake with one table, see conftest.py):
            >>> example.table.run_query("SELECT count(DISTINCT unique_identifier) AS assets FROM example_prices")["results"]
            [{'assets': 2}]
        """
        names = [name for name in (self.storage_hash, self.identifier) if name and TABLE_NAME_PATTERN.match(name)]
        return run_readonly_query(
            self.table_uri, sql, table_names=names, storage_options=self.lake.storage_options or None,
            max_rows=max_rows, meta_table_uid=self.uid, timeout_s=timeout_s, memory_limit=memory_limit,
            version=None if as_of is None else self._version_as_of(as_of),
        )

    def _version_as_of(self, as_of: Any) -> int:
        table = TableStore(self.lake, self.storage_hash).table_as_of(as_of)
        if table is None:
            raise VersionUnavailableError(f"{self.identifier or self.storage_hash} did not exist at {as_of}")
        return table.version()

    def scan(self, *args: Any, **kwargs: Any) -> Any:
        """This table's rows as a polars LazyFrame: the arguments of ``DataNode.scan`` (dates,
        ``unique_identifier_list``, ``dimension_filters``, ``columns``, ``as_of``).

        Example (``example``: a temporary lake with one table, see conftest.py):
            >>> example.table.scan(as_of=0).collect().height
            8
        """
        return APIDataNode(self.storage_hash, lake=self.lake).scan(*args, **kwargs)

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """One entry per table version, newest first (at most ``limit``, an int): ``version``, ``timestamp``,
        ``operation``, the writer's ``update_hash`` and ``run_id``, ``rows_added`` / ``rows_deleted``
        (see lakenodes.lake.versions.table_history); read any version with ``as_of=``.

        Example (``example``: a temporary lake with one table, see conftest.py):
            >>> [(entry["version"], entry["operation"]) for entry in example.table.history()][-2:]
            [(1, 'delete'), (0, 'append')]
        """
        if limit is not None and (type(limit).__name__ in ("bool", "bool_") or not hasattr(limit, "__index__")
                                  or limit < 0):  # "5" and -1 were raw TypeError / OverflowError, 1.5 read as 1
            raise LakenodesUserError(f"limit must be a whole number >= 0 or None, got {type(limit).__name__} {limit!r}")
        table = TableStore(self.lake, self.storage_hash).table()
        return [] if table is None else table_history(table, None if limit is None else int(limit), self.lake)

    def diff(self, from_version: Any, to_version: Any = None) -> TableDiff:
        """Rows added, deleted and changed (keyed by the index) between two versions or moments
        (``to_version`` None: the latest); see lakenodes.lake.diff.TableDiff.

        Example (``example``: a temporary lake with one table, see conftest.py):
            >>> example.table.diff(0, 1).summary()
            {'from_version': 0, 'to_version': 1, 'added': 0, 'deleted': 1, 'changed': 0}
        """
        return diff_versions(TableStore(self.lake, self.storage_hash), from_version, to_version)

    def restore(self, to_version: Any = None, *, to_timestamp: Any = None, dry_run: bool = False) -> dict[str, Any]:
        """Put the table back as it was at ``to_version`` (or the version current at ``to_timestamp``),
        in one new version: undo a wrong delete or a bad week of appends. Returns ``{ok, meta_table_uid,
        dry_run, from_version, to_version, new_version, files_added, files_removed, rows_added,
        rows_removed}`` (see lakenodes.lake.restore); the next run appends after the restored rows.

        Example (``example``: a temporary lake with one table, see conftest.py):
            >>> example.table.restore(0, dry_run=True)["to_version"]
            0
        """
        done = restore_table(TableStore(self.lake, self.storage_hash), to_version, to_timestamp=to_timestamp,
                             dry_run=dry_run)
        return {"ok": True, "meta_table_uid": self.uid, **{k: v for k, v in done.items() if k != "table"}}

    def drop(self, *, force: bool = False, dry_run: bool = False) -> dict[str, Any]:
        """Remove this table from the lake: its data and log files, its catalog record, updaters and
        runs, its identifier claims, in every namespace (another table may take the name), and its
        search entry, in the order ``lakenodes.catalog.drop`` gives (a drop stopped anywhere is
        finished by the next). Returns ``{ok, meta_table_uid, storage_hash, identifier, namespace,
        table_uri, table_id, dry_run, rows, files, bytes, update_processes, runs, identifier_freed,
        identifiers_freed, catalog_records}``; with ``dry_run``, what it would remove. Its node's
        next run creates the table afresh, as a first run. A table another recorded table's
        configuration names (a dependency), or one whose earlier drop stopped and that rows were
        written to since, is refused unless ``force``.

        Example (``example``: a temporary lake with one table, see conftest.py):
            >>> example.table.drop(dry_run=True)["update_processes"] == [example.node.update_hash]
            True
        """
        refuse_catalog_table(self.storage_hash, verb="dropped")
        done = drop_table(self.lake, self, force=force, dry_run=dry_run)
        if not dry_run:
            try:  # derived data: the next search would drop it too (the record is marked deleted)
                if search.search_index(self.lake).exists():
                    search.catch_up(self.lake)
            except Exception as error:  # noqa: BLE001 - the table is dropped; the index catches up on its next search
                logger.warning("search index not updated after dropping %s (%s): the next search drops it",
                               self.storage_hash, error)
        return done

    def delete_after_date(
        self,
        after_date: Any,
        *,
        dimension_filters: Mapping[str, Sequence[str] | str] | None = None,
        index_coordinates: Sequence[Mapping[str, str]] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Delete rows with ``time_index >= after_date`` (inclusive), optionally only for some
        identities; returns ``{ok, meta_table_uid, dry_run, deleted_count, table_empty,
        dimension_filters, index_coordinates, stats}``. With ``dry_run`` nothing is deleted:
        ``deleted_count`` is how many rows would be.

        ``after_date``: a ``datetime`` (naive: UTC), a ``date`` (its midnight UTC), a pandas
        ``Timestamp``, a numpy ``datetime64`` or ISO-8601 text; ``dimension_filters``:
        ``{dimension: [values]}`` (a single string value is one value); ``index_coordinates``: a
        non-empty list of ``{dimension: value}``; identity values are strings.

        Example (``example``: a temporary lake with one table, see conftest.py):
            >>> example.table.delete_after_date("2026-04-01", dry_run=True)["deleted_count"]
            4
            >>> example.table.delete_after_date("2026-04-02", dimension_filters={"unique_identifier": ["AAPL"]})["ok"]
            True
        """
        dry_run = flag_argument(dry_run, "dry_run")  # "no" is truthy: it deleted nothing, saying dry_run: 'no'
        cutoff = parse_datetime(after_date, "after_date", round_up=True)  # rows at or after it
        if cutoff is None:
            raise LakenodesUserError("after_date is required (an ISO-8601 date or datetime)")
        filters = identity_filters(dimension_filters, single_values=True)
        index_coordinates = _coordinates_argument(index_coordinates)
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
            cutoff, dimension_filters=filters, coordinates=index_coordinates, dry_run=dry_run
        )
        stats = self.stats()
        if not dry_run:
            logger.info("deleted %d rows at or after %s from %s", deleted, cutoff, self.storage_hash)
        return {
            "ok": True,
            "meta_table_uid": self.uid,
            "dry_run": dry_run,
            "deleted_count": deleted,
            "table_empty": stats["row_count"] == 0,
            "dimension_filters": filters or None,
            "index_coordinates": [dict(coordinate) for coordinate in index_coordinates] if index_coordinates else None,
            "stats": {key: stats[key] for key in
                      ("last_time_index_value", "earliest_index_value", "multi_index_stats", "multi_index_column_stats")},
        }


def _coordinates_argument(coordinates: Any) -> list[Mapping[str, str]] | None:
    """``index_coordinates`` of a tail delete as a list (a generator is read once), refused when
    it holds no coordinate (``[]`` would have deleted every identity's rows: None says "all") or
    a coordinate is not a mapping of dimensions to values.

    Example:
        >>> _coordinates_argument(iter([{"unique_identifier": "AAPL"}]))
        [{'unique_identifier': 'AAPL'}]
    """
    if coordinates is None:
        return None
    if isinstance(coordinates, (str, bytes, Mapping)):
        raise LakenodesUserError(f"index_coordinates must be a list of coordinates, got {coordinates!r}; wrap a "
                                 "single one as [{'unique_identifier': ...}]")
    coordinates = list(coordinates)
    if not coordinates:
        raise LakenodesUserError("index_coordinates is empty: give the coordinates to delete, or None to delete "
                                 "the rows of every identity")
    for coordinate in coordinates:
        if not isinstance(coordinate, Mapping):
            raise LakenodesUserError(f"each index coordinate maps dimensions to values, e.g. "
                                     f"{{'unique_identifier': 'AAPL'}}, got {coordinate!r}")
        for dim, value in coordinate.items():
            identity_value(value, f"index coordinate {dim!r}")
    return coordinates
