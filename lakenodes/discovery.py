"""Glue between the catalog and the LanceDB search index under ``<root>/_catalog/search``.

The index is derived data: it follows every catalog write, can be rebuilt from the catalog at
any time, and a missing or broken index never breaks a run (it only logs a warning).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .lake import Lake

if TYPE_CHECKING:
    from .catalog import TimeIndexMetaTable
    from .search import SearchIndex

logger = logging.getLogger(__name__)

SEARCH_FILTERS = ("namespace", "labels__contains", "identifier__contains", "data_frequency_id")
_DOCUMENT_FIELDS = ("uid", "storage_hash", "identifier", "namespace", "description", "labels",
                    "data_frequency_id", "index_names", "columns", "source_class", "source_doc")


def search_index(lake: Lake, embedding_model: Any = None) -> SearchIndex:
    from .search import SearchIndex

    return SearchIndex(lake.catalog_uri("search"), lake.storage_options or None, embedder=embedding_model)


def table_document(record: TimeIndexMetaTable) -> dict[str, Any]:
    """The search document of one catalog record."""
    document = record.model_dump(include=set(_DOCUMENT_FIELDS))
    document["identifier"] = document["identifier"] or ""
    return document


def sync_tables(lake: Lake, records: list[TimeIndexMetaTable]) -> None:
    """Upsert records into the index; failures are logged, never raised (the index is rebuildable)."""
    try:
        search_index(lake).upsert_tables([table_document(record) for record in records if not record.deleted])
    except Exception as error:  # noqa: BLE001 - a stale index must never break a run
        logger.warning("search index not updated (%s); run `lakenodes search --refresh` to rebuild it", error)


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
    unknown = [key for key in filters or {} if key not in SEARCH_FILTERS]
    if unknown:
        raise LakenodesUserError(f"unknown search filter(s) {unknown}; use {', '.join(SEARCH_FILTERS)}")
    records = {record.uid: record for record in all_tables(lake)}
    index = search_index(lake, embedding_model)
    if records and index.count() == 0:
        logger.info("search index is empty: rebuilding it from the catalog (%d tables)", len(records))
        index.rebuild([table_document(record) for record in records.values()])
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
