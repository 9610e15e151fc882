"""The default embedder: all-MiniLM-L6-v2, int8 ONNX, run with ``onnxruntime`` + ``tokenizers``.

The model ships with lakenodes (``lakenodes/search/models/all-MiniLM-L6-v2/``: the int8 ONNX
graph, its tokenizer and the model's Apache-2.0 licence; ``tools/export_minilm_onnx.py`` produced
it from the published weights). Nothing is downloaded and PyTorch is not needed. Texts are cut to
``max_tokens`` word pieces: the start of a document (identifier, description, labels, frequency,
columns) carries its meaning, and the cost of a transformer grows with the length.

Example:
    >>> embedder = MiniLMEmbedder()
    >>> v = embedder.embed(["daily close prices", "end of day stock prices", "weather forecast"])
    >>> bool(v[0] @ v[1] > v[0] @ v[2])
    True
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .._internal.deferred import np

log = logging.getLogger(__name__)

__all__ = ["MODEL_DIR", "MiniLMEmbedder"]

MODEL_DIR = Path(__file__).parent / "models" / "all-MiniLM-L6-v2"
_PER_WORKER = 16  # texts per thread below which one thread does it all


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX, shipped with lakenodes): 384-d sentence embeddings, offline.

    ``max_tokens`` bounds the word pieces embedded per text (it is part of ``name``: vectors of
    different cuts are not mixed in one index); ``threads`` (default: the cores) embed texts in
    parallel. The ONNX session is created on the first
    :meth:`embed`; :func:`~lakenodes.search.embedders.get_embedder` keeps one instance per spec per
    process, so the model is loaded once. Identical texts in one call are embedded once; a text's
    vector never depends on the other texts of the call.

    >>> MiniLMEmbedder().name, MiniLMEmbedder().dim
    ('all-minilm-l6-v2-int8-v1-64', 384)
    """

    VERSION = 1
    dim = 384

    def __init__(self, max_tokens: int = 64, *, threads: int | None = None) -> None:
        self.max_tokens = max_tokens
        self.threads = threads
        self.name = f"all-minilm-l6-v2-int8-v{self.VERSION}-{max_tokens}"
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort  # on first use only: `import lakenodes` stays light
                from tokenizers import Tokenizer

                log.info("loading %s from %s", self.name, MODEL_DIR)
                tokenizer = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
                tokenizer.no_padding()
                tokenizer.enable_truncation(max_length=self.max_tokens)
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1  # texts run one per thread (see embed)
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                self._session = ort.InferenceSession(
                    str(MODEL_DIR / "model.int8.onnx"), options, providers=["CPUExecutionProvider"]
                )
                self._tokenizer = tokenizer
        return self._session, self._tokenizer

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised ``float32`` vectors of shape ``(len(texts), 384)`` (loads the model on first use).

        Each distinct text runs alone: int8 dynamic quantization scales activations per batch, so a
        text batched with others (or padded) would get a slightly different vector. Alone, a text
        always gets the same vector, in a query or in the index.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        session, tokenizer = self._load()
        unique = list(dict.fromkeys(t or "" for t in texts))
        encodings = tokenizer.encode_batch(unique)
        vectors = np.zeros((len(unique), self.dim), dtype=np.float32)

        def run(rows: range) -> None:  # onnxruntime releases the GIL: threads use the cores
            for row in rows:
                ids = np.asarray([encodings[row].ids], dtype=np.int64)
                vectors[row] = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]

        workers = min(self.threads or os.cpu_count() or 1, 8, max(1, len(unique) // _PER_WORKER))
        if workers == 1:
            run(range(len(unique)))
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(run, [range(i, len(unique), workers) for i in range(workers)]))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.where(norms > 0, norms, 1.0)
        position = {text: i for i, text in enumerate(unique)}
        out[:] = vectors[[position[t or ""] for t in texts]]
        return out
