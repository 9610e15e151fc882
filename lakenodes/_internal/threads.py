"""Storage requests of one step made at once: a function mapped over items in a few threads (on
S3 each call is an HTTP request; pyarrow and delta-rs release the GIL while they wait). On a local
disk the reads are quick and threads only contend for the GIL: ``storage_threads`` gives one there
(1,000 footers: ~110 ms in one thread, 150-250 in 2-16; 200 small catalog files: ~90 ms, ~145 in 8).

Example:
    >>> in_threads(lambda n: n * n, [1, 2, 3])
    [1, 4, 9]
    >>> storage_threads(pafs.LocalFileSystem(), 16)
    1
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .deferred import pafs

T = TypeVar("T")
R = TypeVar("R")


def in_threads(function: Callable[[T], R], items: Sequence[T], max_threads: int = 16) -> list[R]:
    """``[function(item) for item in items]`` with up to ``max_threads`` threads (none for one item,
    or when ``max_threads`` is 1)."""
    if len(items) <= 1 or max_threads <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(max_threads, len(items))) as pool:
        return list(pool.map(function, items))


def storage_threads(filesystem: Any, most: int) -> int:
    """How many threads ``in_threads`` should use for requests to ``filesystem``: one on a local
    disk, ``most`` elsewhere."""
    return 1 if isinstance(filesystem, pafs.LocalFileSystem) else most
