"""Semantic search over the catalog of DataNode storages, backed by LanceDB.

Layers (imports go down only): :mod:`~.analysis` (text to index terms), :mod:`~.embedders`
(texts to vectors), :mod:`~.documents` (catalog records to index documents and rows),
:mod:`~.filters`, :mod:`~.schema`, :mod:`~.ranking` (the trigram + embedding blend) ->
:mod:`~.index` (the LanceDB index; the only module importing ``lancedb``) -> :mod:`~.sync`
(catch-up of the index with the catalog) -> :mod:`~.query` (searching a lake's catalog).

Ranking (``description_search``) blends two signals::

    score = w_trgm * trigram_score + w_emb * embedding_score

``trigram_score`` is the BM25 score of the 3-gram full-text match divided by the best BM25 score
among the ``trigram_k`` full-text candidates, weighted by how much of the query the row holds (see
:mod:`~.ranking`); ``embedding_score`` is the cosine similarity to the query divided by the best
similarity among the ``embed_k`` nearest neighbours. The default embedder is all-MiniLM-L6-v2
(int8 ONNX, shipped with the package: :class:`MiniLMEmbedder`).

The one process-wide state is the embedder of each spec string (:func:`get_embedder`), so a model
is loaded once per process; connections live on the :class:`SearchIndex` objects.

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
from .embedders import Embedder, HashingEmbedder, SentenceTransformerEmbedder, embedder_for, get_embedder
from .errors import EmbedderMismatchError, SearchArgumentError, SearchIndexNotStoredWarning
from .filters import FILTER_KEYS, filters_to_sql
from .index import SearchIndex
from .minilm import MiniLMEmbedder
from .options import lance_storage_options
from .query import column_search, description_search, search_tables
from .ranking import SearchHit, SearchPage
from .sync import catch_up, rebuild_index, refresh_tables, search_index, searchable_index

__all__ = [
    "FILTER_KEYS",
    "ColumnDocument",
    "Embedder",
    "EmbedderMismatchError",
    "HashingEmbedder",
    "MiniLMEmbedder",
    "SearchArgumentError",
    "SearchIndexNotStoredWarning",
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
    "embedder_for",
    "filters_to_sql",
    "frequency_words",
    "get_embedder",
    "lance_storage_options",
    "rebuild_index",
    "refresh_tables",
    "search_index",
    "search_tables",
    "searchable_index",
    "table_document",
]

