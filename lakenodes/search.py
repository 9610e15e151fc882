"""Semantic search over the catalog of DataNode storages, backed by LanceDB.

The index lives in a LanceDB database directory (a local path or ``s3://bucket/prefix``) holding two
Lance tables:

* ``tables``  - one row per catalog table: metadata used by filters, the analysed full text
  (``text``, with a LanceDB native full-text index using the **n-gram tokenizer**, 3-grams) and an
  embedding (``vector``).
* ``columns`` - one row per column of every table, with the same filter metadata, text and vector.

Ranking (``description_search``) blends two signals::

    score = w_trgm * trigram_score + w_emb * embedding_score

``trigram_score`` is the BM25 score of the 3-gram full-text match divided by the best BM25 score among
the ``trigram_k`` full-text candidates; ``embedding_score`` is the cosine similarity to the query
divided by the best similarity among the ``embed_k`` nearest neighbours (negative similarities count
as 0). A table found by only one signal gets 0 for the other. Both scores are in ``[0, 1]``.

Text is analysed the same way for documents and queries: CamelCase/snake_case splitting, lower-casing,
ASCII folding, plural stripping, a small finance abbreviation/synonym table (``px`` -> ``price``,
``fx`` -> ``foreign exchange``...) and frequency words (``1d`` -> ``daily``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import numbers
import os
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NotRequired, Protocol, TypedDict, runtime_checkable

import numpy as np
import pyarrow as pa

from .errors import LakenodesUserError, plain_message

if TYPE_CHECKING:
    from lancedb.db import DBConnection
    from lancedb.table import Table

log = logging.getLogger(__name__)

__all__ = [
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
    "document_text",
    "get_embedder",
    "lance_storage_options",
]

# --------------------------------------------------------------------------------------------------
# Errors and argument checks
# --------------------------------------------------------------------------------------------------


class SearchArgumentError(LakenodesUserError):
    """A search argument is invalid (negative ``k``, bad weights, paging, filter or embedder spec)."""


class EmbedderMismatchError(LakenodesUserError):
    """The index was built with another embedder than the one asked for (``rebuild()`` switches it)."""


def _check_count(name: str, value: Any) -> int:
    """``value`` as a non-negative int (``limit``, ``offset``, ``trigram_k``...), else SearchArgumentError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise SearchArgumentError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def _check_weight(name: str, value: Any) -> float:
    """``value`` as a finite float >= 0 (``w_trgm``, ``w_emb``), else SearchArgumentError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise SearchArgumentError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _one_line(error: BaseException) -> str:
    """An exception as ``Type: message`` on one line (Lance errors span lines and carry source paths)."""
    return f"{type(error).__name__}: " + " ".join(plain_message(error).split())


# --------------------------------------------------------------------------------------------------
# Text analysis
# --------------------------------------------------------------------------------------------------

_STOPWORDS = frozenset(
    "a an and are as at be by for from has have how i in into is it its of on or per that the their "
    "this to was what where which with all any does do me my show find give get want need".split()
)

# Finance abbreviations and plain-English synonyms: a term (after plural stripping) adds these words.
# "term: words" entries separated by "|" or newlines.
_SYNONYM_TABLE = """
px: price | fx: foreign exchange currency | vol: volatility | vola: volatility | ccy: currency
ret: return | mkt: market | mcap: market capitalization | cap: capitalization | eps: earnings per share
pe: price earnings | pb: price book | yld: yield | oi: open interest | iv: implied volatility
rv: realized volatility | ohlc: open high low close bar | ohlcv: open high low close volume bar
qty: quantity | amt: amount | bp: basis point | bps: basis point | yoy: year over year
qoq: quarter over quarter | mom: momentum | gdp: gross domestic product
cpi: consumer price index inflation | ppi: producer price index | pmi: purchasing managers index
nfp: nonfarm payrolls | esg: environmental social governance | btc: bitcoin crypto
eth: ethereum ether crypto | crypto: cryptocurrency | perp: perpetual futures | fut: futures
fwd: forward | pt: point | pts: point | opt: option | eod: end of day daily close
ttm: trailing twelve months | ytm: yield to maturity | oas: option adjusted spread
cds: credit default swap | ig: investment grade | hy: high yield | tca: transaction cost analysis
pnl: profit and loss | nav: net asset value | aum: assets under management | adv: average daily volume
vwap: volume weighted average price | twap: time weighted average price
nbbo: national best bid offer quote | bbo: best bid offer quote | ipo: initial public offering
etf: exchange traded fund | fcf: free cash flow | capex: capital expenditures | ev: enterprise value
roe: return on equity | dte: days to expiry | atm: at the money | rr: risk reversal | bf: butterfly
gics: sector industry classification | sofr: secured overnight financing rate
ois: overnight index swap | tips: inflation protected | l2: level 2 order book depth
lob: limit order book | mna: mergers acquisitions | snp: standard poors sp500 | ma: moving average | div: dividend
divs: dividend | fin: financial | econ: economic | govt: government | corp: corporate
ir: interest rate | irs: interest rate swap | ust: treasury | tsy: treasury | stock: equity
equity: stock | share: equity | position: holding | holding: position | candle: bar ohlc
candlestick: bar ohlc | bar: candle | forecast: estimate | estimate: forecast | jobless: unemployment
job: employment payrolls | payroll: employment | cost: fee | fee: cost | spending: spend
tweet: twitter | coin: crypto | bitcoin: crypto btc | ether: crypto eth | fund: etf | inflation: cpi
earning: eps | close: closing | closing: close | realised: realized | optimiser: optimizer
optimisation: optimization | capitalisation: capitalization | annualised: annualized
normalised: normalized | standardised: standardized
"""
_SYNONYMS: dict[str, str] = {
    k.strip(): v.strip()
    for entry in _SYNONYM_TABLE.replace("\n", "|").split("|")
    if entry.strip()
    for k, v in [entry.split(":", 1)]
}

# Ampersand abbreviations that would otherwise split into single letters.
_PHRASES = {"m&a": " mna ", "s&p": " snp ", "p&l": " pnl "}
_PHRASE_RE = re.compile("|".join(re.escape(p) for p in _PHRASES))

_FREQ_UNITS = {
    "s": "second intraday",
    "sec": "second intraday",
    "m": "minute intraday",
    "min": "minute intraday",
    "h": "hourly hour intraday",
    "d": "daily day",
    "w": "weekly week",
    "mo": "monthly month",
    "q": "quarterly quarter",
    "y": "annual yearly year",
}
_FREQ_RE = re.compile(r"^(\d+)(s|sec|min|m|h|d|w|mo|q|y)$")
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD_RE = re.compile(r"[a-z0-9]+")
_ALNUM_SPLIT_RE = re.compile(r"[a-z]+|[0-9]+")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()


def _stem(word: str) -> str:
    """Plural stripping only ("prices" -> "price", "currencies" -> "currency")."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"), ("shes", "sh")):
        if word.endswith(suffix):
            return word[: -len(suffix)] + repl
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def frequency_words(frequency_id: str | None) -> str:
    """Words for a frequency id: ``"1d"`` -> ``"daily day"``, ``"5m"`` -> ``"5 minute intraday"``."""
    if not frequency_id:
        return ""
    match = _FREQ_RE.match(frequency_id.strip().lower())
    if not match:
        return ""
    n, unit = match.groups()
    words = _FREQ_UNITS[unit]
    return words if n == "1" else f"{n} {words}"


