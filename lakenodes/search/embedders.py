"""Embedders: texts to L2-normalised vectors, and the parsing of embedder specs.

The default is :class:`~lakenodes.search.minilm.MiniLMEmbedder` (all-MiniLM-L6-v2 shipped as int8
ONNX: offline, no PyTorch); :class:`HashingEmbedder` (feature hashing, no model at all) and a local
sentence-transformers model (:class:`SentenceTransformerEmbedder`, optional extra) stay available.
An embedder given as a spec string is created once per process (:func:`get_embedder`), so a model
is loaded once however many indexes and searches use it.

Example:
    >>> get_embedder("hashing:64").embed(["daily close price"]).shape
    (1, 64)
"""

from __future__ import annotations

import hashlib
import logging
import math
import numbers
from collections import Counter
from typing import Any, Protocol, runtime_checkable

from .._internal.deferred import np
from .analysis import analyze
from .errors import SearchArgumentError
from .minilm import MiniLMEmbedder

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_EMBEDDER",
    "Embedder",
    "HashingEmbedder",
    "QueryVector",
    "SentenceTransformerEmbedder",
    "embedder_for",
    "get_embedder",
]

DEFAULT_EMBEDDER = "minilm"
# spec string -> embedder, and embedder name -> embedder: one instance (one loaded model) per
# embedder per process, however it is spelled ("minilm", "minilm:64")
_BY_SPEC: dict[str, Any] = {}
_BY_NAME: dict[str, Any] = {}


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised ``float32`` vectors of shape ``(len(texts), dim)``.

    ``name`` identifies the model (and its version); the index records it and refuses to mix vectors
    of different embedders.

    Example (any object with ``name``, ``dim`` and ``embed`` is one; pass it as ``SearchIndex(uri,
    embedder=...)``):
        >>> class OnesEmbedder:
        ...     name, dim = "ones-v1", 4
        ...     def embed(self, texts):
        ...         return np.full((len(texts), 4), 0.5, dtype=np.float32)
        >>> isinstance(OnesEmbedder(), Embedder), get_embedder(OnesEmbedder()).name
        (True, 'ones-v1')
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

    Example (a high cosine similarity despite the typos):
        >>> v = HashingEmbedder().embed(["daily close price", "dialy close prise"])
        >>> bool(v[0] @ v[1] > 0.5)
        True
    """

    VERSION = 1
    MAX_DIM = 4096  # hashing gains nothing beyond; hashing:99999999999 failed in numpy (OverflowError)

    def __init__(self, dim: int = 384, ngram_weight: float = 1.0) -> None:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not 16 <= dim <= self.MAX_DIM:
            raise SearchArgumentError(f"HashingEmbedder dim must be an integer from 16 to {self.MAX_DIM}, got {dim!r}")
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
        """``float32`` vectors of shape ``(len(texts), dim)``, rows of norm 1 (0 for a text without terms)."""
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

    Example (nothing is loaded until the first ``embed``):
        >>> SentenceTransformerEmbedder("/models/all-MiniLM-L6-v2").name
        'sentence-transformers:/models/all-MiniLM-L6-v2'
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
        """The model's embedding dimension (loads the model)."""
        model = self._load()
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        """Normalised ``float32`` vectors of shape ``(len(texts), dim)`` (loads the model on first use)."""
        vectors = self._load().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


class QueryVector:
    """A query vector computed by the caller (the seeds' ``q_embedding``) standing in for ``embedder``,
    whose name it takes: searching with it never embeds the query text.

    >>> query = QueryVector(HashingEmbedder(dim=16), [3.0] + [0.0] * 15)
    >>> query.name, query.embed(["ignored"])[0][:2].tolist()
    ('hashing-v1-16', [1.0, 0.0])
    """

    def __init__(self, embedder: Embedder, vector: Any) -> None:
        wanted = (f"q_embedding must be {embedder.dim} finite numbers (the dimension of the index's embedder "
                  f"{embedder.name!r})")
        try:  # text ("0.1,0.2") or a list holding one was numpy's bare "could not convert string to float"
            array = np.asarray(vector, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError):
            raise SearchArgumentError(f"{wanted}, got {type(vector).__name__} {str(vector)[:80]!r}") from None
        if array.shape[0] != embedder.dim or not np.all(np.isfinite(array)):
            raise SearchArgumentError(f"{wanted}, got {array.shape[0]}")
        norm = float(np.linalg.norm(array))
        self.name, self.dim = embedder.name, embedder.dim
        self.vector = array / norm if norm > 0 else array

    def embed(self, texts: list[str]) -> np.ndarray:
        """The query vector, once per text."""
        return np.tile(self.vector, (len(texts), 1))


