"""Keep the search index (under ``<root>/_catalog/search``) in line with the catalog.

The index is derived data, kept out of the write path: every search first brings it up to date
with the catalog by digest (upserting records whose digest changed, dropping tables no longer
there, rebuilding an index that is missing, unreadable or of an older format). So registering a
table or changing its metadata is visible to the next search, a run never waits on LanceDB, and a
broken index can never break a run.

Example:
    >>> import tempfile
    >>> from lakenodes import Lake
    >>> from lakenodes.catalog.catalog import save_table_record
    >>> from lakenodes.catalog.records import TableRecord
    >>> lake = Lake(tempfile.mkdtemp())
    >>> save_table_record(lake, TableRecord(
    ...     uid="u1", storage_hash="prices_01", identifier="daily_prices",
    ...     description="Daily close prices", table_uri=lake.table_uri("prices_01")))
    >>> catch_up(lake, all_tables(lake)).count()
    1
    >>> rebuild_index(lake)
    1
"""

from __future__ import annotations

import logging
from typing import Any

from ..catalog.catalog import all_tables
from ..catalog.records import TableRecord
from ..lake.location import Lake
from .documents import table_document
from .index import SearchIndex

log = logging.getLogger(__name__)

__all__ = ["catch_up", "rebuild_index", "search_index"]


def search_index(lake: Lake, embedding_model: Any = None) -> SearchIndex:
    """The search index of ``lake`` (nothing is opened until it is used).

    >>> search_index(Lake("/tmp/my-lake")).uri
    '/tmp/my-lake/_catalog/search'
    """
    return SearchIndex(lake.catalog_uri("search"), lake.storage_options or None, embedder=embedding_model)


def catch_up(lake: Lake, records: list[TableRecord], embedding_model: Any = None) -> SearchIndex:
    """Bring the index in line with ``records`` (the catalog) and return it."""
    index = search_index(lake, embedding_model)
    documents = {record.uid: table_document(record) for record in records if not record.deleted}
    indexed = index.digests()
    if indexed is None:
        if documents or index.exists():  # an unreadable index exists: rebuild() replaces it
            log.info("rebuilding the search index from the catalog (%d tables)", len(documents))
            index.rebuild(list(documents.values()))
        return index
    changed = [doc for uid, doc in documents.items() if indexed.get(uid) != doc["digest"]]
    removed = [uid for uid in indexed if uid not in documents]
    if changed:
        index.upsert_tables(changed)
    if removed:
        index.delete_tables(removed)
    return index


def rebuild_index(lake: Lake, embedding_model: Any = None) -> int:
    """Rebuild the whole index from the catalog; returns the number of tables indexed."""
    records = all_tables(lake)
    search_index(lake, embedding_model).rebuild([table_document(record) for record in records])
    return len(records)