def analyze(text: str) -> list[str]:
    """Normalise ``text`` into index terms (used for both documents and queries).

    >>> analyze("DailyFX px_close 1d")
    ['daily', 'fx', 'px', 'close', '1d', 'foreign', 'exchange', 'currency', 'price', 'closing', 'day']
    """
    terms: list[str] = []
    extra: list[str] = []
    folded = _PHRASE_RE.sub(lambda m: _PHRASES[m.group()], _fold(_CAMEL_RE.sub(" ", text)))
    for raw in _WORD_RE.findall(folded):
        if raw in _STOPWORDS:
            continue
        word = _stem(raw)
        terms.append(word)
        parts = _ALNUM_SPLIT_RE.findall(raw)
        if len(parts) > 1:
            freq = frequency_words(raw)
            if freq:
                extra.extend(freq.split())
            extra.extend(p for p in parts if len(p) > 1)
        syn = _SYNONYMS.get(word) or _SYNONYMS.get(raw)
        if syn:
            extra.extend(syn.split())
    seen = set(terms)
    for word in extra:
        if word not in seen and word not in _STOPWORDS:
            seen.add(word)
            terms.append(word)
    return terms


# --------------------------------------------------------------------------------------------------
# Embedders
# --------------------------------------------------------------------------------------------------


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised ``float32`` vectors of shape ``(len(texts), dim)``.

    ``name`` identifies the model (and its version); the index records it and refuses to mix vectors
    of different embedders.

    Example::

        class MyEmbedder:
            name, dim = "my-model-v1", 64
            def embed(self, texts): ...  # -> np.ndarray float32 (len(texts), 64), rows of norm 1

        SearchIndex(uri, embedder=MyEmbedder())
    """

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


class HashingEmbedder:
    """Offline, deterministic embedder: signed feature hashing of words and character n-grams.

    Each analysed term (see :func:`analyze`) contributes a word feature and its character 3- and
    4-grams (with word boundary markers), hashed with BLAKE2b into ``dim`` buckets with a hashed
    sign. Term counts are damped with ``1 + log(tf)``. The same text gives bit-identical vectors on
    every process and machine.

    Example::

        emb = HashingEmbedder()
        v = emb.embed(["daily close price", "dialy close prise"])
        float(v[0] @ v[1])  # high cosine similarity despite the typos
    """

    VERSION = 1

    def __init__(self, dim: int = 384, ngram_weight: float = 1.0) -> None:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 16:
            raise SearchArgumentError(f"HashingEmbedder dim must be an integer >= 16, got {dim!r}")
        self.dim = dim
        self.ngram_weight = ngram_weight
        self.name = f"hashing-v{self.VERSION}-{dim}" + ("" if ngram_weight == 1.0 else f"-ng{ngram_weight:g}")
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _bucket(self, feature: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
        return h % self.dim, (1.0 if (h >> 63) & 1 else -1.0)

    def _term_features(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        cached = self._cache.get(term)
        if cached is not None:
            return cached
        feats = [(*self._bucket("w:" + term), 1.0)]
        if not term.isdigit() and len(term) > 2:
            marked = f"<{term}>"
            grams = [marked[i : i + n] for n in (3, 4) for i in range(len(marked) - n + 1)]
            w = self.ngram_weight / math.sqrt(len(grams))
            feats.extend((*self._bucket("g:" + g), w) for g in grams)
        idx = np.fromiter((f[0] for f in feats), dtype=np.int64, count=len(feats))
        val = np.fromiter((f[1] * f[2] for f in feats), dtype=np.float64, count=len(feats))
        if len(self._cache) < 200_000:
            self._cache[term] = (idx, val)
        return idx, val

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            counts = Counter(analyze(text or ""))
            if not counts:
                continue
            idxs, vals = [], []
            for term, tf in counts.items():
                idx, val = self._term_features(term)
                idxs.append(idx)
                vals.append(val * (1.0 + math.log(tf)))
            vec = np.bincount(np.concatenate(idxs), weights=np.concatenate(vals), minlength=self.dim)
            norm = float(np.linalg.norm(vec))
            if norm > 0:
                out[row] = (vec / norm).astype(np.float32)
        return out


class SentenceTransformerEmbedder:
    """Embedder backed by a *local* sentence-transformers model (optional extra).

    The model is loaded on first use with ``local_files_only=True``: nothing is downloaded.

    Example::

        emb = SentenceTransformerEmbedder("/models/all-MiniLM-L6-v2")
        index = SearchIndex("/lake/_catalog/search", embedder=emb)
    """

    def __init__(self, model: str, *, device: str | None = None, batch_size: int = 64) -> None:
        self.model_path = model
        self.name = f"sentence-transformers:{model}"
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ImportError(
                    "SentenceTransformerEmbedder needs the optional dependency 'sentence-transformers': "
                    "pip install 'lakenodes[sentence-transformers]'"
                ) from exc
            log.info("loading sentence-transformers model %s", self.model_path)
            self._model = SentenceTransformer(self.model_path, device=self.device, local_files_only=True)
        return self._model

    @property
    def dim(self) -> int:  # type: ignore[override]
        model = self._load()
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self._load().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


def get_embedder(model: str | Embedder | None) -> Embedder:
    """Resolve an embedder spec.

    ``None`` / ``"hashing"`` -> :class:`HashingEmbedder`; ``"hashing:<dim>"`` -> hashing with that
    dimension; ``"sentence-transformers:<local path or name>"`` -> :class:`SentenceTransformerEmbedder`;
    an object with ``name``, ``dim`` and ``embed`` is returned unchanged.
    """
    if model is None or model == "hashing":
        return HashingEmbedder()
    if isinstance(model, str):
        kind, _, arg = model.partition(":")
        if kind == "hashing" and arg.isdigit():
            return HashingEmbedder(dim=int(arg))
        if kind == "sentence-transformers" and arg:
            return SentenceTransformerEmbedder(arg)
        raise SearchArgumentError(
            f"unknown embedding model {model!r}: use None, 'hashing', 'hashing:<dim>' or "
            "'sentence-transformers:<local model path>'"
        )
    if callable(getattr(model, "embed", None)) and isinstance(getattr(model, "name", None), str):
        return model  # not isinstance(model, Embedder): that would read ``dim`` and load lazy models
    raise SearchArgumentError(
        f"embedding model must be a spec string or an object with name, dim and embed(), got {type(model).__name__}"
    )


# --------------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------------


class ColumnDocument(TypedDict):
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


def _class_words(source_class: str | None) -> str:
    name = (source_class or "").rsplit(".", 1)[-1]
    return _CAMEL_RE.sub(" ", name)


def column_text(col: ColumnDocument | dict[str, Any]) -> str:
    """Readable text of one column: name, label, description, dtype."""
    parts = [col.get("column_name") or "", col.get("label") or "", col.get("description") or ""]
    return ". ".join(p for p in parts if p)


def document_text(doc: TableDocument | dict[str, Any]) -> str:
    """Readable text of a table document, used for embeddings and (analysed) for full-text search."""
    freq = doc.get("data_frequency_id")
    parts = [
        doc.get("identifier") or "",
        doc.get("description") or "",
        " ".join(doc.get("labels") or []),
        f"{freq} {frequency_words(freq)}" if freq else "",
        "; ".join(column_text(c) for c in doc.get("columns") or []),
        " ".join(doc.get("index_names") or []),
        _class_words(doc.get("source_class")),
        (doc.get("source_doc") or "")[:2000],
    ]
    return "\n".join(p for p in parts if p)


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


@dataclass
class SearchHit:
    """One ranked table. ``score = w_trgm * trigram_score + w_emb * embedding_score``.

    Example: ``SearchHit(uid="9f2c...", score=0.91, trigram_score=1.0, embedding_score=0.74,
    matched_columns=["close"])``.
    """

    uid: str
    score: float
    trigram_score: float
    embedding_score: float
    matched_columns: list[str] = field(default_factory=list)


@dataclass
class SearchPage:
    """A page of hits; ``count`` is the number of matching tables before pagination.

    Example::

        page = index.description_search("fx spot", limit=10, offset=10)  # second page
        page.count, [hit.uid for hit in page.results]
    """

    count: int
    results: list[SearchHit]


# --------------------------------------------------------------------------------------------------
# Storage options and filters
# --------------------------------------------------------------------------------------------------

# delta-rs / object_store environment-style keys -> LanceDB (object_store) keys.
_S3_KEYS = {
    "aws_endpoint_url": "aws_endpoint",
    "aws_endpoint": "aws_endpoint",
    "endpoint_url": "aws_endpoint",
    "aws_access_key_id": "aws_access_key_id",
    "aws_secret_access_key": "aws_secret_access_key",
    "aws_session_token": "aws_session_token",
    "aws_region": "aws_region",
    "aws_default_region": "aws_region",
    "aws_allow_http": "allow_http",
    "allow_http": "allow_http",
    "aws_virtual_hosted_style_request": "aws_virtual_hosted_style_request",
}
# delta-rs commit-coordination options that mean nothing to Lance.
_DELTA_ONLY = frozenset(
    {
        "aws_s3_allow_unsafe_rename",
        "aws_s3_locking_provider",
        "aws_conditional_put",
        "delta_dynamo_table_name",
        "aws_copy_if_not_exists",
    }
)


def lance_storage_options(options: dict[str, str] | None) -> dict[str, str]:
    """Translate delta-rs style storage options (``AWS_ENDPOINT_URL``...) to LanceDB's keys.

    >>> lance_storage_options({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true"})
    {'aws_endpoint': 'http://127.0.0.1:9000', 'allow_http': 'true'}
    """
    out: dict[str, str] = {}
    for key, value in (options or {}).items():
        k = key.lower()
        if k in _DELTA_ONLY:
            continue
        out[_S3_KEYS.get(k, k)] = str(value)
    return out


FILTER_KEYS = ("namespace", "labels__contains", "identifier__contains", "data_frequency_id")


def _sql_str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise SearchArgumentError(f"search filter {key!r} expects a string, got {type(value).__name__}")
    return "'" + value.replace("'", "''") + "'"


def filters_to_sql(filters: dict[str, Any] | None) -> str | None:
    """SQL predicate for the supported filters (all must hold); SearchArgumentError on an unknown key.

    ``namespace`` and ``data_frequency_id`` are exact matches, ``labels__contains`` requires the label
    to be one of the table's labels, ``identifier__contains`` is a case-sensitive substring match
    (tables without an identifier never match).
    """
    if filters is not None and not isinstance(filters, dict):
        raise SearchArgumentError(f"search filters must be a dict, got {type(filters).__name__}")
    clauses = []
    for key, value in (filters or {}).items():
        if key == "namespace":
            clauses.append(f"namespace = {_sql_str(value, key)}")
        elif key == "labels__contains":
            clauses.append(f"array_has(labels, {_sql_str(value, key)})")
        elif key == "identifier__contains":
            clauses.append(f"strpos(identifier, {_sql_str(value, key)}) > 0")
        elif key == "data_frequency_id":
            clauses.append(f"data_frequency_id = {_sql_str(value, key)}")
        else:
            raise SearchArgumentError(
                f"unknown search filter {key!r}; supported filters: {', '.join(FILTER_KEYS)}"
            )
    return " AND ".join(clauses) or None


# --------------------------------------------------------------------------------------------------
# Index
# --------------------------------------------------------------------------------------------------

_TABLES = "tables"
_COLUMNS = "columns"
_FORMAT = "2"
_META_FORMAT = b"lakenodes.search.format"
_META_EMBEDDER = b"lakenodes.search.embedder"
# optimize() (compact + fold new rows into the FTS/vector indexes) beyond this many fragments or rows
# not yet covered by the FTS index (those are searched by a slower flat scan meanwhile).
_MAX_FRAGMENTS = 8
_MAX_UNINDEXED = 1000
_FTS_INDEX = "text_idx"
# Lance's brute-force kNN re-reads the vector column on every query (~40 ms at 10k x 1024-d); an IVF_FLAT
# index keeps vectors in its cache. It is always queried with every partition probed, so results stay
# exact: the index only accelerates, it never approximates.
_VECTOR_INDEX_MIN_ROWS = 4096
_ALL_PARTITIONS = 1 << 20
_COLUMN_K = 500  # candidates per signal in column search
_COLUMN_W_TRGM, _COLUMN_W_EMB = 0.65, 0.35
_DELETE_CHUNK = 500


def _fts_config() -> Any:
    from lancedb.index import FTS

    # Documents and queries are analysed in Python; the index only splits words into 3-grams.
    return FTS(
        base_tokenizer="ngram",
        ngram_min_length=3,
        ngram_max_length=3,
        lower_case=True,
        ascii_folding=True,
        stem=False,
        remove_stop_words=False,
        with_position=False,
    )


def _filter_fields() -> list[pa.Field]:
    return [
        pa.field("uid", pa.string(), nullable=False),
        pa.field("identifier", pa.string()),
        pa.field("namespace", pa.string()),
        pa.field("labels", pa.list_(pa.string())),
        pa.field("data_frequency_id", pa.string()),
    ]


class SearchIndex:
    """Full-text (3-gram BM25) + embedding search over catalog table documents.

    ``uri`` is a directory: a local absolute path or ``s3://bucket/prefix/_catalog/search``.
    ``storage_options`` may use delta-rs keys (``AWS_ENDPOINT_URL``...) or LanceDB keys. Nothing is
    opened until the first call. ``refresh_interval`` bounds how stale reads may be (seconds) with
    respect to writes made through *other* ``SearchIndex`` objects or processes; writes through this
    object are always visible. Default: 0 for local paths, 2 s for object stores (each freshness
    check there is a LIST request, several per query).

    Example::

        index = SearchIndex("/lake/_catalog/search")
        index.upsert_tables([doc])  # doc: TableDocument
        page = index.description_search("dialy close prise", filters={"namespace": ""})
        [hit.uid for hit in page.results]
    """

    def __init__(
        self,
        uri: str,
        storage_options: dict[str, str] | None = None,
        embedder: Embedder | str | None = None,
        *,
        refresh_interval: float | None = None,
    ) -> None:
        self.uri = uri.rstrip("/") or uri
        self.storage_options = lance_storage_options(storage_options)
        self.embedder = get_embedder(embedder)
        if refresh_interval is None:
            refresh_interval = 2.0 if "://" in self.uri and not self.uri.startswith("file://") else 0.0
        self.refresh_interval = refresh_interval
        self._db: DBConnection | None = None
        self._tables: dict[str, Table] = {}

    def __repr__(self) -> str:
        return f"SearchIndex({self.uri!r}, embedder={self.embedder.name!r})"

    # ---------------------------------------------------------------- connection & schema
    def _connect(self) -> DBConnection:
        if self._db is None:
            # LanceDB's Rust logger writes WARN lines (e.g. "No existing dataset") straight to stderr.
            os.environ.setdefault("LANCEDB_LOG", "error")
            import lancedb

            self._db = lancedb.connect(
                self.uri,
                storage_options=self.storage_options or None,
                read_consistency_interval=timedelta(seconds=self.refresh_interval),
            )
        return self._db

    def _open(self, name: str) -> Table | None:
        """The Lance table ``name``, None if it does not exist; an unreadable table raises (Lance's
        ``RuntimeError``)."""
        table = self._tables.get(name)
        if table is None:
            try:
                table = self._connect().open_table(name)
            except FileNotFoundError:
                return None
            except ValueError as error:  # lancedb: "Table 'tables' was not found"
                if "not found" not in str(error):
                    raise
                return None
            self._tables[name] = table
        return table

    def _forget(self) -> None:
        """Drop the cached connection and table handles (the next call reopens from storage)."""
        self._tables.clear()
        self._db = None

    def _unreadable(self) -> Exception | None:
        """Why this index cannot be opened and read, or None when it can (or does not exist).

        Reopens from storage with a fresh connection: both tables' manifests are read and counted.
        """
        self._forget()
        try:
            for name in (_TABLES, _COLUMNS):
                table = self._open(name)
                if table is not None:
                    table.count_rows()
        except Exception as error:  # noqa: BLE001 - any failure to open means the index is unusable
            return error
        return None

    def _discard(self, reason: BaseException) -> None:
        """Delete the whole index (every Lance table under ``uri``, locally or on S3) so it can be
        recreated: it is derived data, rebuilt from the catalog."""
        log.warning(
            "search index %s is unreadable (%s): deleting it to recreate it", self.uri, _one_line(reason)
        )
        self._forget()
        self._connect().drop_all_tables()
        self._forget()

    def _recovering(self, action: Callable[[], None]) -> None:
        """Run a write ``action``; if it fails because the index cannot be opened (e.g. corrupt
        manifests), delete the index and run ``action`` once more on a fresh one.

        Failures on a readable index, and user errors, propagate unchanged.
        """
        try:
            action()
            return
        except LakenodesUserError:
            raise
        except Exception:
            reason = self._unreadable()
            if reason is None:
                raise
        self._discard(reason)
        action()

    def exists(self) -> bool:
        """Whether anything is stored at ``uri`` as an index table (readable or not)."""
        try:
            return any(self._open(name) is not None for name in (_TABLES, _COLUMNS))
        except Exception:  # noqa: BLE001 - an unreadable table exists
            return True

    def _schema(self, name: str) -> pa.Schema:
        fields = _filter_fields()
        if name == _TABLES:
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
            pa.field("vector", pa.list_(pa.float32(), self.embedder.dim)),
        ]
        return pa.schema(fields, metadata={_META_FORMAT: _FORMAT, _META_EMBEDDER: self.embedder.name})

    @staticmethod
    def _stored_embedder(table: Table) -> str | None:
        meta = table.schema.metadata or {}
        if meta.get(_META_FORMAT, b"").decode() != _FORMAT:
            return None
        return meta.get(_META_EMBEDDER, b"").decode() or None

    def _create(self, name: str, data: pa.Table, mode: str) -> Table:
        table = self._connect().create_table(
            name, data=data, schema=data.schema, mode=mode, exist_ok=mode == "create"
        )
        self._ensure_indexes(table)
        self._tables[name] = table
        return table

    @staticmethod
    def _ensure_indexes(table: Table) -> None:
        """FTS index always (also repairs a crash between table and index creation); vector index when large."""
        indexed = {tuple(ix.columns) for ix in table.list_indices()}
        if ("text",) not in indexed:
            table.create_index("text", config=_fts_config(), replace=True, name=_FTS_INDEX)
        rows = table.count_rows()
        if rows < _VECTOR_INDEX_MIN_ROWS or ("vector",) in indexed:
            return
        partitions = max(8, int(math.sqrt(rows) / 3))
        log.info(
            "creating IVF_FLAT vector index on %s (%d rows, %d partitions)", table.name, rows, partitions
        )
        table.create_index(
            metric="cosine",
            vector_column_name="vector",
            index_type="IVF_FLAT",
            num_partitions=partitions,
            replace=True,
        )

    def _writable(self, name: str) -> Table:
        table = self._open(name)
        if table is None:
            table = self._create(name, self._schema(name).empty_table(), mode="create")
        stored = self._stored_embedder(table)
        if stored != self.embedder.name:
            raise EmbedderMismatchError(
                f"search index {self.uri}/{name} was built with embedder {stored!r}, not "
                f"{self.embedder.name!r}; call rebuild() with all documents"
            )
        return table

    def _maintain(self, table: Table) -> None:
        fragments = table.stats()["fragment_stats"]["num_fragments"]
        fts = table.index_stats(_FTS_INDEX)
        unindexed = fts.num_unindexed_rows if fts is not None else 0
        if fragments > _MAX_FRAGMENTS or unindexed > _MAX_UNINDEXED:
            log.debug(
                "optimizing search table %s (%d fragments, %d unindexed rows)",
                table.name,
                fragments,
                unindexed,
            )
            table.optimize()
        self._ensure_indexes(table)

    # ---------------------------------------------------------------- rows
    def _rows(self, docs: list[TableDocument]) -> tuple[pa.Table, pa.Table]:
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
            table_rows.append(
                base
                | {
                    "storage_hash": doc.get("storage_hash"),
                    "description": doc.get("description"),
                    "source_class": doc.get("source_class"),
                    "column_names": [c["column_name"] for c in columns],
                    "column_labels": [c.get("label") or "" for c in columns],
                    "digest": doc.get("digest"),
                    "text": " ".join(analyze(text)),
                    "_embed": text,
                }
            )
            for col in columns:
                ctext = column_text(col)
                column_rows.append(
                    base
                    | {
                        "key": f"{base['uid']}\x1f{col['column_name']}",
                        "column_name": col["column_name"],
                        "label": col.get("label"),
                        "description": col.get("description"),
                        "dtype": col.get("dtype"),
                        "text": " ".join(analyze(ctext)),
                        "_embed": ctext,
                    }
                )
        return self._to_arrow(_TABLES, table_rows), self._to_arrow(_COLUMNS, column_rows)

    def _to_arrow(self, name: str, rows: list[dict[str, Any]]) -> pa.Table:
        schema = self._schema(name)
        vectors = (
            self.embedder.embed([r.pop("_embed") for r in rows]) if rows else np.zeros((0, self.embedder.dim))
        )
        data = {f.name: [r.get(f.name) for r in rows] for f in schema if f.name != "vector"}
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        data["vector"] = pa.FixedSizeListArray.from_arrays(flat, self.embedder.dim)
        return pa.table(data, schema=schema)

    @staticmethod
    def _dedupe(docs: list[TableDocument]) -> list[TableDocument]:
        return list({str(d["uid"]): d for d in docs}.values())

    # ---------------------------------------------------------------- writes
    def upsert_tables(self, docs: list[TableDocument]) -> None:
        """Insert or replace the rows of these tables (the table row and all its column rows).

        An unreadable index is deleted and recreated holding only ``docs``; the next catalog
        catch-up (see :meth:`digests`) adds the other tables back.
        """
        docs = self._dedupe(docs)
        if not docs:
            return
        tables, columns = self._rows(docs)
        uid_list = ", ".join(_sql_str(str(d["uid"]), "uid") for d in docs)

        def upsert() -> None:
            t = self._writable(_TABLES)
            c = self._writable(_COLUMNS)
            (
                c.merge_insert("key")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .when_not_matched_by_source_delete(f"uid IN ({uid_list})")
                .execute(columns)
            )
            t.merge_insert("uid").when_matched_update_all().when_not_matched_insert_all().execute(tables)
            self._maintain(c)
            self._maintain(t)

        self._recovering(upsert)
        log.info("search index %s: upserted %d tables, %d columns", self.uri, len(docs), columns.num_rows)

    def delete_tables(self, uids: list[str]) -> None:
        """Remove these tables (and their columns) from the index; unknown uids are ignored."""
        uids = list(dict.fromkeys(str(u) for u in uids))
        if not uids:
            return

        def delete() -> None:
            for name in (_COLUMNS, _TABLES):
                table = self._open(name)
                if table is None:
                    continue
                for i in range(0, len(uids), _DELETE_CHUNK):
                    chunk = ", ".join(_sql_str(u, "uid") for u in uids[i : i + _DELETE_CHUNK])
                    table.delete(f"uid IN ({chunk})")
                self._maintain(table)

        self._recovering(delete)  # an unreadable index is deleted: these tables are then gone too
        log.info("search index %s: deleted %d tables", self.uri, len(uids))

    def rebuild(self, docs: list[TableDocument]) -> None:
        """Replace the whole index with ``docs`` (also switches the index to this embedder).

        Readers see the old index until the new version is committed. An index that cannot be
        opened (e.g. corrupt manifests) is deleted and created afresh.
        """
        docs = self._dedupe(docs)
        tables, columns = self._rows(docs)

        def replace() -> None:
            self._tables.clear()
            self._create(_COLUMNS, columns, mode="overwrite")
            self._create(_TABLES, tables, mode="overwrite")

        self._recovering(replace)
        log.info("search index %s: rebuilt with %d tables, %d columns", self.uri, len(docs), columns.num_rows)

    def digests(self) -> dict[str, str | None] | None:
        """``{uid: digest}`` of the indexed tables (a caller-supplied document version), or None
        when the index is missing, unreadable or of an older format or another embedder (then it
        needs a :meth:`rebuild`, which also replaces an unreadable index).

        Both tables are opened (so a corrupt ``columns`` table is noticed too); rows are read through
        LanceDB's own query API, which needs no ``pylance``.
        """
        try:
            opened = [self._open(name) for name in (_TABLES, _COLUMNS)]
            if any(t is None or self._stored_embedder(t) != self.embedder.name for t in opened):
                return None
            rows = opened[0].search().select(["uid", "digest"]).limit(None).to_arrow()
        except Exception as error:  # noqa: BLE001 - any unreadable index is rebuilt by the caller
            log.warning("search index %s is unreadable (%s)", self.uri, _one_line(error))
            return None
        return dict(zip(rows.column("uid").to_pylist(), rows.column("digest").to_pylist(), strict=True))

    def count(self) -> int:
        """Number of tables in the index (0 if it does not exist)."""
        table = self._open(_TABLES)
        return 0 if table is None else table.count_rows()

    # ---------------------------------------------------------------- reads
    def _query_embedder(self, table: Table, embedding_model: str | Embedder | None) -> Embedder | None:
        stored = self._stored_embedder(table)
        embedder = self.embedder if embedding_model is None else get_embedder(embedding_model)
        if stored == embedder.name:
            return embedder
        if embedding_model is not None:
            raise EmbedderMismatchError(
                f"embedding_model {embedder.name!r} does not match the index embedder {stored!r}"
            )
        log.warning(
            "search index %s was built with embedder %r, configured %r: embedding signal disabled until rebuild()",
            self.uri,
            stored,
            embedder.name,
        )
        return None

    @staticmethod
    def _fts(table: Table, q: str, k: int, where: str | None, cols: list[str]) -> list[dict[str, Any]]:
        terms = " ".join(analyze(q))
        if k <= 0 or not terms:
            return []
        query = table.search(terms, query_type="fts", fts_columns="text").select([*cols, "_score"]).limit(k)
        if where:
            query = query.where(where, prefilter=True)
        return query.to_arrow().to_pylist()

    @staticmethod
    def _knn(
        table: Table, vector: np.ndarray, k: int, where: str | None, cols: list[str]
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

    @staticmethod
    def _blend(
        fts_rows: list[dict[str, Any]], knn_rows: list[dict[str, Any]], key: str, w_trgm: float, w_emb: float
    ) -> dict[str, tuple[float, float, float, dict[str, Any]]]:
        """key -> (score, trigram_score, embedding_score, row), each signal divided by its maximum."""
        trgm = {r[key]: max(float(r["_score"]), 0.0) for r in fts_rows}
        emb = {r[key]: max(1.0 - float(r["_distance"]), 0.0) for r in knn_rows}
        rows = {r[key]: r for r in knn_rows} | {r[key]: r for r in fts_rows}
        t_max = max(trgm.values(), default=0.0) or 1.0
        e_max = max(emb.values(), default=0.0) or 1.0
        out = {}
        for k, row in rows.items():
            ts, es = trgm.get(k, 0.0) / t_max, emb.get(k, 0.0) / e_max
            out[k] = (w_trgm * ts + w_emb * es, ts, es, row)
        return out

    @staticmethod
    def _page(hits: list[SearchHit], limit: int, offset: int) -> SearchPage:
        hits.sort(key=lambda h: (-h.score, h.uid))
        return SearchPage(count=len(hits), results=hits[offset : offset + limit])

    @staticmethod
    def _check_query(q: Any, limit: Any, offset: Any) -> None:
        if not isinstance(q, str):
            raise SearchArgumentError(f"the search query must be a string, got {type(q).__name__}")
        _check_count("limit", limit)
        _check_count("offset", offset)

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
        """Rank tables by ``w_trgm * trigram_score + w_emb * embedding_score`` (see module docs).

        Candidates are the union of the ``trigram_k`` best full-text matches and the ``embed_k``
        nearest embeddings, both drawn from the tables passing ``filters``. A signal is skipped when
        its ``k`` or its weight is 0: ``w_trgm=1, w_emb=0`` ranks (and counts) purely by trigram
        BM25 order, ``trigram_k=0`` or ``w_trgm=0`` is pure embedding order. Ties break by uid.
        Counts must be integers >= 0 and weights finite numbers >= 0, not both 0
        (:class:`SearchArgumentError` otherwise).
        ``count`` is the number of candidates after filtering, so it is at most
        ``trigram_k + embed_k``. An empty or missing index returns ``SearchPage(0, [])``.
        ``matched_columns`` lists the table's columns whose name or label shares a term with ``q``.
        """
        where = filters_to_sql(filters)
        self._check_query(q, limit, offset)
        trigram_k, embed_k = _check_count("trigram_k", trigram_k), _check_count("embed_k", embed_k)
        w_trgm, w_emb = _check_weight("w_trgm", w_trgm), _check_weight("w_emb", w_emb)
        if w_trgm == 0 and w_emb == 0:
            raise SearchArgumentError("w_trgm and w_emb are both 0: at least one weight must be > 0")
        table = self._open(_TABLES)
        if table is None or not q.strip():
            return SearchPage(0, [])
        started = time.perf_counter()
        cols = ["uid", "column_names", "column_labels"]
        fts_rows = self._fts(table, q, trigram_k, where, cols) if w_trgm > 0 else []
        knn_rows: list[dict[str, Any]] = []
        if w_emb > 0 and embed_k > 0:
            embedder = self._query_embedder(table, embedding_model)
            if embedder is not None:
                knn_rows = self._knn(table, embedder.embed([q])[0], embed_k, where, cols)
        blended = self._blend(fts_rows, knn_rows, "uid", w_trgm, w_emb)
        hits = [SearchHit(uid, score, ts, es) for uid, (score, ts, es, _row) in blended.items()]
        page = self._page(hits, limit, offset)
        q_terms = set(analyze(q))
        for hit in page.results:
            hit.matched_columns = _matched_columns(blended[hit.uid][3], q_terms)
        log.debug(
            "description_search %r: %d hits in %.1f ms", q, page.count, 1e3 * (time.perf_counter() - started)
        )
        return page

    def column_search(
        self, q: str, *, filters: dict[str, Any] | None = None, limit: int = 20, offset: int = 0
    ) -> SearchPage:
        """Rank tables by their best matching column.

        Column rows are scored like ``description_search`` scores tables (0.65 trigram + 0.35
        embedding, 500 candidates per signal); a table's score is its best column's score and
        ``matched_columns`` holds its candidate columns scoring at least half of that, best first.
        """
        where = filters_to_sql(filters)
        self._check_query(q, limit, offset)
        table = self._open(_COLUMNS)
        if table is None or not q.strip():
            return SearchPage(0, [])
        cols = ["key", "uid", "column_name"]
        fts_rows = self._fts(table, q, _COLUMN_K, where, cols)
        embedder = self._query_embedder(table, None)
        knn_rows = (
            [] if embedder is None else self._knn(table, embedder.embed([q])[0], _COLUMN_K, where, cols)
        )
        per_table: dict[str, list[tuple[float, float, float, str]]] = {}
        for score, ts, es, row in self._blend(
            fts_rows, knn_rows, "key", _COLUMN_W_TRGM, _COLUMN_W_EMB
        ).values():
            per_table.setdefault(row["uid"], []).append((score, ts, es, row["column_name"]))
        hits = []
        for uid, scored in per_table.items():
            scored.sort(key=lambda s: (-s[0], s[3]))
            best = scored[0]
            matched = [s[3] for s in scored if s[0] >= 0.5 * best[0]]
            hits.append(SearchHit(uid, best[0], best[1], best[2], matched))
        return self._page(hits, limit, offset)


def _matched_columns(row: dict[str, Any], q_terms: set[str]) -> list[str]:
    names = row.get("column_names") or []
    labels = row.get("column_labels") or [""] * len(names)
    return [n for n, lab in zip(names, labels, strict=False) if q_terms.intersection(analyze(f"{n} {lab}"))]
