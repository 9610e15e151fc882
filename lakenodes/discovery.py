"""Glue between the catalog and the LanceDB search index under ``<root>/_catalog/search``.

The index is derived data, kept out of the write path: every search first brings it up to date
with the catalog (upserting records whose digest changed, dropping tables no longer there,
rebuilding an index that is missing, unreadable or of an older format). So registering a table
or changing its metadata is visible to the next search, a run never waits on LanceDB, and a
broken index can never break a run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any

from .lake import Lake
from .search import FILTER_KEYS

if TYPE_CHECKING:
    from .catalog import TimeIndexMetaTable
    from .search import SearchIndex

logger = logging.getLogger(__name__)

_DOCUMENT_FIELDS = ("uid", "storage_hash", "identifier", "namespace", "description", "labels",
                    "data_frequency_id", "index_names", "columns", "source_class", "source_doc")


def search_index(lake: Lake, embedding_model: Any = None) -> SearchIndex:
    from .search import SearchIndex

    return SearchIndex(lake.catalog_uri("search"), lake.storage_options or None, embedder=embedding_model)


def table_document(record: TimeIndexMetaTable) -> dict[str, Any]:
    """The search document of one catalog record, with a digest of everything indexed."""
    document = record.model_dump(include=set(_DOCUMENT_FIELDS))
    document["identifier"] = document["identifier"] or ""
    encoded = json.dumps(document, sort_keys=True, default=str).encode("utf-8")
    document["digest"] = hashlib.sha256(encoded).hexdigest()[:32]
    return document


def catch_up(lake: Lake, records: list[TimeIndexMetaTable], embedding_model: Any = None) -> SearchIndex:
    """Bring the index in line with ``records`` (the catalog) and return it."""
    index = search_index(lake, embedding_model)
    documents = {record.uid: table_document(record) for record in records if not record.deleted}
    indexed = index.digests()
    if indexed is None:
        if documents or index.exists():  # an unreadable index exists: rebuild() replaces it
            logger.info("rebuilding the search index from the catalog (%d tables)", len(documents))
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
    from .catalog import all_tables

    records = all_tables(lake)
    search_index(lake, embedding_model).rebuild([table_document(record) for record in records])
    return len(records)


def search_tables(
    lake: Lake,
    q: str,
    *,
    mode: str = "description",
    trigram_k: int = 200,
    embed_k: int = 200,
    w_trgm: float = 0.65,
    w_emb: float = 0.35,
    embedding_model: Any = None,
    limit: int = 20,
    offset: int = 0,
    filters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Search the catalog; returns ``{count, next, previous, results}`` with table metadata (not rows).

    ``next``/``previous`` are the offsets of the neighbouring pages (None at the ends).
    """
    from .catalog import all_tables
    from .errors import LakenodesUserError

    if not isinstance(q, str) or not q.strip():
        raise LakenodesUserError("the search query is empty")
    if mode not in ("description", "column"):
        raise LakenodesUserError(f"mode must be 'description' or 'column', got {mode!r}")
    if limit < 1 or offset < 0:
        raise LakenodesUserError("limit must be >= 1 and offset >= 0")
    unknown = [key for key in filters or {} if key not in FILTER_KEYS]
    if unknown:
        raise LakenodesUserError(f"unknown search filter(s) {unknown}; use {', '.join(FILTER_KEYS)}")
    records = {record.uid: record for record in all_tables(lake)}
    index = catch_up(lake, list(records.values()), embedding_model)
    if mode == "column":
        page = index.column_search(q, filters=filters, limit=limit, offset=offset)
    else:
        page = index.description_search(
            q, trigram_k=trigram_k, embed_k=embed_k, w_trgm=w_trgm, w_emb=w_emb,
            embedding_model=embedding_model, filters=filters, limit=limit, offset=offset,
        )
    results = []
    for hit in page.results:
        record = records.get(hit.uid)
        if record is None:  # indexed but no longer in the catalog: the index is stale
            continue
        results.append({
            "orm_class": "TimeIndexMetaTable",
            **record.model_dump(mode="json", exclude={"build_configuration"}),
            "score": round(hit.score, 6),
            "trigram_score": round(hit.trigram_score, 6),
            "embedding_score": round(hit.embedding_score, 6),
            "matched_columns": hit.matched_columns,
        })
    return {
        "count": page.count,
        "next": offset + limit if offset + limit < page.count else None,
        "previous": max(offset - limit, 0) if offset > 0 else None,
        "results": results,
    }
