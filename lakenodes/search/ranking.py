"""Ranking: blend the trigram full-text signal and the embedding signal over one index table.

``score = w_trgm * trigram_score + w_emb * embedding_score``, where ``trigram_score`` is the BM25
score of the 3-gram full-text match divided by the best BM25 score among the ``trigram_k``
full-text candidates, weighted by the row's *coverage* of the query (see :func:`coverage`), and
``embedding_score`` the cosine similarity to the query divided by the best similarity among the
``embed_k`` nearest neighbours (negative similarities count as 0). A row found by only one signal
gets 0 for the other. Both scores are in ``[0, 1]``.

The coverage weight is how the full-text evidence chooses the weights per query and per row: a row
holding every 3-gram of the query (the exact name, a column name, a typo of them) keeps its full
trigram score and ranks first; a row sharing one word of a paraphrase keeps 30% of it, and the
embedding decides among such rows.

The functions here take an opened index table (a ``lancedb.table.Table``, see
:class:`SearchableTable`); opening it is :mod:`lakenodes.search.index`'s business.

Example:
    >>> blended = blend_scores([{"uid": "a", "_score": 4.0, "text": "daily close closing"}],
    ...                        [{"uid": "a", "_distance": 0.2}, {"uid": "b", "_distance": 0.6}],
    ...                        "uid", w_trgm=0.65, w_emb=0.35, q_grams=query_grams("close"))
    >>> {uid: round(score, 3) for uid, (score, _trgm, _emb, _row) in blended.items()}
    {'a': 1.0, 'b': 0.175}
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._internal.deferred import np
from .analysis import analyze
from .embedders import Embedder, get_embedder
from .errors import EmbedderMismatchError, SearchArgumentError, check_count, check_weight

log = logging.getLogger(__name__)

__all__ = [
    "SearchHit",
    "SearchPage",
    "SearchableTable",
    "blend_scores",
    "check_blend",
    "check_query",
    "coverage",
    "query_embedder",
    "query_grams",
    "rank_columns",
    "rank_tables",
]

# The vector index (IVF_FLAT) is always queried with every partition probed, so results stay exact.
_ALL_PARTITIONS = 1 << 20
_COLUMN_K = 500  # candidates per signal in column search
_COLUMN_W_TRGM, _COLUMN_W_EMB = 0.65, 0.35
# trigram_score = BM25 / best BM25 * (_FLOOR + (1 - _FLOOR) * coverage ** 2); chosen on the benchmark
_FLOOR = 0.3

Blended = dict[str, tuple[float, float, float, dict[str, Any]]]


class SearchableTable(Protocol):
    """What ranking needs of an index table: LanceDB's ``Table.search`` query builder."""

    def search(self, *args: Any, **kwargs: Any) -> Any: ...


@dataclass
class SearchHit:
    """One ranked table. ``score = w_trgm * trigram_score + w_emb * embedding_score``.

    >>> hit = SearchHit(uid="9f2c", score=0.91, trigram_score=1.0, embedding_score=0.74,
    ...                 matched_columns=["close"])
    >>> hit.matched_columns
    ['close']
    """

    uid: str
    score: float
    trigram_score: float
    embedding_score: float
    matched_columns: list[str] = field(default_factory=list)


@dataclass
class SearchPage:
    """A page of hits; ``count`` is the number of matching tables before pagination.

    >>> SearchPage(count=0, results=[])
    SearchPage(count=0, results=[])
    """

    count: int
    results: list[SearchHit]


def check_query(q: Any, limit: Any, offset: Any) -> None:
    """SearchArgumentError unless ``q`` is a string and ``limit``/``offset`` are integers >= 0."""
    if not isinstance(q, str):
        raise SearchArgumentError(f"the search query must be a string, got {type(q).__name__}")
    check_count("limit", limit)
    check_count("offset", offset)


def check_blend(trigram_k: Any, embed_k: Any, w_trgm: Any, w_emb: Any) -> tuple[int, int, float, float]:
    """The blend arguments checked (counts >= 0, finite weights >= 0, not both 0).

    >>> check_blend(200, 200, 0.65, 0.35)
    (200, 200, 0.65, 0.35)
    """
    trigram_k, embed_k = check_count("trigram_k", trigram_k), check_count("embed_k", embed_k)
    w_trgm, w_emb = check_weight("w_trgm", w_trgm), check_weight("w_emb", w_emb)
    if w_trgm == 0 and w_emb == 0:
        raise SearchArgumentError("w_trgm and w_emb are both 0: at least one weight must be > 0")
    return trigram_k, embed_k, w_trgm, w_emb


