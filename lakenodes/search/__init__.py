"""Semantic search over the catalog of DataNode storages, backed by LanceDB.

Layers (imports go down only): :mod:`~.analysis` (text to index terms), :mod:`~.embedders`
(texts to vectors), :mod:`~.documents` (catalog records to index documents and rows),
:mod:`~.filters`, :mod:`~.schema`, :mod:`~.ranking` (the trigram + embedding blend) ->
:mod:`~.index` (the LanceDB index; the only module importing ``lancedb``) -> :mod:`~.sync`
(catch-up of the index with the catalog) -> :mod:`~.query` (searching a lake's catalog).

Ranking (``description_search``) blends two signals::

    score = w_trgm * trigram_score + w_emb * embedding_score

``trigram_score`` is the BM25 score of the 3-gram full-text match divided by the best BM25 score
among the ``trigram_k`` full-text candidates; ``embedding_score`` is the cosine similarity to the
query divided by the best similarity among the ``embed_k`` nearest neighbours.

The package keeps no process-wide state: connections and embedder caches live on the
:class:`SearchIndex` and embedder objects.

Example:
    >>> import tempfile
    >>> index = SearchIndex(tempfile.mkdtemp())
    >>> index.upsert_tables([{"uid": "u1", "identifier": "fx_spot", "description": "FX spot rates"}])
    >>> index.description_search("foreign exchange").results[0].uid
    'u1'
"""

from __future__ import annotations

from .analysis import analyze, frequency_words
from .documents import ColumnDocument, TableDocument, column_text, document_text, table_document
from .embedders import Embedder, HashingEmbedder, SentenceTransformerEmbedder, get_embedder
from .errors import EmbedderMismatchError, SearchArgumentError
from .filters import FILTER_KEYS, filters_to_sql
from .index import SearchIndex
from .options import lance_storage_options
from .query import column_search, description_search, search_tables
from .ranking import SearchHit, SearchPage
from .sync import catch_up, rebuild_index, search_index

__all__ = [
    "FILTER_KEYS",
    "ColumnDocument",
    "Embedder",
    "EmbedderMismatchError",
    "HashingEmbedder",
    "SearchArgumentError",
    "SearchHit",
    "SearchIndex",
    "SearchPage",
    "SentenceTransformerEmbedder",
    "TableDocument",
    "analyze",
    "catch_up",
    "column_search",
    "column_text",
    "description_search",
    "document_text",
    "filters_to_sql",
    "frequency_words",
    "get_embedder",
    "lance_storage_options",
    "rebuild_index",
    "search_index",
    "search_tables",
    "table_document",
]

