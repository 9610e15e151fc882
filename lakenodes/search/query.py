"""Search the catalog of a lake: catch the index up, rank, and answer with the catalog records.

Answers are ``{count, next, previous, results}``: table metadata (not rows), each result with its
``score``, ``trigram_score``, ``embedding_score`` and ``matched_columns``.

Example:
    >>> import tempfile
    >>> from lakenodes import Lake
    >>> from lakenodes.catalog.catalog import save_table_record
    >>> from lakenodes.catalog.records import TableRecord
    >>> lake = Lake(tempfile.mkdtemp())
    >>> for uid, name, text in [("u1", "equity_close", "Daily closing prices of equities"),
    ...                         ("u2", "fx_spot", "Foreign exchange spot rates")]:
    ...     save_table_record(lake, TableRecord(uid=uid, storage_hash=name, identifier=name,
    ...                                                description=text, table_uri=lake.table_uri(name)))
    >>> [r["identifier"] for r in description_search(lake, "fx rates")["results"]][0]
    'fx_spot'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from .._internal.deferred import pa, pc
from ..catalog.catalog import all_tables, find_tables
from ..catalog.records import TableRecord
from ..core.lookups import split_lookup
from ..errors import LakenodesError, LakenodesUserError
from ..lake.location import Lake
from .embedders import QueryVector
from .errors import check_count, storage_refusal, summarize_error
from .filters import FILTER_KEYS
from .index import SearchIndex
from .ranking import SearchPage
from .sync import rebuild_index, searchable_index

log = logging.getLogger(__name__)

__all__ = ["column_search", "description_search", "search_tables"]


_DESCRIPTION_ONLY = frozenset({"trigram_k", "embed_k", "w_trgm", "w_emb"})


def description_search(
    lake: Lake,
    q: str,
    *,
    trigram_k: int = 200,
    embed_k: int = 200,
    w_trgm: float = 0.65,
    w_emb: float = 0.35,
    embedding_model: Any = None,
    q_embedding: Sequence[float] | None = None,
    limit: int = 20,
    offset: int = 0,
    filters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Tables of ``lake`` ranked by trigram and embedding similarity of their metadata to ``q``.

    See :meth:`SearchIndex.description_search <lakenodes.search.index.SearchIndex.description_search>`
    for the ranking and the module example; ``next``/``previous`` are the offsets of the
    neighbouring pages (None at the ends). ``q_embedding`` is the query's vector computed by the
    caller with the index's embedder (it is not embedded again); ``filters`` are any catalog
    lookups (see :func:`_search`).
    """
    def rank(index: SearchIndex, where: dict[str, Any]) -> SearchPage:
        model = embedding_model if q_embedding is None else QueryVector(index.embedder, q_embedding)
        return index.description_search(
            q, trigram_k=trigram_k, embed_k=embed_k, w_trgm=w_trgm, w_emb=w_emb,
            embedding_model=model, filters=where, limit=limit, offset=offset,
        )

    return _search(lake, q, rank, limit=limit, offset=offset, filters=filters,
                   embedding_model=embedding_model)


