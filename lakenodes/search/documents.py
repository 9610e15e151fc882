"""Index documents: what the search index holds for a catalog table and for each of its columns.

A :class:`TableDocument` is built from a catalog record (:func:`table_document`, with a digest of
everything indexed, so the index can tell which tables changed); :func:`index_rows` turns documents
into the rows of the index's ``tables`` and ``columns`` tables (analysed text, filter fields, and
the readable text the embedder sees).

Example:
    >>> doc = {"uid": "u1", "identifier": "equity_close", "description": "Daily close prices",
    ...        "columns": [{"column_name": "close", "dtype": "Float64", "label": "Close",
    ...                     "description": None}]}
    >>> print(document_text(doc))
    equity_close
    Daily close prices
    close. Close
    >>> tables, columns = index_rows([doc])
    >>> tables[0]["column_names"], columns[0]["key"]
    (['close'], 'u1\\x1fclose')
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from .analysis import analyze, class_words, frequency_words

if TYPE_CHECKING:
    from ..catalog.records import TableRecord

__all__ = [
    "EMBED_TEXT",
    "ColumnDocument",
    "TableDocument",
    "column_text",
    "dedupe",
    "document_text",
    "index_rows",
    "table_document",
]

# The key of a row's readable text, embedded by the index and not stored.
EMBED_TEXT = "_embed"

_DOCUMENT_FIELDS = ("uid", "storage_hash", "identifier", "namespace", "description", "labels",
                    "data_frequency_id", "index_names", "columns", "source_class", "source_doc")


class ColumnDocument(TypedDict):
    """One column of a table document."""

    column_name: str
    dtype: str
    label: str | None
    description: str | None


class TableDocument(TypedDict):
    """What the catalog hands to the index for one DataNode storage."""

    uid: str
    storage_hash: str
    identifier: str | None
    namespace: str
    description: str | None
    labels: list[str]
    data_frequency_id: str | None
    index_names: list[str]
    columns: list[ColumnDocument]
    source_class: str
    source_doc: str | None
    digest: NotRequired[str]  # the caller's version of the document; see SearchIndex.digests()


def table_document(record: TableRecord) -> dict[str, Any]:
    """The search document of one catalog record, with a digest of everything indexed.

    >>> from lakenodes.catalog.records import TableRecord
    >>> record = TableRecord(uid="u1", storage_hash="prices_01", table_uri="/lake/tables/prices_01")
    >>> document = table_document(record)
    >>> document["identifier"], len(document["digest"])
    ('', 32)
    """
    document = record.model_dump(include=set(_DOCUMENT_FIELDS))
    document["identifier"] = document["identifier"] or ""
    encoded = json.dumps(document, sort_keys=True, default=str).encode("utf-8")
    document["digest"] = hashlib.sha256(encoded).hexdigest()[:32]
    return document


def column_text(col: ColumnDocument | dict[str, Any]) -> str:
    """Readable text of one column: name, label, description.

    >>> column_text({"column_name": "px_close", "label": None, "description": "official close"})
    'px_close. official close'
    """
    parts = [col.get("column_name") or "", col.get("label") or "", col.get("description") or ""]
    return ". ".join(p for p in parts if p)


def document_text(doc: TableDocument | dict[str, Any]) -> str:
    """Readable text of a table document, used for embeddings and (analysed) for full-text search.

    >>> document_text({"identifier": "fx_spot", "data_frequency_id": "1d", "source_class": "a.FxSpot"})
    'fx_spot\\n1d daily day\\nFx Spot'
    """
    freq = doc.get("data_frequency_id")
    parts = [
        doc.get("identifier") or "",
        doc.get("description") or "",
        " ".join(doc.get("labels") or []),
        f"{freq} {frequency_words(freq)}" if freq else "",
        "; ".join(column_text(c) for c in doc.get("columns") or []),
        " ".join(doc.get("index_names") or []),
        class_words(doc.get("source_class")),
        (doc.get("source_doc") or "")[:2000],
    ]
    return "\n".join(p for p in parts if p)


def dedupe(docs: list[TableDocument]) -> list[TableDocument]:
    """``docs`` with one document per uid (the last one wins).

    >>> docs = [{"uid": "a", "description": "old"}, {"uid": "a", "description": "new"}]
    >>> [d["description"] for d in dedupe(docs)]
    ['new']
    """
    return list({str(d["uid"]): d for d in docs}.values())


def index_rows(docs: list[TableDocument]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of the ``tables`` and ``columns`` index tables for ``docs`` (without vectors).

    Each row carries its readable text under :data:`EMBED_TEXT` for the embedder; a column listed
    twice in a document is indexed once (the last one wins). See the module example.
    """
    table_rows: list[dict[str, Any]] = []
    column_rows: list[dict[str, Any]] = []
    for doc in docs:
        base = {
            "uid": str(doc["uid"]),
            "identifier": doc.get("identifier"),
            "namespace": doc.get("namespace") or "",
            "labels": [str(x) for x in doc.get("labels") or []],
            "data_frequency_id": doc.get("data_frequency_id"),
        }
        columns = list({c["column_name"]: c for c in doc.get("columns") or []}.values())
        text = document_text(doc)
        table_rows.append(base | {
            "storage_hash": doc.get("storage_hash"),
            "description": doc.get("description"),
            "source_class": doc.get("source_class"),
            "column_names": [c["column_name"] for c in columns],
            "column_labels": [c.get("label") or "" for c in columns],
            "digest": doc.get("digest"),
            "text": " ".join(analyze(text)),
            EMBED_TEXT: text,
        })
        for col in columns:
            ctext = column_text(col)
            column_rows.append(base | {
                "key": f"{base['uid']}\x1f{col['column_name']}",
                "column_name": col["column_name"],
                "label": col.get("label"),
                "description": col.get("description"),
                "dtype": col.get("dtype"),
                "text": " ".join(analyze(ctext)),
                EMBED_TEXT: ctext,
            })
    return table_rows, column_rows
