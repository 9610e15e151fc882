"""The searches of a :class:`~lakenodes.search.index.SearchIndex`: checked arguments, the index's
table opened, and the ranking of :mod:`lakenodes.search.ranking` over it. An empty or missing index
finds nothing.

Example:
    >>> import tempfile
    >>> from lakenodes.search.index import SearchIndex
    >>> SearchIndex(tempfile.mkdtemp()).description_search("close prices")
    SearchPage(count=0, results=[])
"""

from __future__ import annotations

from typing import Any

from .embedders import Embedder
from .filters import filters_to_sql
from .ranking import SearchPage, check_blend, check_query, query_embedder, rank_columns, rank_tables
from .schema import COLUMNS, TABLES, embedder_of


class IndexReads:
    """Description and column search over the index's tables (``SearchIndex`` opens them)."""

    uri: str

    @property
    def embedder(self) -> Embedder:  # SearchIndex's
        raise NotImplementedError

    def _open(self, name: str) -> Any:  # SearchIndex's: a LanceDB table, or None
        raise NotImplementedError

    def description_search(
        self,
        q: str,
        *,
        trigram_k: int = 200,
        embed_k: int = 200,
        w_trgm: float = 0.65,
        w_emb: float = 0.35,
        embedding_model: str | Embedder | None = None,
        filters: dict[str, Any] | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> SearchPage:
        """Rank tables by ``w_trgm * trigram_score + w_emb * embedding_score`` passing ``filters``.

        See :func:`~lakenodes.search.ranking.rank_tables` for the candidates, the scores and
        ``matched_columns``. Counts must be integers >= 0 and weights finite numbers >= 0, not both 0
        (:class:`~lakenodes.search.errors.SearchArgumentError` otherwise); ``embedding_model``, when
        given, must be the index's embedder (EmbedderMismatchError otherwise). An empty or missing
        index returns ``SearchPage(0, [])``.
        """
        where = filters_to_sql(filters)
        check_query(q, limit, offset)
        trigram_k, embed_k, w_trgm, w_emb = check_blend(trigram_k, embed_k, w_trgm, w_emb)
        table = self._open(TABLES)
        if table is None or not q.strip():
            return SearchPage(0, [])
        embedder = None
        if w_emb > 0 and embed_k > 0:
            embedder = query_embedder(embedder_of(table.schema), self.embedder, embedding_model, self.uri)
        return rank_tables(
            table, q, embedder, trigram_k=trigram_k, embed_k=embed_k, w_trgm=w_trgm, w_emb=w_emb,
            where=where, limit=limit, offset=offset,
        )

    def column_search(
        self, q: str, *, embedding_model: str | Embedder | None = None, filters: dict[str, Any] | None = None,
        limit: int = 20, offset: int = 0,
    ) -> SearchPage:
        """Rank tables by their best matching column (see :func:`~.ranking.rank_columns`);
        ``embedding_model``, when given, must be the index's embedder (EmbedderMismatchError otherwise).

        >>> import tempfile
        >>> from lakenodes.search.index import SearchIndex
        >>> index = SearchIndex(tempfile.mkdtemp())
        >>> column = {"column_name": "implied_vol", "dtype": "Float64"}
        >>> index.upsert_tables([{"uid": "u1", "columns": [column]}])
        >>> index.column_search("implied volatility").results[0].matched_columns
        ['implied_vol']
        """
        where = filters_to_sql(filters)
        check_query(q, limit, offset)
        table = self._open(COLUMNS)
        if table is None or not q.strip():
            return SearchPage(0, [])
        embedder = query_embedder(embedder_of(table.schema), self.embedder, embedding_model, self.uri)
        return rank_columns(table, q, embedder, where=where, limit=limit, offset=offset)