def column_search(
    lake: Lake,
    q: str,
    *,
    embedding_model: Any = None,
    q_embedding: Sequence[float] | None = None,
    limit: int = 20,
    offset: int = 0,
    filters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Tables of ``lake`` ranked by their best matching column name or column metadata.

    The index's embedder is used (``embedding_model``, when given, must be that one);
    ``q_embedding`` is the query's vector computed by the caller with it.

    >>> import tempfile
    >>> column_search(Lake(tempfile.mkdtemp()), "close")["count"]
    0
    """
    def rank(index: SearchIndex, where: dict[str, Any]) -> SearchPage:
        model = embedding_model if q_embedding is None else QueryVector(index.embedder, q_embedding)
        return index.column_search(q, embedding_model=model, filters=where, limit=limit, offset=offset)

    return _search(lake, q, rank, limit=limit, offset=offset, filters=filters, embedding_model=embedding_model)


def search_tables(lake: Lake, q: str, *, mode: str = "description", **options: Any) -> dict[str, Any]:
    """:func:`description_search` (``mode="description"``) or :func:`column_search` (``"column"``).

    ``options`` are the keyword arguments of that function; the description-only ones
    (``trigram_k``, ``embed_k``, ``w_trgm``, ``w_emb``) are ignored by column search.
    """
    if mode == "description":
        return description_search(lake, q, **options)
    if mode == "column":
        return column_search(lake, q, **{k: v for k, v in options.items() if k not in _DESCRIPTION_ONLY})
    _check_query(q)
    raise LakenodesUserError(f"mode must be 'description' or 'column', got {mode!r}")


def _check_query(q: Any) -> None:
    if not isinstance(q, str):  # 5 or ["close", "price"] was "the search query is empty"
        raise LakenodesUserError(f"the search query must be a string, got {type(q).__name__} {q!r}"
                                 + (": join the words, ' '.join(words)" if isinstance(q, (list, tuple)) else ""))
    if not q.strip():
        raise LakenodesUserError("the search query is empty")


def _search(
    lake: Lake,
    q: str,
    rank: Callable[[SearchIndex, dict[str, Any]], SearchPage],
    *,
    limit: int,
    offset: int,
    filters: dict[str, Any] | None,
    embedding_model: Any = None,
) -> dict[str, Any]:
    """Check the arguments, catch the index up with the catalog, ``rank`` and answer with the records.

    ``filters`` are catalog lookups on the table records (``namespace``, ``labels__contains``,
    ``identifier__contains``, ``data_frequency_id``, ``source_class``, ``storage_hash__in``...): the
    index applies :data:`~.filters.FILTER_KEYS` itself; other lookups select their tables in the
    catalog first. Results carry the records, their scores, and the seeds' names ``cadence``
    (the frequency) and ``physical_table_name`` (the storage hash).
    """
    _check_query(q)
    limit, offset = check_count("limit", limit), check_count("offset", offset)  # "5" raised TypeError ('<')
    if limit < 1:
        raise LakenodesUserError(f"limit must be >= 1, got {limit}")
    where = {key: value for key, value in (filters or {}).items() if key in FILTER_KEYS}
    lookups = {key: value for key, value in (filters or {}).items() if key not in FILTER_KEYS}
    unknown = [key for key in lookups if split_lookup(key)[0] not in TableRecord.model_fields]
    if unknown:
        # the seeds scope searches to a data source (data_source__id=2): here a lake is one data source
        hint = "; a lake is one data source: search another one with lake=" if any(
            key.startswith("data_source") for key in unknown) else ""
        raise LakenodesUserError(
            f"unknown search filter(s) {unknown}: filters are lookups on the catalog fields "
            f"{', '.join(sorted(TableRecord.model_fields))} (e.g. identifier__contains){hint}")
    if lookups:
        where["uid__in"] = [record.uid for record in find_tables(lake, lookups)]
    page = _rank_repairing(lake, rank, where, embedding_model)
    hit_uids = pa.array([hit.uid for hit in page.results], type=pa.string())
    records = {record.uid: record for record in all_tables(lake, rows=pc.field("uid").isin(hit_uids))}
    results = []
    for hit in page.results:
        record = records.get(hit.uid)
        if record is None:  # indexed but no longer in the catalog: the index is stale
            log.debug("search hit %s is no longer in the catalog", hit.uid)
            continue
        results.append({
            "orm_class": "TimeIndexMetaTable",
            **record.model_dump(mode="json", exclude={"build_configuration"}),
            "cadence": record.data_frequency_id,
            "physical_table_name": record.storage_hash,
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


def _rank_repairing(
    lake: Lake, rank: Callable[[SearchIndex, dict[str, Any]], SearchPage], where: dict[str, Any], embedding_model: Any,
) -> SearchPage:
    """``rank`` on the caught-up index; an index LanceDB cannot search (a file of its full-text index
    lost, a folder where a table should be) is rebuilt from the catalog once and searched again.
    lakenodes' own errors (a user mistake, the catalog's storage errors) and refused writes propagate."""
    index = None
    try:
        index = searchable_index(lake, embedding_model)
        return rank(index, where)
    except LakenodesError:
        raise
    except Exception as error:
        uri = index.uri if index is not None else lake.catalog_uri("search")
        if uri.startswith("memory://") or storage_refusal(error, uri, "search") is not None:
            raise
        log.warning("search index %s cannot be searched (%s): rebuilding it from the catalog", uri,
                    summarize_error(error))
    rebuild_index(lake, embedding_model)
    return rank(searchable_index(lake, embedding_model), where)
