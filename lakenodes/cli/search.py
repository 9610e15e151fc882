"""``lakenodes search Q`` (also ``lakenodes data-node search Q``): find tables by meaning.

Registered once, on the root; the ``data-node`` group lists and runs the same command.
"""

from __future__ import annotations

import contextlib
import enum
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..core.lookup_parsing import parse_lookups
from ..errors import LakenodesUserError
from ..facade.meta_table import TimeIndexMetaTable
from ._render import table, text
from ._session import Session, command

if TYPE_CHECKING:
    from rich.console import Console  # imported by the commands that render

app = typer.Typer()


class SearchMode(enum.StrEnum):
    """Which rankings ``search`` shows."""

    both = "both"
    description = "description"
    column = "column"


@command(app, "search")
def search(
    session: Session,
    query: Annotated[str | None, typer.Argument(metavar="Q", help="What you are looking for, in words.")] = None,
    mode: Annotated[SearchMode, typer.Option("--mode", help="Rank by description, by columns, or show both.")] = SearchMode.both,
    trigram_k: Annotated[int, typer.Option("--trigram-k", help="Trigram (full-text) candidates.")] = 200,
    embed_k: Annotated[int, typer.Option("--embed-k", help="Embedding candidates.")] = 200,
    w_trgm: Annotated[float, typer.Option("--w-trgm", help="Weight of the trigram score.")] = 0.65,
    w_emb: Annotated[float, typer.Option("--w-emb", help="Weight of the embedding score.")] = 0.35,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many tables per mode.")] = 20,
    filters: Annotated[list[str] | None, typer.Option(
        "--filter", "-f", metavar="K=V", show_default=False,
        help="namespace=, data_frequency_id=, labels__contains=, identifier__contains=, identifier__in=A,B: any "
             "catalog lookup, as `data-node list` takes them (repeatable).")] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Rebuild the search index from the catalog first.")] = False,
    embedder: Annotated[str | None, typer.Option(
        "--embedder", metavar="SPEC", show_default=False,
        help="The index's embedder: minilm (default), hashing, sentence-transformers:PATH. With --refresh the "
             "index is rebuilt with it; without, it must be the one the index was built with.")] = None,
    data_source_id: Annotated[str | None, typer.Option("--data-source-id", hidden=True)] = None,  # the seeds' CLI
) -> None:
    """Find tables by meaning: description (trigram + embedding blend) and column search."""
    if data_source_id is not None:
        raise LakenodesUserError("--data-source-id has no counterpart: a lake is one data source; search another "
                                 "one with --lake URI")
    search_filters = parse_lookups(filters)  # as `data-node list` reads them: __in lists, __isnull true/false
    refreshed = TimeIndexMetaTable.rebuild_search_index(lake=session.lake, embedding_model=embedder) if refresh else None
    model = None if refresh else embedder
    if not query or not query.strip():
        if refresh:
            session.output({"refreshed": refreshed},
                           lambda console: console.print(f"search index rebuilt from the catalog ({refreshed} tables)"))
            return
        raise LakenodesUserError("give a search query Q (or --refresh to rebuild the index)")
    pages: dict[str, Any] = {}
    with _index_warnings(session):
        if mode in (SearchMode.both, SearchMode.description):
            pages["description"] = TimeIndexMetaTable.description_search(
                query, trigram_k=trigram_k, embed_k=embed_k, w_trgm=w_trgm, w_emb=w_emb, embedding_model=model,
                limit=limit, lake=session.lake, **search_filters)
        if mode in (SearchMode.both, SearchMode.column):
            pages["column"] = TimeIndexMetaTable.column_search(query, embedding_model=model, limit=limit,
                                                               lake=session.lake, **search_filters)

    def render(console: Console) -> None:
        for kind, page in pages.items():
            console.print(f"{kind} search for {query!r}: {page['count']} match(es)", style="bold")
            view = table("Score", "Identifier", "Namespace", "Storage hash", "Matched columns", "Description",
                         no_wrap=("Score", "Identifier", "Storage hash"))
            for hit in page["results"]:
                view.add_row(f"{hit['score']:.3f}", hit.get("identifier") or "", hit.get("namespace") or "",
                             hit["storage_hash"], text(hit.get("matched_columns")), _described(hit))
            if page["results"]:  # the count line above says there are none
                console.print(view)

    session.output({"query": query, "mode": mode.value, **pages}, render)


@contextlib.contextmanager
def _index_warnings(session: Session) -> Iterator[None]:
    """A search index the lake refused to store (a read-only lake): one ``warning:`` line, and the
    JSON document's ``warnings``; other warnings pass on as they were."""
    from ..search.errors import SearchIndexNotStoredWarning  # the search stack loads only when searching

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SearchIndexNotStoredWarning)
        yield
    for message in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, SearchIndexNotStoredWarning)):
        session.warn(message)
    for w in caught:
        if not issubclass(w.category, SearchIndexNotStoredWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def _described(hit: dict) -> str:
    """The table's description, else the first line of its node's docstring (which search indexes too).

    Example:
        >>> _described({"description": None, "source_doc": "Daily FX fixing.\\n\\nMore."})
        'Daily FX fixing.'
    """
    return hit.get("description") or (hit.get("source_doc") or "").strip().split("\n", 1)[0]
