"""Search errors and the checks of search arguments (counts, weights).

Example:
    >>> check_count("limit", 20)
    20
    >>> check_weight("w_emb", -1)
    Traceback (most recent call last):
    ...
    lakenodes.search.errors.SearchArgumentError: w_emb must be a finite number >= 0, got -1
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from ..errors import (
    LakenodesUserError,
    ReadOnlyStorageError,
    StorageError,
    StoragePermissionError,
    plain_message,
)

__all__ = ["EmbedderMismatchError", "SearchArgumentError", "SearchIndexNotStoredWarning", "check_count", "check_weight",
           "storage_refusal", "summarize_error"]


class SearchArgumentError(LakenodesUserError):
    """A search argument is invalid (negative ``k``, bad weights, paging, filter or embedder spec)."""


class EmbedderMismatchError(LakenodesUserError):
    """The index was built with another embedder than the one asked for (``rebuild()`` switches it)."""


class SearchIndexNotStoredWarning(UserWarning):
    """The lake refused to store the search index (read-only, permission denied): a search used an
    index built in memory from the catalog, which every new process builds again."""


MAX_COUNT = 2**31 - 1
"""Counts above it ask for what it does (every row of any catalog); LanceDB took no more (OverflowError)."""


def check_count(name: str, value: Any) -> int:
    """``value`` as a non-negative int (``limit``, ``offset``, ``trigram_k``...), at most MAX_COUNT, else
    SearchArgumentError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise SearchArgumentError(f"{name} must be an integer >= 0, got {value!r}")
    return min(int(value), MAX_COUNT)


def check_weight(name: str, value: Any) -> float:
    """``value`` as a finite float >= 0 (``w_trgm``, ``w_emb``), else SearchArgumentError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise SearchArgumentError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def summarize_error(error: BaseException) -> str:
    """An exception as ``Type: message`` on one line (Lance errors span lines and carry source paths).

    >>> summarize_error(RuntimeError("cannot open\\n  manifest"))
    'RuntimeError: cannot open manifest'
    """
    return f"{type(error).__name__}: " + " ".join(plain_message(error).split())


def storage_refusal(error: BaseException, path: str, operation: str) -> StorageError | None:
    """``error`` as the ``ReadOnlyStorageError``/``StoragePermissionError`` it is when the lake refused
    access (a read-only mount, a folder or an S3 key without write permission), else None: an index
    this process may not create or write there is not a damaged one.

    >>> import errno
    >>> str(storage_refusal(OSError(errno.EROFS, "Read-only file system"), "/lake/_catalog/search", "open"))
    'open failed: read-only file system: /lake/_catalog/search'
    >>> storage_refusal(RuntimeError("lance error: corrupt manifest"), "/lake/_catalog/search", "open") is None
    True
    """
    from ..lake._storage_errors import as_storage_error  # not at import: the CLI imports this module early

    refused = as_storage_error(error, path, operation)
    return refused if isinstance(refused, ReadOnlyStorageError | StoragePermissionError) else None
