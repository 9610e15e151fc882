"""The Arrow layout of the two index tables and the conversion of index rows to it.

``tables`` holds one row per catalog table, ``columns`` one row per column of every table; both
carry the filter fields, the analysed ``text`` (full-text indexed) and the embedding ``vector``.
The schema metadata records the index format and the embedder, so vectors of different embedders
are never mixed.

Example:
    >>> from lakenodes.search.embedders import HashingEmbedder
    >>> index_schema(TABLES, HashingEmbedder(dim=16)).field("vector").type
    FixedSizeListType(fixed_size_list<item: float>[16])
"""

from __future__ import annotations

from typing import Any

from .._internal.deferred import np, pa
from .documents import EMBED_TEXT
from .embedders import Embedder

__all__ = ["COLUMNS", "TABLES", "embedder_of", "index_schema", "to_arrow"]

TABLES = "tables"
COLUMNS = "columns"
_FORMAT = "2"
_META_FORMAT = b"lakenodes.search.format"
_META_EMBEDDER = b"lakenodes.search.embedder"


def _filter_fields() -> list[pa.Field]:
    return [
        pa.field("uid", pa.string(), nullable=False),
        pa.field("identifier", pa.string()),
        pa.field("namespace", pa.string()),
        pa.field("labels", pa.list_(pa.string())),
        pa.field("data_frequency_id", pa.string()),
    ]


def index_schema(name: str, embedder: Embedder) -> pa.Schema:
    """The schema of the index table ``name`` (:data:`TABLES` or :data:`COLUMNS`) for ``embedder``."""
    fields = _filter_fields()
    if name == TABLES:
        fields += [
            pa.field("storage_hash", pa.string()),
            pa.field("description", pa.string()),
            pa.field("source_class", pa.string()),
            pa.field("column_names", pa.list_(pa.string())),
            pa.field("column_labels", pa.list_(pa.string())),
            pa.field("digest", pa.string()),
        ]
    else:
        fields = (
            [pa.field("key", pa.string(), nullable=False)]
            + fields
            + [
                pa.field("column_name", pa.string()),
                pa.field("label", pa.string()),
                pa.field("description", pa.string()),
                pa.field("dtype", pa.string()),
            ]
        )
    fields += [
        pa.field("text", pa.string()),
        pa.field("vector", pa.list_(pa.float32(), embedder.dim)),
    ]
    return pa.schema(fields, metadata={_META_FORMAT: _FORMAT, _META_EMBEDDER: embedder.name})


def embedder_of(schema: pa.Schema) -> str | None:
    """The embedder name an index table was built with; None for another format (it needs a rebuild).

    >>> from lakenodes.search.embedders import HashingEmbedder
    >>> embedder_of(index_schema(COLUMNS, HashingEmbedder())), embedder_of(pa.schema([]))
    ('hashing-v1-384', None)
    """
    meta = schema.metadata or {}
    if meta.get(_META_FORMAT, b"").decode() != _FORMAT:
        return None
    return meta.get(_META_EMBEDDER, b"").decode() or None


def to_arrow(name: str, rows: list[dict[str, Any]], embedder: Embedder) -> pa.Table:
    """Index rows (see :func:`~lakenodes.search.documents.index_rows`) as an Arrow table of ``name``,
    their readable text embedded into ``vector``.

    >>> from lakenodes.search.documents import index_rows
    >>> from lakenodes.search.embedders import HashingEmbedder
    >>> tables, _ = index_rows([{"uid": "u1", "description": "daily close prices"}])
    >>> to_arrow(TABLES, tables, HashingEmbedder(dim=16)).num_rows
    1
    """
    schema = index_schema(name, embedder)
    texts = [r.pop(EMBED_TEXT) for r in rows]
    vectors = embedder.embed(texts) if rows else np.zeros((0, embedder.dim))
    data = {f.name: [r.get(f.name) for r in rows] for f in schema if f.name != "vector"}
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    data["vector"] = pa.FixedSizeListArray.from_arrays(flat, embedder.dim)
    return pa.table(data, schema=schema)