def get_embedder(model: str | Embedder | None) -> Embedder:
    """Resolve an embedder spec (a spec string gives the same object on every call in a process).

    ``None`` / ``"minilm"`` -> :class:`~lakenodes.search.minilm.MiniLMEmbedder` (the default);
    ``"minilm:<max tokens>"`` -> the same model with another cut; ``"hashing"`` /
    ``"hashing:<dim>"`` -> :class:`HashingEmbedder`; ``"sentence-transformers:<local path or name>"``
    -> :class:`SentenceTransformerEmbedder`; an object with ``name``, ``dim`` and ``embed`` is
    returned unchanged.

    >>> get_embedder(None).name, get_embedder("hashing").name, get_embedder("hashing:128").dim
    ('all-minilm-l6-v2-int8-v1-64', 'hashing-v1-384', 128)
    >>> get_embedder("minilm") is get_embedder(None)
    True
    """
    if model is None:
        model = DEFAULT_EMBEDDER
    if isinstance(model, str):
        cached = _BY_SPEC.get(model)
        if cached is None:
            created = _from_spec(model)  # cheap: models load on first use
            cached = _BY_SPEC.setdefault(model, _BY_NAME.setdefault(created.name, created))
        return cached
    if callable(getattr(model, "embed", None)) and isinstance(getattr(model, "name", None), str):
        return model  # not isinstance(model, Embedder): that would read ``dim`` and load lazy models
    raise SearchArgumentError(
        f"embedding model must be a spec string or an object with name, dim and embed(), got {type(model).__name__}"
    )


def embedder_for(name: str | None) -> Embedder:
    """The embedder an index recorded by ``name`` (see :func:`get_embedder` for the specs); the
    default one for None (no index yet) or for an embedder object the index cannot recreate (then
    the index's embedding signal is off until it is rebuilt, see
    :func:`~lakenodes.search.ranking.query_embedder`).

    >>> embedder_for("hashing-v1-128").dim, embedder_for(None).name
    (128, 'all-minilm-l6-v2-int8-v1-64')
    """
    spec = None
    if name is None:
        spec = DEFAULT_EMBEDDER
    elif name.startswith(_MINILM) and name[len(_MINILM) :].isdigit():
        spec = f"minilm:{name[len(_MINILM):]}"
    elif name.startswith(_HASHING) and name[len(_HASHING) :].isdigit():
        spec = f"hashing:{name[len(_HASHING):]}"
    elif name.startswith("sentence-transformers:"):
        spec = name
    if spec is None:
        log.warning("search index embedder %r cannot be recreated from its name: using the default", name)
        spec = DEFAULT_EMBEDDER
    return get_embedder(spec)


_MINILM = f"all-minilm-l6-v2-int8-v{MiniLMEmbedder.VERSION}-"
_HASHING = f"hashing-v{HashingEmbedder.VERSION}-"


def _from_spec(spec: str) -> Embedder:
    kind, _, arg = spec.partition(":")
    if kind == "minilm" and (not arg or arg.isdigit() and 8 <= int(arg) <= 256):
        return MiniLMEmbedder(int(arg)) if arg else MiniLMEmbedder()
    if kind == "hashing" and (not arg or arg.isdigit()):
        return HashingEmbedder(dim=int(arg)) if arg else HashingEmbedder()
    if kind == "sentence-transformers" and arg:
        return SentenceTransformerEmbedder(arg)
    raise SearchArgumentError(
        f"unknown embedding model {spec!r}: use 'minilm' (the default), 'minilm:<max tokens 8-256>', "
        "'hashing', 'hashing:<dim>' or 'sentence-transformers:<local model path>'"
    )