def query_embedder(
    stored: str | None, configured: Embedder, embedding_model: str | Embedder | None, uri: str
) -> Embedder | None:
    """The embedder for queries on an index table built with the embedder named ``stored``.

    ``embedding_model`` (when given) must be that embedder, else EmbedderMismatchError. Without it,
    the ``configured`` embedder is used; if the index (at ``uri``) was built with another one, the
    embedding signal is off (None) until the index is rebuilt.

    >>> from lakenodes.search.embedders import HashingEmbedder
    >>> query_embedder("hashing-v1-384", HashingEmbedder(), None, "/lake/_catalog/search").name
    'hashing-v1-384'
    """
    embedder = configured if embedding_model is None else get_embedder(embedding_model)
    if stored == embedder.name:
        return embedder
    if embedding_model is not None:
        raise EmbedderMismatchError(
            f"embedding_model {embedder.name!r} does not match the index embedder {stored!r}"
        )
    log.warning(
        "search index %s was built with embedder %r, configured %r: "
        "embedding signal disabled until rebuild()",
        uri, stored, embedder.name,
    )
    return None


def query_grams(q: str) -> list[str]:
    """The distinct 3-grams of the analysed query terms (a term shorter than 3 is its own gram).

    >>> query_grams("spot")
    ['spo', 'pot']
    """
    grams = (t[i : i + 3] for t in analyze(q) for i in range(max(1, len(t) - 2)))
    return list(dict.fromkeys(grams))


def coverage(q_grams: list[str], text: str) -> float:
    """Share of the query's 3-grams found in a row's analysed ``text`` (1.0 without grams).

    >>> coverage(query_grams("spot price"), "daily spot"), coverage(query_grams("spot"), "spot")
    (0.4, 1.0)
    """
    if not q_grams:
        return 1.0
    return sum(1 for g in q_grams if g in text) / len(q_grams)


def _fts(table: SearchableTable, q: str, k: int, where: str | None, cols: list[str]) -> list[dict[str, Any]]:
    terms = " ".join(analyze(q))
    if k <= 0 or not terms:
        return []
    query = table.search(terms, query_type="fts", fts_columns="text").select([*cols, "text", "_score"]).limit(k)
    if where:
        query = query.where(where, prefilter=True)
    return query.to_arrow().to_pylist()


def _knn(
    table: SearchableTable, vector: np.ndarray, k: int, where: str | None, cols: list[str]
) -> list[dict[str, Any]]:
    if k <= 0 or not np.any(vector):
        return []
    query = (
        table.search(vector, query_type="vector", vector_column_name="vector")
        .distance_type("cosine")
        .nprobes(_ALL_PARTITIONS)
        .select([*cols, "_distance"])
        .limit(k)
    )
    if where:
        query = query.where(where, prefilter=True)
    return query.to_arrow().to_pylist()


def blend_scores(
    fts_rows: list[dict[str, Any]],
    knn_rows: list[dict[str, Any]],
    key: str,
    w_trgm: float,
    w_emb: float,
    q_grams: list[str],
) -> Blended:
    """key -> (score, trigram_score, embedding_score, row), each signal divided by its maximum and the
    trigram signal weighted by the row's coverage of the query's 3-grams ``q_grams``."""
    bm25 = {r[key]: max(float(r["_score"]), 0.0) for r in fts_rows}
    t_max = max(bm25.values(), default=0.0) or 1.0
    trgm = {
        r[key]: bm25[r[key]] / t_max * (_FLOOR + (1.0 - _FLOOR) * coverage(q_grams, r["text"]) ** 2)
        for r in fts_rows
    }
    emb = {r[key]: max(1.0 - float(r["_distance"]), 0.0) for r in knn_rows}
    rows = {r[key]: r for r in knn_rows} | {r[key]: r for r in fts_rows}
    e_max = max(emb.values(), default=0.0) or 1.0
    out = {}
    for k, row in rows.items():
        ts, es = trgm.get(k, 0.0), emb.get(k, 0.0) / e_max
        out[k] = (w_trgm * ts + w_emb * es, ts, es, row)
    return out


