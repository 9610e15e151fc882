"""The LanceDB search index: connection, tables, FTS and vector indexes, writes and repair.

This is the only lakenodes module that imports ``lancedb`` (on first use: it takes seconds). The
index is a directory (a local path or ``s3://bucket/prefix``) holding the two Lance tables of
:mod:`lakenodes.search.schema`; the ``text`` column has a LanceDB native full-text index using the
**n-gram tokenizer** (3-grams) over text analysed in Python (:mod:`lakenodes.search.analysis`).
An index that cannot be opened is derived data: it is deleted and recreated.

Example:
    >>> import tempfile
    >>> index = SearchIndex(tempfile.mkdtemp())
    >>> index.upsert_tables([{"uid": "u1", "identifier": "equity_close", "description": "Daily close prices"},
    ...                      {"uid": "u2", "identifier": "fx_spot", "description": "Foreign exchange rates"}])
    >>> index.description_search("dialy close prise", limit=1).results[0].uid
    'u1'
    >>> index.delete_tables(["u1"]); index.count()
    1
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .._internal.deferred import pa
from ..errors import LakenodesUserError
from ._index_reads import IndexReads
from .documents import TableDocument, dedupe, index_rows
from .embedders import Embedder, embedder_for, get_embedder
from .errors import EmbedderMismatchError, storage_refusal, summarize_error
from .filters import sql_str
from .options import lance_storage_options, native_log_level
from .schema import COLUMNS, TABLES, embedder_of, index_schema, to_arrow

if TYPE_CHECKING:
    from lancedb.db import DBConnection
    from lancedb.table import Table

log = logging.getLogger(__name__)

__all__ = ["SearchIndex"]

# optimize() (compact + fold new rows into the FTS/vector indexes) beyond this many fragments or rows
# not yet covered by the FTS index (those are searched by a slower flat scan meanwhile).
_MAX_FRAGMENTS = 8
_MAX_UNINDEXED = 1000
_FTS_INDEX = "text_idx"
# Lance's brute-force kNN re-reads the vector column on every query (~40 ms at 10k x 1024-d); an IVF_FLAT
# index keeps vectors in its cache. Ranking probes every partition, so the index never approximates.
_VECTOR_INDEX_MIN_ROWS = 4096
_DELETE_CHUNK = 500


def _fts_config() -> Any:
    """Documents and queries are analysed in Python; the FTS index only splits words into 3-grams."""
    from lancedb.index import FTS  # lancedb is imported on first use only (slow import)

    return FTS(
        base_tokenizer="ngram",
        ngram_min_length=3,
        ngram_max_length=3,
        lower_case=True,
        ascii_folding=True,
        stem=False,
        remove_stop_words=False,
        with_position=False,
    )


def _ensure_indexes(table: Table) -> None:
    """FTS index always (also repairs a crash between table and index creation); vector index when large."""
    indexed = {tuple(ix.columns) for ix in table.list_indices()}
    if ("text",) not in indexed:
        table.create_index("text", config=_fts_config(), replace=True, name=_FTS_INDEX)
    rows = table.count_rows()
    if rows < _VECTOR_INDEX_MIN_ROWS or ("vector",) in indexed:
        return
    partitions = max(8, int(math.sqrt(rows) / 3))
    log.info("creating IVF_FLAT vector index on %s (%d rows, %d partitions)", table.name, rows, partitions)
    table.create_index(
        metric="cosine", vector_column_name="vector", index_type="IVF_FLAT", num_partitions=partitions,
        replace=True,
    )


def _fragments(table: Table) -> int:
    """How many fragments ``table`` has. lancedb 0.40 declares ``stats()`` a ``TableStatistics``
    dataclass but returns the dict of its older releases: either is read."""
    stats = table.stats()
    if isinstance(stats, dict):
        return int(stats["fragment_stats"]["num_fragments"])
    return stats.fragment_stats.num_fragments


def _maintain(table: Table) -> None:
    """Compact a table once small writes left too many fragments or too many rows outside the FTS index."""
    fragments = _fragments(table)
    fts = table.index_stats(_FTS_INDEX)
    unindexed = fts.num_unindexed_rows if fts is not None else 0
    if fragments > _MAX_FRAGMENTS or unindexed > _MAX_UNINDEXED:
        log.debug("optimizing search table %s (%d fragments, %d unindexed rows)", table.name, fragments, unindexed)
        table.optimize()
    _ensure_indexes(table)


class SearchIndex(IndexReads):
    """Full-text (3-gram BM25) + embedding search over catalog table documents.

    ``uri`` is a directory: a local absolute path or ``s3://bucket/prefix/_catalog/search``.
    ``storage_options`` may use delta-rs keys (``AWS_ENDPOINT_URL``...) or LanceDB keys. Nothing is
    opened until the first call. ``refresh_interval`` bounds how stale reads may be (seconds) with
    respect to writes made through *other* ``SearchIndex`` objects or processes; writes through this
    object are always visible. Default: 0 for local paths, 2 s for object stores (each freshness
    check there is a LIST request, several per query). See the module example; the searches are
    :class:`~lakenodes.search._index_reads.IndexReads`'.
    """

    def __init__(
        self,
        uri: str,
        storage_options: dict[str, str] | None = None,
        embedder: Embedder | str | None = None,
        *,
        refresh_interval: float | None = None,
    ) -> None:
        self.uri = uri.rstrip("/") or uri
        self.storage_options = lance_storage_options(storage_options)
        self._requested = None if embedder is None else get_embedder(embedder)
        self._embedder: Embedder | None = self._requested
        if refresh_interval is None:
            refresh_interval = 2.0 if "://" in self.uri and not self.uri.startswith("file://") else 0.0
        self.refresh_interval = refresh_interval
        self._db: DBConnection | None = None
        self._tables: dict[str, Table] = {}

    def __repr__(self) -> str:
        return f"SearchIndex({self.uri!r}, embedder={self.embedder.name!r})"

    @property
    def embedder(self) -> Embedder:
        """The embedder given to the constructor; without one, the embedder the index was built with
        (recorded in the index, loaded once per process), or the default for a new index."""
        if self._embedder is None:
            self._embedder = embedder_for(self.stored_embedder())
        return self._embedder

    def stored_embedder(self) -> str | None:
        """The name of the embedder the index was built with (None: no readable index of this format)."""
        table = self._readable(TABLES)
        return None if table is None else embedder_of(table.schema)

    # ---------------------------------------------------------------- connection & repair
    def _connect(self) -> DBConnection:
        if self._db is None:
            with native_log_level("error"):
                import lancedb  # on first use only (slow import)

                self._db = lancedb.connect(
                    self.uri,
                    storage_options=self.storage_options or None,
                    read_consistency_interval=timedelta(seconds=self.refresh_interval),
                )
        return self._db

    def _open(self, name: str) -> Table | None:
        """The Lance table ``name``, None if it does not exist; an unreadable table raises (Lance's
        ``RuntimeError``)."""
        table = self._tables.get(name)
        if table is None:
            try:
                table = self._connect().open_table(name)
            except FileNotFoundError:
                return None
            except ValueError as error:  # lancedb: "Table 'tables' was not found"
                if "not found" not in str(error):
                    raise
                return None
            self._tables[name] = table
        return table

    def _readable(self, name: str) -> Table | None:
        try:
            return self._open(name)
        except Exception:  # noqa: BLE001 - unreadable: the caller treats it as missing (it is rebuilt)
            return None

    def _forget(self) -> None:
        """Drop the cached connection and table handles (the next call reopens from storage)."""
        self._tables.clear()
        self._db = None

    def _unreadable(self) -> Exception | None:
        """Why this index cannot be opened and read, or None when it can (or does not exist).

        Reopens from storage with a fresh connection: both tables' manifests are read and counted.
        """
        self._forget()
        try:
            for name in (TABLES, COLUMNS):
                table = self._open(name)
                if table is not None:
                    table.count_rows()
        except Exception as error:  # noqa: BLE001 - any failure to open means the index is unusable
            return error
        return None

    def _recovering(self, action: Callable[[], None]) -> None:
        """Run a write ``action``; if it fails because the index cannot be opened (e.g. corrupt
        manifests), delete the whole index (derived data, rebuilt from the catalog) and run ``action``
        once more on a fresh one. Failures on a readable index, refusals and user errors propagate."""
        try:
            action()
            return
        except LakenodesUserError:
            raise
        except Exception as error:  # refused (a read-only lake): no damaged index to delete, raised as is
            reason = None if storage_refusal(error, self.uri, "search index write") else self._unreadable()
            if reason is None:
                raise
        log.warning("search index %s is unreadable (%s): deleting it to recreate it",
                    self.uri, summarize_error(reason))
        self._forget()
        self._connect().drop_all_tables()
        self._forget()
        action()

    def exists(self) -> bool:
        """Whether anything is stored at ``uri`` as an index table (readable or not)."""
        try:
            return any(self._open(name) is not None for name in (TABLES, COLUMNS))
        except Exception:  # noqa: BLE001 - an unreadable table exists
            return True

    # ---------------------------------------------------------------- tables
    def _create(self, name: str, data: pa.Table, mode: str) -> Table:
        table = self._connect().create_table(
            name, data=data, schema=data.schema, mode=mode, exist_ok=mode == "create"
        )
        _ensure_indexes(table)
        self._tables[name] = table
        return table

    def _writable(self, name: str) -> Table:
        table = self._open(name)
        if table is None:
            table = self._create(name, index_schema(name, self.embedder).empty_table(), mode="create")
        stored = embedder_of(table.schema)
        if stored != self.embedder.name:
            raise EmbedderMismatchError(
                f"search index {self.uri}/{name} was built with embedder {stored!r}, not "
                f"{self.embedder.name!r}; call rebuild() with all documents"
            )
        return table

    def _arrow(self, docs: list[TableDocument]) -> tuple[pa.Table, pa.Table]:
        table_rows, column_rows = index_rows(docs)
        return to_arrow(TABLES, table_rows, self.embedder), to_arrow(COLUMNS, column_rows, self.embedder)

    # ---------------------------------------------------------------- writes
    def upsert_tables(self, docs: list[TableDocument]) -> None:
        """Insert or replace the rows of these tables (the table row and all its column rows).

        An unreadable index is deleted and recreated holding only ``docs``; the next catalog
        catch-up (see :meth:`digests`) adds the other tables back.
        """
        docs = dedupe(docs)
        if not docs:
            return
        tables, columns = self._arrow(docs)
        uid_list = ", ".join(sql_str(str(d["uid"]), "uid") for d in docs)

        def upsert() -> None:
            t = self._writable(TABLES)
            c = self._writable(COLUMNS)
            (
                c.merge_insert("key")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .when_not_matched_by_source_delete(f"uid IN ({uid_list})")
                .execute(columns)
            )
            t.merge_insert("uid").when_matched_update_all().when_not_matched_insert_all().execute(tables)
            _maintain(c)
            _maintain(t)

        self._recovering(upsert)
        log.info("search index %s: upserted %d tables, %d columns", self.uri, len(docs), columns.num_rows)

    def delete_tables(self, uids: list[str]) -> None:
        """Remove these tables (and their columns) from the index; unknown uids are ignored."""
        uids = list(dict.fromkeys(str(u) for u in uids))
        if not uids:
            return

        def delete() -> None:
            for name in (COLUMNS, TABLES):
                table = self._open(name)
                if table is None:
                    continue
                for i in range(0, len(uids), _DELETE_CHUNK):
                    chunk = ", ".join(sql_str(u, "uid") for u in uids[i : i + _DELETE_CHUNK])
                    table.delete(f"uid IN ({chunk})")
                _maintain(table)

        self._recovering(delete)  # an unreadable index is deleted: these tables are then gone too
        log.info("search index %s: deleted %d tables", self.uri, len(uids))

    def rebuild(self, docs: list[TableDocument]) -> None:
        """Replace the whole index with ``docs`` (also switches the index to this embedder).

        Readers see the old index until the new version is committed. An index that cannot be
        opened (e.g. corrupt manifests) is deleted and created afresh.
        """
        docs = dedupe(docs)
        tables, columns = self._arrow(docs)

        def replace() -> None:
            self._tables.clear()
            self._create(COLUMNS, columns, mode="overwrite")
            self._create(TABLES, tables, mode="overwrite")

        self._recovering(replace)
        log.info("search index %s: rebuilt with %d tables, %d columns", self.uri, len(docs), columns.num_rows)

    # ---------------------------------------------------------------- state
    def digests(self) -> dict[str, str | None] | None:
        """``{uid: digest}`` of the indexed tables (a caller-supplied document version), or None when the
        index is missing, unreadable, of an older format or another embedder (then it needs a :meth:`rebuild`).
        Both tables are opened (so a corrupt ``columns`` table is noticed too); no ``pylance`` needed."""
        try:
            tables, columns = self._open(TABLES), self._open(COLUMNS)
            if tables is None or columns is None or any(embedder_of(t.schema) != self.embedder.name
                                                        for t in (tables, columns)):
                return None
            rows = tables.search().select(["uid", "digest"]).limit(None).to_arrow()
        except Exception as error:  # noqa: BLE001 - any unreadable index is rebuilt by the caller
            warn = log.debug if storage_refusal(error, self.uri, "open") else log.warning  # refused: not built here
            warn("search index %s is unreadable (%s)", self.uri, summarize_error(error))
            return None
        return dict(zip(rows.column("uid").to_pylist(), rows.column("digest").to_pylist(), strict=True))

    def version(self) -> int | None:
        """The version of the index's ``tables`` table (None if missing or unreadable): any write changes it."""
        table = self._readable(TABLES)
        return None if table is None else table.version

    def count(self) -> int:
        """Number of tables in the index (0 if it does not exist)."""
        table = self._open(TABLES)
        return 0 if table is None else table.count_rows()