def _page(hits: list[SearchHit], limit: int, offset: int) -> SearchPage:
    hits.sort(key=lambda h: (-h.score, h.uid))
    return SearchPage(count=len(hits), results=hits[offset : offset + limit])


def _matched_columns(row: dict[str, Any], q_terms: set[str]) -> list[str]:
    names = row.get("column_names") or []
    labels = row.get("column_labels") or [""] * len(names)
    return [n for n, lab in zip(names, labels, strict=False) if q_terms.intersection(analyze(f"{n} {lab}"))]


def rank_tables(
    table: SearchableTable,
    q: str,
    embedder: Embedder | None,
    *,
    trigram_k: int,
    embed_k: int,
    w_trgm: float,
    w_emb: float,
    where: str | None,
    limit: int,
    offset: int,
) -> SearchPage:
    """Rank the rows of the ``tables`` index table (arguments already checked, see :func:`check_blend`).

    Candidates are the union of the ``trigram_k`` best full-text matches and the ``embed_k``
    nearest embeddings, both drawn from the rows passing ``where``. A signal is skipped when its
    ``k`` or its weight is 0 (or, for embeddings, without an ``embedder``): ``w_trgm=1, w_emb=0``
    ranks (and counts) purely by the trigram score (coverage-weighted BM25), ``trigram_k=0`` or
    ``w_trgm=0`` is pure embedding order. Ties break by uid. ``count`` is the number of candidates, so it is at most
    ``trigram_k + embed_k``. ``matched_columns`` lists the table's columns whose name or label
    shares a term with ``q``.
    """
    started = time.perf_counter()
    cols = ["uid", "column_names", "column_labels"]
    fts_rows = _fts(table, q, trigram_k, where, cols) if w_trgm > 0 else []
    knn_rows: list[dict[str, Any]] = []
    if w_emb > 0 and embed_k > 0 and embedder is not None:
        knn_rows = _knn(table, embedder.embed([q])[0], embed_k, where, cols)
    blended = blend_scores(fts_rows, knn_rows, "uid", w_trgm, w_emb, query_grams(q))
    hits = [SearchHit(uid, score, ts, es) for uid, (score, ts, es, _row) in blended.items()]
    page = _page(hits, limit, offset)
    q_terms = set(analyze(q))
    for hit in page.results:
        hit.matched_columns = _matched_columns(blended[hit.uid][3], q_terms)
    elapsed_ms = 1e3 * (time.perf_counter() - started)
    log.debug("description_search %r: %d hits in %.1f ms", q, page.count, elapsed_ms)
    return page


def rank_columns(
    table: SearchableTable, q: str, embedder: Embedder | None, *, where: str | None, limit: int, offset: int
) -> SearchPage:
    """Rank tables by their best matching row of the ``columns`` index table.

    Column rows are scored like :func:`rank_tables` scores tables (0.65 trigram + 0.35 embedding,
    500 candidates per signal); a table's score is its best column's score and ``matched_columns``
    holds its candidate columns scoring at least half of that, best first.
    """
    cols = ["key", "uid", "column_name"]
    fts_rows = _fts(table, q, _COLUMN_K, where, cols)
    knn_rows = [] if embedder is None else _knn(table, embedder.embed([q])[0], _COLUMN_K, where, cols)
    per_table: dict[str, list[tuple[float, float, float, str]]] = {}
    for score, ts, es, row in blend_scores(fts_rows, knn_rows, "key", _COLUMN_W_TRGM, _COLUMN_W_EMB,
                                                  query_grams(q)).values():
        per_table.setdefault(row["uid"], []).append((score, ts, es, row["column_name"]))
    hits = []
    for uid, scored in per_table.items():
        scored.sort(key=lambda s: (-s[0], s[3]))
        best = scored[0]
        matched = [s[3] for s in scored if s[0] >= 0.5 * best[0]]
        hits.append(SearchHit(uid, best[0], best[1], best[2], matched))
    return _page(hits, limit, offset)
